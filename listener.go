package anylisten

import (
	"context"
	"errors"
	"net"
)

// Listen opens a listener on addr, configured by opts (nil means the
// defaults). ctx bounds the setup, such as resolving a host name; once
// Listen has returned, cancelling ctx does not affect the listener.
//
// The listener is the kernel's own, and so are its connections: for TCP,
// Listen returns a *net.TCPListener whose Accept returns *net.TCPConn; for
// UNIX socket paths and abstract names, a *UnixListener whose Accept
// returns *net.UnixConn. Connections are never wrapped, so sendfile,
// splice, CloseWrite and SyscallConn work as with net.Listen.
//
// The caller owns the listener and must Close it. Closing a listener on a
// UNIX socket path removes the socket file it created, unless another
// socket has replaced it since.
//
// Errors are *net.OpError values (Op "listen") that wrap the cause, so
// errors.Is(err, syscall.EADDRINUSE) holds for a port in use or a socket
// path that is taken, and errors.Is(err, fs.ErrPermission) for a denied
// bind. Listen never returns a listener together with an error, and leaves
// nothing open or created behind on failure. A kind the platform lacks (abstract
// sockets outside Linux, for example) gives an error wrapping
// errors.ErrUnsupported.
func Listen(ctx context.Context, addr Address, opts *Options) (net.Listener, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if addr.kind == 0 {
		return nil, errors.New("anylisten: Listen on the zero Address; make one with ParseAddress")
	}
	if err := ctx.Err(); err != nil {
		return nil, listenError(addr, err)
	}
	var (
		ln  net.Listener
		err error
	)
	switch addr.kind {
	case KindTCP:
		ln, err = listenTCP(ctx, addr, &o)
	case KindUnix:
		ln, err = listenUnix(ctx, addr.str, &o)
	case KindAbstract:
		ln, err = listenAbstract(addr.str, &o)
	default:
		err = errNotYet
	}
	if err != nil {
		return nil, listenError(addr, err)
	}
	return ln, nil
}

// errNotYet is returned for address kinds whose backend is still to come.
var errNotYet = errors.New("this address kind is not implemented yet: " + errors.ErrUnsupported.Error())

// listenError wraps err once, as a *net.OpError that names addr, unless it
// already is one (as errors from package net are).
func listenError(addr Address, err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return err
	}
	return &net.OpError{Op: "listen", Net: addr.network(), Addr: addrString{addr.network(), addr.String()}, Err: err}
}

// network is the Net of the errors and net.Addrs for a.
func (a Address) network() string {
	switch a.kind {
	case KindUnix, KindAbstract:
		return "unix"
	case KindSystemd:
		return "sd-listen"
	}
	return a.kind.String()
}

// addrString is a net.Addr made of two strings, for error messages and for
// addresses package net has no type for.
type addrString struct{ net, addr string }

func (a addrString) Network() string { return a.net }
func (a addrString) String() string  { return a.addr }
