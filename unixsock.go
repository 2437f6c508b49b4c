package anylisten

import (
	"errors"
	"net"

	"github.com/anylisten/anylisten/internal/sockfile"
)

// UnixListener is the listener Listen returns for a UNIX socket path or a
// Linux abstract name. It embeds the kernel's *net.UnixListener, whose
// methods (Addr, SetDeadline, File, SyscallConn) it keeps, and adds two
// things: the receive and send buffer options applied to each accepted
// connection, and a Close that removes the socket file only while it is
// still the one this listener created.
//
// Accept returns *net.UnixConn values, never wrapped. With the allow
// lists of the Options (UnixAllowUID, UnixAllowGID), it returns only those
// whose peer the lists admit, and closes the others (see AcceptUnix).
//
// On Windows, which has AF_UNIX stream sockets but none of the file modes
// and owners the Options set, package net binds the path itself (no
// private directory, no rename; bind there never replaces a file), and
// the rules Windows allows are kept around it: what is at the path is
// judged first (a stale socket is removed only with UnixListenUnlink,
// through a handle to the very file judged; anything else is an error
// wrapping EADDRINUSE), and Close removes the socket file only while it
// is the one bind made, deleting it through a handle to that file. The
// buffer options and seqpacket and datagram sockets are not supported
// there.
type UnixListener struct {
	*net.UnixListener

	addr  *net.UnixAddr // the socket path; nil: the kernel's name (abstract and inherited sockets)
	opts  *Options      // non-nil when accepted conns need buffer sizes
	allow *allowList    // non-nil when accepted conns must pass allow lists
	sf    socketFile
	// netUnlinks is set where package net bound the path (outside Unix)
	// and so removes the socket file on Close itself.
	netUnlinks bool
}

// Addr returns the listener's address: the socket path as given to
// Listen, or the abstract @name. (The kernel's own name for a socket made
// at a path, which getsockname, a peer's RemoteAddr and the LocalAddr of
// accepted connections report, is the private directory it was bound in
// before it was moved into place; see README's "UNIX socket safety".)
func (l *UnixListener) Addr() net.Addr {
	if l.addr != nil {
		return l.addr
	}
	return l.UnixListener.Addr()
}

// Accept waits for and returns the next connection, a *net.UnixConn.
func (l *UnixListener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptUnix waits for and returns the next connection, with the buffer
// sizes of the Options applied (a failure to apply them is not reported,
// as with TCP keep-alive in package net: the connection is still good).
//
// With Options.UnixAllowUID or UnixAllowGID, it returns only connections
// whose peer the lists admit: one they refuse, or whose peer credentials
// cannot be read, it closes unread, tells Options.UnixRefused, and waits
// for the next. (So Accept may take from the kernel more connections than
// it returns, and a deadline set with SetDeadline bounds the whole wait.)
func (l *UnixListener) AcceptUnix() (*net.UnixConn, error) {
	for {
		c, err := l.acceptOne()
		if !isRefused(err) {
			return c, err
		}
	}
}

// acceptOne accepts one connection from the kernel. One the allow lists
// refuse is closed, and the error is a *refusedError.
func (l *UnixListener) acceptOne() (*net.UnixConn, error) {
	c, err := l.UnixListener.AcceptUnix()
	if err != nil {
		if oe, ok := err.(*net.OpError); ok && l.addr != nil {
			oe.Addr = l.addr // the path, not the private directory it was bound in
		}
		return nil, err
	}
	if l.allow != nil {
		if err := l.allow.screen(c, l.Addr()); err != nil {
			return nil, err
		}
	}
	if l.opts == nil {
		return c, nil
	}
	if rc, rerr := c.SyscallConn(); rerr == nil {
		_ = rawControl(rc, func(fd uintptr) error { return setBuffers(fd, l.opts) })
	}
	return c, nil
}

// Close stops listening and, for a socket path, removes the socket file if
// it is still the file this listener bound (a newer server's socket at the
// same path, or any other file put there, is left alone) and
// SetUnlinkOnClose has not turned that off. Connections already accepted
// are not affected.
func (l *UnixListener) Close() error {
	err := l.sf.close()
	return errors.Join(l.UnixListener.Close(), err)
}

func (l *UnixListener) socketFile() *socketFile { return &l.sf }

// SocketPath returns the path of the socket file a connection came in on,
// given the connection's LocalAddr. Listen binds a UNIX socket in a
// private directory before it moves the socket file to its path, and the
// kernel keeps the name it was bound to: for the path DIR/NAME, accepted
// connections' LocalAddr (and http.LocalAddrContextKey) is
// DIR/.anylisten-XXXXXXXX/NAME. SocketPath takes that private directory
// out, so the result equals the listener's Addr. Other addresses (TCP,
// abstract, inherited sockets, and /proc/self/fd/N/NAME, the name used in
// a directory that other users may write) are returned as they are.
func SocketPath(local net.Addr) net.Addr {
	ua, ok := local.(*net.UnixAddr)
	if !ok {
		return local
	}
	path, ok := sockfile.PublicPath(ua.Name)
	if !ok {
		return local
	}
	return &net.UnixAddr{Name: path, Net: ua.Net}
}

// SetUnlinkOnClose sets whether Close removes the socket file. It is true
// for listeners that Listen bound to a path, and false for inherited ones
// (until a predecessor's Upgrader passes its file on, see Ready) and after
// an Upgrade handed the socket over.
func (l *UnixListener) SetUnlinkOnClose(unlink bool) {
	if l.netUnlinks {
		l.UnixListener.SetUnlinkOnClose(unlink)
		return
	}
	l.sf.setUnlink(unlink)
}

// socketFileOptions are the sockfile.Options that o asks for.
func socketFileOptions(o *Options) sockfile.Options {
	so := sockfile.Options{Mode: uint32(o.UnixListenChmod), UID: -1, GID: -1, RemoveStale: o.UnixListenUnlink,
		UnlinkOption: "the unix_listen_unlink option (--unix-listen-unlink)"}
	if o.UnixListenUID != nil {
		so.UID = int(*o.UnixListenUID)
	}
	if o.UnixListenGID != nil {
		so.GID = int(*o.UnixListenGID)
	}
	return so
}

// devicePathError says why a UNIX socket path that Windows reads as a
// device path (\\.\NAME or //./NAME, \\?\ too) cannot be bound there,
// and for a named pipe's path how to listen on the pipe; nil for other
// paths. A path so written is a UNIX path on Unix, and parses as one
// everywhere.
func devicePathError(path string) error {
	isSep := func(c byte) bool { return c == '/' || c == '\\' }
	if len(path) < 4 || !isSep(path[0]) || !isSep(path[1]) || path[2] != '.' && path[2] != '?' || !isSep(path[3]) {
		return nil
	}
	rest := path[4:]
	if len(rest) > len("pipe") && equalFold(rest[:len("pipe")], "pipe") && isSep(rest[len("pipe")]) {
		name := rest[len("pipe")+1:]
		return errors.New("on Windows the path " + path + " names the named pipe " + pipePrefix + name +
			", not a file: write " + pipePrefix + name + " or npipe://" + name + " to listen on the pipe")
	}
	return errors.New("on Windows the path " + path + " names a device, not a file for a UNIX socket")
}
