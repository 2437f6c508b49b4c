package anylisten

import (
	"context"
	"errors"
	"net"
	"strings"
)

// Listen opens a listener on addr, configured by opts (nil means the
// defaults). ctx bounds the setup, such as resolving a host name; once
// Listen has returned, cancelling ctx does not affect the listener.
//
// The listener is the kernel's own, and so are its connections, never
// wrapped, so that sendfile, splice, CloseWrite and SyscallConn work as
// with net.Listen:
//
//   - TCP: a *net.TCPListener; Accept returns *net.TCPConn.
//   - UNIX path or abstract name: a *UnixListener (on every platform that
//     has AF_UNIX, Windows included); Accept returns *net.UnixConn.
//     unixpacket:PATH and unixpacket:@name make it a SOCK_SEQPACKET
//     socket: connections as with a stream socket, whose Read and Write
//     keep message boundaries (one Write is one Read at the peer), with
//     every socket-file rule of a stream socket's path.
//   - systemd (sd-listen, fd://): the inherited socket's native listener
//     as above (for an inherited TCP socket with Options.TCPKeepalive, a
//     listener that embeds *net.TCPListener and sets keep-alive on each
//     *net.TCPConn it accepts), or the vsock listener below. Several
//     sockets (sd-listen:*, or several with one name) are merged into one
//     listener whose Addr lists them all and whose Accept returns
//     connections from any of them as they come, as ListenAll's does. The
//     socket file of a UNIX path passed in by systemd is never removed (one
//     a predecessor's Upgrader handed over is: see Ready).
//   - A connected socket passed by systemd (Accept=yes) or inetd, or
//     inetd's stdin and stdout: a listener that returns that one
//     connection, then, once it is closed, an error wrapping
//     net.ErrClosed, so that http.Serve returns after serving it. This is
//     the one case of a wrapped connection: it embeds *net.TCPConn or
//     *net.UnixConn (keeping their methods) to learn when it is closed,
//     and its NetConn method (as tls.Conn's) returns that connection, for
//     code that type-switches on *net.TCPConn. Once that connection is
//     served, Accept returns an error wrapping net.ErrClosed: an accept
//     loop must end on it (errors.Is(err, net.ErrClosed)), not retry.
//     inetd's listening stdin (wait mode) gives its native listener. A
//     stdin, or a stdout the connection writes to, that is neither a
//     socket nor a pipe is an error that names it: /dev/null (which is
//     what a Go program finds where the descriptor was closed when it
//     started), a terminal, a regular file.
//   - vsock: a listener that embeds *vsock.Listener
//     (github.com/mdlayher/vsock) and adds SyscallConn, so that an
//     Upgrader can hand it over; Accept returns *vsock.Conn.
//   - Windows named pipe (\\.\pipe\NAME, on Windows only): the listener
//     of github.com/Microsoft/go-winio's ListenPipe, unwrapped, whose
//     Addr is the pipe's path (network "pipe"); Accept returns go-winio's
//     connection, a winio.PipeConn, in byte mode. The pipe takes
//     Options.NpipeSecurityDescriptor (who may connect), RecvBufferSize
//     and SendBufferSize; it refuses remote clients. Listen fails if a
//     pipe of the name exists, whoever made it: another server's pipe is
//     never joined (that error wraps EADDRINUSE). The name goes when the
//     listener and every connection it accepted are closed; until then
//     a new Listen of it fails. An Upgrader cannot hand it over (no
//     Upgrade on Windows).
//
// A TCP or UNIX address that names a socket passed in by a service manager
// (LISTEN_FDS, bound to exactly that address and not taken yet) adopts it
// instead of binding anew, so that one configuration serves a cold start
// and socket activation alike; and any address takes over the sockets a
// predecessor's Upgrader handed over for it. Options.NoAdopt turns this
// off. The environment is read once per process, on first use; the
// LISTEN_* variables are removed once a passed socket is taken (until then
// other code may read them), and each inherited socket is handed out once.
// The passed sockets are made close-on-exec when the package initialises,
// so that no child process inherits them.
//
// With allow lists (Options.UnixAllowUID, UnixAllowGID), a UNIX listener
// returns only connections whose peer (PeerCredentials) is on a list, and
// closes the others inside Accept; an address whose peers have no
// credentials (TCP, vsock, an inherited TCP socket, inetd over pipes) is an
// error instead, as is the one connection of inetd or Accept=yes whose
// peer the lists refuse.
//
// The caller owns the listener and must Close it. Closing a listener on a
// UNIX socket path removes the socket file it created, unless another
// socket has replaced it since.
//
// An invalid Options value is reported by Options.Validate's error.
// Other errors are *net.OpError values (Op "listen") that wrap the cause, so
// errors.Is(err, syscall.EADDRINUSE) holds for a port in use or a socket
// path that is taken (on Windows, where the system says WSAEADDRINUSE,
// errors.Is(err, windows.WSAEADDRINUSE) of golang.org/x/sys/windows does
// for a port; a named pipe or socket path in use is EADDRINUSE there too;
// on Linux the message names the processes that hold it where /proc shows
// them: "bind: address already in use (held by pid 1234 (hello))"; see
// Options.TCPKillPort), and errors.Is(err,
// fs.ErrPermission) for a denied bind. The datagram forms (udp://,
// unixgram:) are errors that say to use ListenPacket. Listen never
// returns a listener together with an error, and leaves nothing open or
// created behind on failure. A kind the platform lacks (abstract sockets
// and vsock outside Linux, inherited sockets and inetd outside Unix,
// named pipes outside Windows) gives an error wrapping
// errors.ErrUnsupported.
func Listen(ctx context.Context, addr Address, opts *Options) (net.Listener, error) {
	o, err := begin(ctx, addr, addr, opts)
	if err != nil {
		return nil, err
	}
	if err := refuseStream(addr); err != nil {
		return nil, opError("listen", addr, err)
	}
	if err := refuseAllow(addr, &o); err != nil {
		return nil, opError("listen", addr, err)
	}
	if err := refuseNoFile(addr, &o); err != nil {
		return nil, opError("listen", addr, err)
	}
	var ln net.Listener
	if !o.NoAdopt && addr.kind != KindNpipe { // a pipe is no socket: none is passed in
		ln, err = adoptInherited(ctx, addr, &o)
	}
	if ln == nil && err == nil {
		switch addr.kind {
		case KindTCP:
			ln, err = listenTCP(ctx, addr, &o)
		case KindUnix:
			ln, err = listenUnix(ctx, addr.str, addr.typ, &o)
		case KindAbstract:
			ln, err = listenAbstract(addr.str, addr.typ, &o)
		case KindSystemd:
			ln, err = listenSystemd(addr, &o)
		case KindInetd:
			ln, err = listenInetd(&o)
		case KindVsock:
			ln, err = listenVsock(addr)
		case KindNpipe:
			ln, err = listenNpipe(addr, &o)
		}
	}
	if err != nil {
		return nil, opError("listen", addr, err)
	}
	return ln, nil
}

