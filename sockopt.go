package anylisten

import (
	"net"
	"syscall"
	"time"
)

// The socket options that more than one backend sets. Here the portable
// helpers; sockopt_unix.go and sockopt_nonunix.go hold the platform halves
// (setTCPOptions, setBuffers, setBacklog; listenFD on Unix only), and
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
