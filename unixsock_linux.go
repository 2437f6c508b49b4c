package anylisten

import (
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/anylisten/anylisten/internal/holder"
	"golang.org/x/sys/unix"
)

// listenAbstract listens on the Linux abstract socket @name, a stream
// socket or, for typSeqpacket, a seqpacket one. It lives in the network
// namespace, not the file system: there is no file to place, chmod, chown
// or unlink, and bind itself refuses a name in use, so of two servers
// starting at once exactly one gets it.
func listenAbstract(name string, typ sockType, o *Options) (net.Listener, error) {
	st := unix.SOCK_STREAM
	if typ == typSeqpacket {
		st = unix.SOCK_SEQPACKET
	}
	fd, err := bindAbstract(name, st)
	if err != nil {
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
	ul.opts, ul.allow = bufferOpts(o), newAllowList(o)
	return ul, nil
}

// listenAbstractgram binds a datagram socket to the Linux abstract name
// @name: a bare *net.UnixConn, since there is no file to remove.
func listenAbstractgram(name string, o *Options) (net.PacketConn, error) {
	fd, err := bindAbstract(name, unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
	}
	return filePacketConn(fd, "@"+name, o)
}

// bindAbstract makes a socket of type st bound to @name. A name in use is
// an error that names its holders where /proc shows them.
func bindAbstract(name string, st int) (int, error) {
	fd, err := socketCloexec(unix.AF_UNIX, st)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
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
		return -1, err
	}
	return fd, nil
}
