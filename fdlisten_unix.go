//go:build unix

package anylisten

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdInfo is what an inherited file descriptor turned out to be.
type fdInfo struct {
	fd        int
	typ       int  // SO_TYPE
	listening bool // SO_ACCEPTCONN
	local     unix.Sockaddr
}

// inspectFD looks at fd without changing it: inherited descriptors are
// checked, never trusted.
func inspectFD(fd int) (fdInfo, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	switch err {
	case nil:
	case unix.ENOTSOCK:
		return fdInfo{}, errors.New("not a socket")
	case unix.EBADF:
		return fdInfo{}, errors.New("not open")
	default:
		return fdInfo{}, os.NewSyscallError("getsockopt SO_TYPE", err)
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return fdInfo{}, os.NewSyscallError("getsockopt SO_ACCEPTCONN", err)
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		return fdInfo{}, os.NewSyscallError("getsockname", err)
	}
	return fdInfo{fd: fd, typ: typ, listening: acc != 0, local: local}, nil
}

// addr returns what the socket is bound to as a net.Addr: a
// *net.TCPAddr, *net.UDPAddr or *net.UnixAddr, or for another family its
// description.
func (i fdInfo) addr() net.Addr {
	switch sa := i.local.(type) {
	case *unix.SockaddrInet4:
		return sockAddr(i.typ, net.IP(sa.Addr[:]), sa.Port, "")
	case *unix.SockaddrInet6:
		zone := ""
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return sockAddr(i.typ, net.IP(sa.Addr[:]), sa.Port, zone)
	case *unix.SockaddrUnix:
		network := "unix"
		switch i.typ {
		case unix.SOCK_DGRAM:
			network = "unixgram"
		case unix.SOCK_SEQPACKET:
			network = "unixpacket"
		}
		return &net.UnixAddr{Name: sa.Name, Net: network}
	}
	family, on := describeSockaddr(i.local, "")
	return addrString{family, strings.TrimPrefix(on, " on ")}
}

func sockAddr(typ int, ip net.IP, port int, zone string) net.Addr {
	if typ == unix.SOCK_DGRAM {
		return &net.UDPAddr{IP: ip, Port: port, Zone: zone}
	}
	return &net.TCPAddr{IP: ip, Port: port, Zone: zone}
}

// String describes the socket for error messages, like "a datagram
// UDP/IPv4 socket on 127.0.0.1:53".
func (i fdInfo) String() string {
	state := "connected"
	if i.listening {
		state = "listening"
	}
	proto := "TCP"
	switch i.typ {
	case unix.SOCK_STREAM:
	case unix.SOCK_DGRAM:
		state, proto = "datagram", "UDP"
	case unix.SOCK_SEQPACKET:
		state, proto = state+" seqpacket", "SCTP"
	default:
		state, proto = "type "+strconv.Itoa(i.typ), "IP"
	}
	family, addr := describeSockaddr(i.local, proto)
	return "a " + state + " " + family + " socket" + addr
}

func describeSockaddr(sa unix.Sockaddr, proto string) (family, on string) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return proto + "/IPv4", " on " + net.JoinHostPort(net.IP(sa.Addr[:]).String(), strconv.Itoa(sa.Port))
	case *unix.SockaddrInet6:
		return proto + "/IPv6", " on " + net.JoinHostPort(net.IP(sa.Addr[:]).String(), strconv.Itoa(sa.Port))
	case *unix.SockaddrUnix:
		if sa.Name == "" {
			return "UNIX", " (unnamed)"
		}
		return "UNIX", " on " + sa.Name
	}
	if name, on := describeOtherSockaddr(sa); name != "" {
		return name, on
	}
	return "non-IP, non-UNIX", ""
}

// checkStream says why i cannot be served by Listen, or nil if it can: a
// listening stream socket, or a connected one, or a UNIX seqpacket socket
// of either kind.
func (i fdInfo) checkStream() error {
	_, isUnix := i.local.(*unix.SockaddrUnix)
	switch {
	case i.typ == unix.SOCK_DGRAM:
		return fmt.Errorf("%v: Listen serves stream and seqpacket sockets; serve a datagram socket with ListenPacket; the fd is left open", i)
	case i.typ == unix.SOCK_SEQPACKET && !isUnix:
		return fmt.Errorf("%v: only UNIX seqpacket sockets are served; the fd is left open", i)
	case i.typ != unix.SOCK_STREAM && i.typ != unix.SOCK_SEQPACKET:
		return fmt.Errorf("%v: only stream, seqpacket and datagram sockets are served; the fd is left open", i)
	}
	if !i.listening {
		if _, err := unix.Getpeername(i.fd); err == unix.ENOTCONN {
			return fmt.Errorf("%v is neither listening nor connected; the fd is left open",
				strings.Replace(i.String(), "connected", "stream", 1))
		}
		if isVsock(i.local) {
			return fmt.Errorf("%v: a connected AF_VSOCK socket (Accept=yes) is not supported; listen with Accept=no", i)
		}
	}
	return nil
}

