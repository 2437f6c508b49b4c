//go:build unix

package anylisten

import (
	"context"
	"net"
	"os"

	"github.com/anylisten/anylisten/internal/sockfile"
	"golang.org/x/sys/unix"
)

// testHookBeforeListen, if set by a test, is called with the name the
// socket was bound to (in its private directory) after bind, chown and
// chmod, and before listen; an error it returns fails Listen there.
var testHookBeforeListen func(bound string) error

// listenUnix listens on a UNIX socket path, with a stream socket or, for
// typSeqpacket, a seqpacket one. The socket file appears at the path only
// once it is bound, owned, moded and listening (see internal/sockfile); a
// stale socket there is replaced only with UnixListenUnlink, and nothing
// else ever is.
func listenUnix(_ context.Context, path string, typ sockType, o *Options) (net.Listener, error) {
	st, network := unix.SOCK_STREAM, "unix"
	if typ == typSeqpacket {
		st, network = unix.SOCK_SEQPACKET, "unixpacket"
	}
	fd, err := socketCloexec(unix.AF_UNIX, st)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	file, err := sockfile.Create(path, fd, socketFileOptions(o), func(bound string) error {
		if testHookBeforeListen != nil {
			if err := testHookBeforeListen(bound); err != nil {
				return err
			}
		}
		return listenFD(fd)
	})
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ul, err := fileUnixListener(fd, path)
	if err != nil {
		file.Remove()
		file.Close()
		return nil, err
	}
	ul.sf.own(file)
	ul.addr = &net.UnixAddr{Name: path, Net: network}
	ul.opts, ul.allow = bufferOpts(o), newAllowList(o)
	return ul, nil
}

// fileUnixListener makes a *UnixListener of the listening socket fd,
// which it takes (closing it on error too); name is for the *os.File.
func fileUnixListener(fd int, name string) (*UnixListener, error) {
	f := os.NewFile(uintptr(fd), name)
	fl, err := net.FileListener(f)
	f.Close() // package net holds its own duplicate
	if err != nil {
		return nil, err
	}
	return &UnixListener{UnixListener: fl.(*net.UnixListener)}, nil
}
