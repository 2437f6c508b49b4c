package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"time"
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
	if o.TCPReusePort || o.TCPOnlyV6 || o.RecvBufferSize > 0 || o.SendBufferSize > 0 {
		lc.Control = func(network, _ string, c syscall.RawConn) error {
			return rawControl(c, func(fd uintptr) error { return setTCPOptions(fd, network, o) })
		}
	}
	if a.svc != "" {
		port, err := net.DefaultResolver.LookupPort(ctx, "tcp", a.svc)
		if err != nil {
			return nil, fmt.Errorf("unknown service name %q (looked up as package net does, in /etc/services); give a port number: %w", a.svc, err)
		}
		a.svc, a.num = "", uint32(port)
	}
	listen := func() (net.Listener, error) {
		return lc.Listen(ctx, "tcp", a.hostPort())
	}
	ln, err := listen()
	if errors.Is(err, syscall.EADDRINUSE) {
		ln, err = portInUse(ctx, err, listen, o.TCPKillPort)
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

// rawControl runs f on the fd of c and returns the first error.
func rawControl(c syscall.RawConn, f func(fd uintptr) error) error {
	var ferr error
	if err := c.Control(func(fd uintptr) { ferr = f(fd) }); err != nil {
		return err
	}
	return ferr
}

// keepaliveConfig converts the option to package net's form. (A
// KeepAliveConfig with Enable false turns keep-alive off, as
// ListenConfig.KeepAlive -1 does.)
func keepaliveConfig(k *TCPKeepalive) net.KeepAliveConfig {
	// In net.KeepAliveConfig a negative value keeps the OS's default and
	// zero means Go's own default; a zero TCPKeepalive field means the OS's.
	osDefault := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	if k.Off {
		return net.KeepAliveConfig{Enable: false}
	}
	return net.KeepAliveConfig{
		Enable:   true,
		Idle:     osDefault(k.Idle),
		Interval: osDefault(k.Interval),
		Count:    int(osDefault(time.Duration(k.Count))),
	}
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
