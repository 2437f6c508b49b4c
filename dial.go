package anylisten

import (
	"context"
	"errors"
	"net"
)

// Dial connects to the server listening on addr, given as the same string
// the server was given: a TCP address (an empty host means this machine),
// a UNIX socket path, an abstract name, a vsock address or (on Windows) a
// named pipe; unixpacket:
// dials a seqpacket socket, and udp:// and unixgram: a datagram socket
// (connected: Write sends to addr, Read receives only from it; a unixgram
// socket is unbound, so it sends but gets no answers). A plain TCP form
// or path dials a stream socket, as the server's Listen made it. inetd and
// systemd addresses name no place to connect to and give an error.
//
// It returns *net.TCPConn, *net.UDPConn, *net.UnixConn, *vsock.Conn, or
// for a named pipe go-winio's connection (a winio.PipeConn, from
// DialPipeContext, which asks for read and write access). ctx bounds the
// connection attempt (for vsock only its cancellation before the attempt
// is seen; a pipe whose every instance is busy is retried until ctx is
// done, so give it a deadline); once connected, cancelling ctx does not
// affect the connection. Outside Windows a named pipe is an error
// wrapping errors.ErrUnsupported.
func Dial(ctx context.Context, addr Address) (net.Conn, error) {
	var d net.Dialer
	switch addr.kind {
	case KindTCP, KindUDP, KindUnix, KindAbstract:
		return d.DialContext(ctx, addr.Network(), addr.dialAddress())
	case KindVsock:
		if err := ctx.Err(); err != nil {
			return nil, opError("dial", addr, err)
		}
		c, err := dialVsock(addr)
		if err != nil {
			return nil, opError("dial", addr, err)
		}
		return c, nil
	case KindNpipe:
		c, err := dialNpipe(ctx, addr.Path())
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
// server on a UNIX or abstract socket (what curl --unix-socket does) or,
// on Windows, a named pipe with
//
//	client := &http.Client{Transport: &http.Transport{DialContext: addr.DialContext}}
//
// and any URL host, such as http://app/. The arguments are ignored on
// purpose: the URL's host only fills the request's Host header, and a says
// where to connect, whatever the URL.
func (a Address) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return Dial(ctx, a)
}

// dialAddress is a TCP or UDP address's HOST:PORT, or a UNIX address's
// path or @name.
func (a Address) dialAddress() string {
	if a.kind == KindTCP || a.kind == KindUDP {
		return a.hostPort()
	}
	return a.Path()
}
