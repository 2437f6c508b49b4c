//go:build unix && !(dragonfly || freebsd || linux || netbsd || openbsd)

package anylisten

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketCloexec creates a non-blocking socket that is closed on exec. Where
// socket() takes no SOCK_CLOEXEC, the fork lock keeps a concurrent exec
// from inheriting it before the flag is set.
func socketCloexec(domain, typ int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(domain, typ, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// dupCloexec duplicates fd to a new close-on-exec descriptor above 2.
func dupCloexec(fd int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD, 3)
	if err != nil {
		return -1, os.NewSyscallError("fcntl F_DUPFD", err)
	}
	unix.CloseOnExec(nfd)
	return nfd, nil
}

// socketpairCloexec makes a pair of connected UNIX stream sockets that are
// closed on exec.
func socketpairCloexec() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return fds, os.NewSyscallError("socketpair", err)
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	return fds, nil
}
