//go:build dragonfly || freebsd || linux || netbsd || openbsd

package anylisten

import (
	"os"

	"golang.org/x/sys/unix"
)

// socketCloexec creates a non-blocking socket that is closed on exec.
func socketCloexec(domain, typ int) (int, error) {
	return unix.Socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}

// dupCloexec duplicates fd to a new close-on-exec descriptor above 2.
func dupCloexec(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	return nfd, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
}

// socketpairCloexec makes a pair of connected UNIX stream sockets that are
// closed on exec.
func socketpairCloexec() ([2]int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	return fds, os.NewSyscallError("socketpair", err)
}
