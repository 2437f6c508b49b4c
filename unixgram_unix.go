//go:build unix

package anylisten

import (
	"net"
	"os"

	"github.com/anylisten/anylisten/internal/sockfile"
	"golang.org/x/sys/unix"
)

// listenUnixgram binds a UNIX datagram socket to path, with the socket
// file rules of listenUnix (see internal/sockfile): bound at the path
// itself where nobody else can write its directory (Linux), so that its
// kernel name, which its peers see as the address it sends from, is the
// path; elsewhere in a private directory, as a stream socket is.
func listenUnixgram(path string, o *Options) (net.PacketConn, error) {
	fd, err := socketCloexec(unix.AF_UNIX, unix.SOCK_DGRAM)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// Bound at the path itself where that is safe, so that its peers see
	// the path as the address its datagrams come from.
	so := socketFileOptions(o)
	so.Named = true
	file, err := sockfile.Create(path, fd, so, testHookBeforeListen)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	pc, err := filePacketConn(fd, path, o)
	if err != nil {
		file.Remove()
		file.Close()
		return nil, err
	}
	c := &UnixgramConn{UnixConn: pc.(*net.UnixConn), addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
	c.sf.own(file)
	return c, nil
}

// filePacketConn makes a net.PacketConn of the bound datagram socket fd,
// which it takes (closing it on error too), with o's buffer sizes; name
// is for the *os.File.
func filePacketConn(fd int, name string, o *Options) (net.PacketConn, error) {
	f := os.NewFile(uintptr(fd), name)
	pc, err := net.FilePacketConn(f)
	f.Close() // package net holds its own duplicate
	if err != nil {
		return nil, err
	}
	if err := setPacketBuffers(pc, o); err != nil {
		pc.Close()
		return nil, err
	}
	return pc, nil
}
