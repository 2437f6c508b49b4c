package anylisten

import (
	"net"
	"os"
	"sync"
)

// UnixListener is the listener Listen returns for a UNIX socket path or a
// Linux abstract name. It embeds the kernel's *net.UnixListener, whose
// methods (Addr, SetDeadline, File, SyscallConn) it keeps, and adds two
// things: the receive and send buffer options applied to each accepted
// connection, and a Close that removes the socket file only while it is
// still the one this listener created.
//
// Accept returns *net.UnixConn values, never wrapped.
type UnixListener struct {
	*net.UnixListener

	path       string      // absolute path of the socket file; "" for abstract sockets
	file       os.FileInfo // the socket file as bound, to recognise it at Close
	unlink     bool        // remove the socket file on Close
	unlinkOnce sync.Once
	opts       *Options // non-nil when accepted conns need buffer sizes
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
func (l *UnixListener) AcceptUnix() (*net.UnixConn, error) {
	c, err := l.UnixListener.AcceptUnix()
	if err != nil || l.opts == nil {
		return c, err
	}
	if rc, rerr := c.SyscallConn(); rerr == nil {
		_ = rawControl(rc, func(fd uintptr) error { return setBuffers(fd, l.opts) })
	}
	return c, nil
}

// Close stops listening and, for a socket path, removes the socket file if
// it is still the file this listener bound (a newer server's socket at the
// same path is left alone) and SetUnlinkOnClose has not turned that off.
// Connections already accepted are not affected.
func (l *UnixListener) Close() error {
	l.unlinkOnce.Do(func() {
		if l.unlink && l.path != "" {
			removeIfSame(l.path, l.file)
		}
	})
	return l.UnixListener.Close()
}

// SetUnlinkOnClose sets whether Close removes the socket file. It is true
// for listeners that Listen bound to a path, and must not be called
// concurrently with Close.
func (l *UnixListener) SetUnlinkOnClose(unlink bool) {
	l.unlink = unlink
}

// removeIfSame removes path if it is still the file described by fi.
func removeIfSame(path string, fi os.FileInfo) bool {
	cur, err := os.Lstat(path)
	if err != nil || fi == nil || !os.SameFile(cur, fi) {
		return false
	}
	return os.Remove(path) == nil
}

// bufferOpts returns o if accepted connections need its buffer sizes.
func bufferOpts(o *Options) *Options {
	if o.RecvBufferSize > 0 || o.SendBufferSize > 0 {
		return o
	}
	return nil
}
