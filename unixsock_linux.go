package anylisten

import (
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/anylisten/anylisten/internal/holder"
	"golang.org/x/sys/unix"
)

// listenAbstract listens on the Linux abstract socket @name, which lives in
// the network namespace, not the file system: there is no file to place,
// chmod, chown or unlink, and bind itself refuses a name in use, so of two
// servers starting at once exactly one gets it.
func listenAbstract(name string, o *Options) (net.Listener, error) {
	fd, err := socketCloexec(unix.AF_UNIX, unix.SOCK_STREAM)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// package syscall's sockaddr takes an abstract name of the full 107
	// bytes; x/sys/unix's stops one short.
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: "@" + name}); err != nil {
		unix.Close(fd)
		err = os.NewSyscallError("bind", err)
		if errors.Is(err, syscall.EADDRINUSE) {
			h := holder.Unix(func(kernelName string) bool { return kernelName == "@"+name })
			err = &heldError{err: err, holders: h.String()}
		}
		return nil, err
	}
	if err := listenFD(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	ul, err := fileUnixListener(fd, "@"+name)
	if err != nil {
		return nil, err
	}
	ul.opts = bufferOpts(o)
	return ul, nil
}
