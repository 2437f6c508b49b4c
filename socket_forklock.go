//go:build unix && !(dragonfly || freebsd || linux || netbsd || openbsd)

package anylisten

import (
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
