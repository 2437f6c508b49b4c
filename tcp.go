package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"
)

// listenTCP listens with net.ListenConfig, so that name resolution, dual
// stack and every default are net.Listen's own, and sets the options in
// its Control hook, between socket and bind. A port in use is an error
// that names its holders, or with TCPKillPort, their stop (portInUse).
func listenTCP(ctx context.Context, a Address, o *Options) (net.Listener, error) {
	if o.TCPKillPort && !canKillPort {
		return nil, fmt.Errorf("%s works on Linux only, not on %s: %w", killPortOption, runtime.GOOS, errors.ErrUnsupported)
	}
	var lc net.ListenConfig
	switch {
	case o.TCPKeepalive != nil && o.TCPKeepalive.Off:
		lc.KeepAlive = -1
	case o.TCPKeepalive != nil:
		lc.KeepAliveConfig = keepaliveConfig(o.TCPKeepalive)
	}
	lc.Control = ipControl(o)
	a, err := lookupService(ctx, a, "tcp")
	if err != nil {
		return nil, err
	}
	listen := func() (net.Listener, error) {
		return lc.Listen(ctx, "tcp", a.hostPort())
	}
	ln, err := listen()
	if errors.Is(err, syscall.EADDRINUSE) {
		ln, err = portInUse(ctx, err, listen, o.TCPKillPort, o.TCPOnlyV6)
	}
	if err != nil {
		return nil, err
	}
	if o.TCPListenBacklog > 0 {
		// net.Listen always asks for somaxconn; a second listen() on a
		// listening socket changes only its backlog.
		tl := ln.(*net.TCPListener)
		rc, err := tl.SyscallConn()
		if err == nil {
			err = rawControl(rc, func(fd uintptr) error { return setBacklog(fd, o.TCPListenBacklog) })
		}
		if err != nil {
			tl.Close()
			return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: tl.Addr(), Err: err}
		}
	}
	return ln, nil
}

// keepaliveListener applies the keep-alive option to the connections of an
// inherited TCP listener, whose net.ListenConfig is package net's default.
// Accept returns *net.TCPConn values, unwrapped.
type keepaliveListener struct {
	*net.TCPListener
	cfg net.KeepAliveConfig
}

func (l *keepaliveListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptTCP accepts the next connection and sets its keep-alive. As
// package net does for its own keep-alive default, a failure to set it
// does not fail the connection.
func (l *keepaliveListener) AcceptTCP() (*net.TCPConn, error) {
	c, err := l.TCPListener.AcceptTCP()
	if err != nil {
		return nil, err
	}
	_ = c.SetKeepAliveConfig(l.cfg)
	return c, nil
}

// lookupService returns a with its service name, if it has one, replaced
// by the port number network ("tcp" or "udp") gives it, as package net
// looks it up.
func lookupService(ctx context.Context, a Address, network string) (Address, error) {
	if a.svc == "" {
		return a, nil
	}
	port, err := net.DefaultResolver.LookupPort(ctx, network, a.svc)
	if err != nil {
		return a, fmt.Errorf("unknown service name %q (looked up as package net does, in /etc/services); give a port number: %w", a.svc, err)
	}
	a.svc, a.num = "", uint32(port)
	return a, nil
}