// begin is the start of Listen and ListenPacket: it copies opts (nil
// means the defaults), and checks them, addr and ctx. errAddr is addr as
// the call's errors name it.
func begin(ctx context.Context, addr, errAddr Address, opts *Options) (Options, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	if addr.kind == 0 {
		return o, &net.OpError{Op: "listen", Err: errors.New("the zero Address names nothing to listen on; make one with ParseAddress")}
	}
	if err := ctx.Err(); err != nil {
		return o, opError("listen", errAddr, err)
	}
	return o, nil
}

// opError wraps err once, as a *net.OpError for op ("listen", "dial")
// that names addr, unless it already is one (as errors from package net
// are).
func opError(op string, addr Address, err error) error {
	if _, ok := err.(*net.OpError); ok {
		return err
	}
	e := &net.OpError{Op: op, Net: addr.errNet(), Err: err}
	// The address without what Net says already: "listen vsock any:80",
	// "listen udp 127.0.0.1:53", "listen unixgram /run/app.sock", as
	// "listen tcp 127.0.0.1:80".
	var s string
	switch addr.kind {
	case KindVsock:
		s = strings.TrimPrefix(addr.String(), "vsock:")
	case KindUDP:
		s = addr.hostPort()
	case KindUnix, KindAbstract:
		s = addr.Path()
	default:
		s = addr.String()
	}
	if s != e.Net { // "listen inetd: ...", not "listen inetd inetd: ..."
		e.Addr = addrString{e.Net, s}
	}
	return e
}

// errNet is the Net of the errors and net.Addrs for a.
func (a Address) errNet() string {
	switch a.kind {
	case KindUnix, KindAbstract:
		return a.Network() // unix, unixpacket or unixgram
	case KindSystemd:
		return "systemd" // "listen systemd sd-listen:web: ...", not "listen sd-listen sd-listen:web"
	}
	return a.kind.String()
}

// addrString is a net.Addr made of two strings, for error messages and for
// addresses package net has no type for.
type addrString struct{ net, addr string }

func (a addrString) Network() string { return a.net }
func (a addrString) String() string  { return a.addr }
