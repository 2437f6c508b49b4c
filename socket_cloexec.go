//go:build dragonfly || freebsd || linux || netbsd || openbsd

package anylisten

import "golang.org/x/sys/unix"

// socketCloexec creates a non-blocking socket that is closed on exec.
func socketCloexec(domain, typ int) (int, error) {
	return unix.Socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}
