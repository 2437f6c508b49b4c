package anylisten

import (
	"net"
	"syscall"
	"time"
)

// The socket options that more than one backend sets. Here the portable
// helpers; sockopt_unix.go and sockopt_nonunix.go hold the platform halves
// (setIPOptions, setBuffers, setBacklog; listenFD on Unix only), and
// sockopt_unixnonsolaris.go and sockopt_solaris.go setReusePort.

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

// bufferOpts returns o if accepted connections need its buffer sizes.
func bufferOpts(o *Options) *Options {
	if o.RecvBufferSize > 0 || o.SendBufferSize > 0 {
		return o
	}
	return nil
}

// setPacketBuffers sets the buffer options on a datagram socket.
func setPacketBuffers(pc net.PacketConn, o *Options) error {
	if bufferOpts(o) == nil {
		return nil
	}
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return rawControl(rc, func(fd uintptr) error { return setBuffers(fd, o) })
}

// ipControl returns the net.ListenConfig Control hook that sets o's
// options on a TCP or UDP socket between socket and bind, or nil when o
// sets none.
func ipControl(o *Options) func(network, address string, c syscall.RawConn) error {
	if !o.TCPReusePort && !o.TCPOnlyV6 && bufferOpts(o) == nil {
		return nil
	}
	return func(network, _ string, c syscall.RawConn) error {
		return rawControl(c, func(fd uintptr) error { return setIPOptions(fd, network, o) })
	}
}
