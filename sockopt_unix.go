//go:build unix

package anylisten

import (
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// setIPOptions sets the socket options of a TCP listening socket or a UDP
// socket before bind. network is "tcp4", "tcp6", "udp4" or "udp6".
func setIPOptions(fd uintptr, network string, o *Options) error {
	s := int(fd)
	if o.TCPReusePort {
		if err := setReusePort(s); err != nil {
			return err
		}
	}
	if o.TCPOnlyV6 && (network == "tcp6" || network == "udp6") {
		if err := unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	return setBuffers(fd, o)
}

// setBuffers sets SO_RCVBUF and SO_SNDBUF where o asks for them.
func setBuffers(fd uintptr, o *Options) error {
	if o.RecvBufferSize > 0 {
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, o.RecvBufferSize); err != nil {
			return os.NewSyscallError("setsockopt SO_RCVBUF", err)
		}
	}
	if o.SendBufferSize > 0 {
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, o.SendBufferSize); err != nil {
			return os.NewSyscallError("setsockopt SO_SNDBUF", err)
		}
	}
	return nil
}

// listenFD makes the bound socket fd listen. The kernel caps the backlog
// at its maximum (somaxconn), which is what net.Listen asks for.
func listenFD(fd int) error {
	return os.NewSyscallError("listen", unix.Listen(fd, math.MaxInt32))
}

// setBacklog calls listen() again on a listening socket, which changes
// its backlog (the kernel caps it at its maximum).
func setBacklog(fd uintptr, backlog int) error {
	return os.NewSyscallError("listen", unix.Listen(int(fd), backlog))
}
