package anylisten

import (
	"context"
	"errors"
	"net"
)

// Dial connects to the server listening on addr, given as the same string
// the server was given: a TCP address (an empty host means this machine),
// a UNIX socket path, an abstract name or a vsock address. inetd and
// systemd addresses name no place to connect to and give an error.
//
// It returns *net.TCPConn, *net.UnixConn or *vsock.Conn. ctx bounds the
// connection attempt (for vsock only its cancellation before the attempt
// is seen); once connected, cancelling ctx does not affect the connection.
func Dial(ctx context.Context, addr Address) (net.Conn, error) {
	var d net.Dialer
	switch addr.kind {
	case KindTCP:
		return d.DialContext(ctx, "tcp", addr.hostPort())
	case KindUnix:
		return d.DialContext(ctx, "unix", addr.str)
	case KindAbstract:
		return d.DialContext(ctx, "unix", "@"+addr.str)
	case KindVsock:
		if err := ctx.Err(); err != nil {
			return nil, opError("dial", addr, err)
		}
		c, err := dialVsock(addr)
		if err != nil {
			return nil, opError("dial", addr, err)
		}
		return c, nil
	case KindInetd, KindSystemd:
		return nil, opError("dial", addr, errors.New("an inherited socket names no address to connect to; "+
			"dial the address the service manager listens on instead"))
	}
	return nil, &net.OpError{Op: "dial", Err: errors.New("the zero Address names nothing to connect to; make one with ParseAddress")}
}

// DialContext connects to a, ignoring network and address: it has the
// signature of net.Dialer.DialContext, so that an HTTP client reaches a
// server on a UNIX or abstract socket (what curl --unix-socket does) with
//
//	client := &http.Client{Transport: &http.Transport{DialContext: addr.DialContext}}
//
// and any URL host, such as http://app/. The arguments are ignored on
// purpose: the URL's host only fills the request's Host header, and a says
// where to connect, whatever the URL.
func (a Address) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return Dial(ctx, a)
}