// checkPacket says why i cannot be served by ListenPacket, or nil if it
// can: a UDP or UNIX datagram socket.
func (i fdInfo) checkPacket() error {
	if i.typ != unix.SOCK_DGRAM {
		return fmt.Errorf("%v: ListenPacket serves datagram sockets; serve a stream or seqpacket socket with Listen; the fd is left open", i)
	}
	switch i.local.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6, *unix.SockaddrUnix:
		return nil
	}
	return fmt.Errorf("%v: only UDP and UNIX datagram sockets are served; the fd is left open", i)
}

// fdListener makes a listener of the inherited socket i from a duplicate
// of its fd, leaving i.fd itself open: the caller closes it once every
// listener it needs was made. A listening socket gives its native
// listener, a connected one (systemd's Accept=yes, inetd) a listener that
// hands out that one connection. i must have passed checkStream.
func fdListener(i fdInfo, o *Options) (net.Listener, error) {
	if a := newAllowList(o); a != nil && !i.listening {
		if err := admitInherited(i.fd, i.addr(), a); err != nil {
			return nil, err
		}
	}
	fd, err := dupCloexec(i.fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "fd "+strconv.Itoa(i.fd))
	defer f.Close() // the listener holds package net's own duplicate
	if !i.listening {
		c, err := net.FileConn(f)
		if err != nil {
			return nil, err
		}
		return newOneConnListener(c), nil
	}
	if isVsock(i.local) {
		return vsockFileListener(f)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	switch l := ln.(type) {
	case *net.TCPListener:
		return inheritedTCP(l, o)
	case *net.UnixListener:
		return &UnixListener{UnixListener: l, opts: bufferOpts(o), allow: newAllowList(o)}, nil
	}
	return ln, nil
}

// admitInherited returns nil if the lists of a admit the peer of the
// inherited UNIX connection fd (checkAllow made sure it is one). It looks
// at fd itself, before package net has made it non-blocking, which would
// change the file that others share: a failed Listen leaves it as it was.
// A refused connection is shut down, so that it is dead for every holder
// of the file (inetd's stdin and stdout, systemd's fd, any later Listen),
// and the error is refuse's.
func admitInherited(fd int, local net.Addr, a *allowList) error {
	cred, err := sockPeerCredentials(uintptr(fd))
	if err == nil && a.allows(cred) {
		return nil
	}
	unix.Shutdown(fd, unix.SHUT_RDWR)
	return a.refuse(Refusal{Peer: cred, Err: err, Local: SocketPath(local)})
}

// checkAllow says why o's allow lists cannot be enforced on the
// connections of i, or nil: a UNIX socket that listens, or a connection
// that was accepted from one. One end of a socket pair (an unnamed
// socket), as socat's EXEC without nofork passes it to inetd, connects to
// the program that made the pair, not to a client, and a TCP or vsock
// peer has no uid. i must have passed checkStream.
func (i fdInfo) checkAllow(o *Options) error {
	if !o.allowing() {
		return nil
	}
	switch sa := i.local.(type) {
	case *unix.SockaddrUnix:
		if i.listening || !unnamedUnix(sa) {
			return nil
		}
		return fmt.Errorf("%v, one end of a socket pair: %w", i,
			o.unenforceable("its peer is the program that made the pair (socat's EXEC without nofork, say), not the client"))
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		return fmt.Errorf("%v: %w", i, o.unenforceable("a TCP peer has no uid"))
	}
	if isVsock(i.local) {
		return fmt.Errorf("%v: %w", i, o.unenforceable("a vsock peer has no uid"))
	}
	return fmt.Errorf("%v: %w", i, o.unenforceable("only a UNIX peer has a uid"))
}

// fdPacketConn makes a net.PacketConn of the inherited datagram socket i
// from a duplicate of its fd, leaving i.fd itself open: a *net.UDPConn or
// a *net.UnixConn, with the buffer options applied to the socket. i must
// have passed checkPacket.
func fdPacketConn(i fdInfo, o *Options) (net.PacketConn, error) {
	fd, err := dupCloexec(i.fd)
	if err != nil {
		return nil, err
	}
	return filePacketConn(fd, "fd "+strconv.Itoa(i.fd), o)
}

// inheritedTCP applies the options that concern accepted connections to a
// TCP listener somebody else created: buffer sizes on the listening socket
// (accepted sockets inherit them), keep-alive on each accepted connection.
func inheritedTCP(l *net.TCPListener, o *Options) (net.Listener, error) {
	if o.RecvBufferSize > 0 || o.SendBufferSize > 0 {
		rc, err := l.SyscallConn()
		if err == nil {
			err = rawControl(rc, func(fd uintptr) error { return setBuffers(fd, o) })
		}
		if err != nil {
			l.Close()
			return nil, err
		}
	}
	if o.TCPKeepalive != nil {
		return &keepaliveListener{l, keepaliveConfig(o.TCPKeepalive)}, nil
	}
	return l, nil
}

// dupSocket duplicates the fd of a listener or connection to a new
// close-on-exec fd, which the caller owns. For a closed one the error wraps
// net.ErrClosed.
func dupSocket(sc syscall.Conn) (int, error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	err = rawControl(rc, func(fd uintptr) error {
		var err error
		nfd, err = dupCloexec(int(fd))
		return err
	})
	return nfd, err
}
