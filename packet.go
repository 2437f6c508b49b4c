package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// ListenPacket opens a datagram socket on addr, configured by opts (nil
// means the defaults), for servers that speak datagrams (DNS, syslog,
// statsd, QUIC's http3.Server.Serve). ctx bounds the setup, such as
// resolving a host name; once ListenPacket has returned, cancelling ctx
// does not affect the socket.
//
// The socket is the kernel's own, as net.ListenPacket gives it:
//
//   - TCP forms (HOST:PORT, :PORT, PORT, tcp://HOST:PORT) and
//     udp://HOST:PORT: a *net.UDPConn, unwrapped. So one address serves a
//     server's TCP (Listen) and UDP (ListenPacket) side by side, as DNS
//     does on :53.
//   - UNIX path (and unix:PATH, unixgram:PATH): a *UnixgramConn, which
//     embeds the *net.UnixConn (keeping its methods) and adds a Close that
//     removes the socket file, which package net never does for a
//     datagram socket. This is the one wrapper ListenPacket returns. The
//     socket file follows every rule of Listen's: it appears at its path
//     only once bound and given its mode and owner, a stale socket is
//     replaced only with Options.UnixListenUnlink, nothing else is ever
//     replaced, and Close removes only the file this socket made.
//   - Linux abstract name (@name, unixgram:@name): a *net.UnixConn.
//   - systemd (sd-listen, sd-listen:NAME, fd://N): the inherited datagram
//     socket (ListenDatagram=), a *net.UDPConn or *net.UnixConn. sd-listen
//     and sd-listen:NAME look only at the datagram sockets passed, so that
//     one name can select a unit's ListenStream= socket for Listen and its
//     ListenDatagram= socket for ListenPacket; fd://N must name a datagram
//     socket. sd-listen:* is an error: it merges sockets, and a
//     PacketConn is one socket.
//
// As with Listen, a UDP or UNIX address that names a datagram socket
// passed in by a service manager (bound to exactly that address) adopts
// it, unless Options.NoAdopt, and an Upgrader's ListenPacket takes over the
// socket its predecessor's ListenPacket handed over for the address.
//
// The options that apply: RecvBufferSize and SendBufferSize (set on the
// socket itself), TCPReusePort (SO_REUSEPORT on the UDP socket) and
// TCPOnlyV6 for UDP; the UNIX socket file options for a path. The other
// TCP options are ignored. The allow lists (UnixAllowUID, UnixAllowGID)
// are an error: a datagram has no connection whose peer could be checked.
//
// Stream-only forms are errors that say why: unixpacket: (serve it with
// Listen), inetd (a stream connection), vsock (AF_VSOCK datagrams are not
// supported), a passed stream socket. Errors are *net.OpError values (Op
// "listen"), as Listen's are; ListenPacket never returns a socket together
// with an error, and leaves nothing open or created behind on failure.
// The caller owns the socket and must Close it.
func ListenPacket(ctx context.Context, addr Address, opts *Options) (net.PacketConn, error) {
	o, err := begin(ctx, addr, packetForm(addr), opts)
	if err != nil {
		return nil, err
	}
	pc, err := listenPacket(ctx, addr, &o)
	if err != nil {
		return nil, opError("listen", packetForm(addr), err)
	}
	return pc, nil
}

// packetForm is addr as ListenPacket serves it, for its errors: a TCP
// form as udp://, a UNIX path or name as unixgram:.
func packetForm(addr Address) Address {
	switch {
	case addr.kind == KindTCP:
		addr.kind = KindUDP
	case (addr.kind == KindUnix || addr.kind == KindAbstract) && addr.typ == 0:
		addr.typ = typDgram
	}
	return addr
}

func listenPacket(ctx context.Context, addr Address, o *Options) (net.PacketConn, error) {
	if err := refusePacket(addr, o); err != nil {
		return nil, err
	}
	if err := refuseNoFile(addr, o); err != nil {
		return nil, err
	}
	if !o.NoAdopt {
		if pc, err := adoptInheritedPacket(ctx, addr, o); pc != nil || err != nil {
			return pc, err
		}
	}
	switch addr.kind {
	case KindTCP, KindUDP:
		return listenUDP(ctx, addr, o)
	case KindUnix:
		return listenUnixgram(addr.str, o)
	case KindAbstract:
		return listenAbstractgram(addr.str, o)
	case KindSystemd:
		return listenSystemdPacket(addr, o)
	}
	return nil, fmt.Errorf("no datagram socket for %s", addr) // not reached: refusePacket
}

// refusePacket says why ListenPacket cannot serve addr with o, or nil.
func refusePacket(addr Address, o *Options) error {
	switch {
	case addr.typ == typSeqpacket:
		return errors.New("a seqpacket socket has connections: serve it with Listen, not ListenPacket")
	case addr.kind == KindInetd:
		return errors.New("inetd passes one stream connection on stdin and stdout, not a datagram socket: serve it with Listen, not ListenPacket")
	case addr.kind == KindVsock:
		return fmt.Errorf("AF_VSOCK datagrams are not supported (only stream sockets, through Listen): %w", errors.ErrUnsupported)
	case addr.kind == KindNpipe:
		return errors.New("a named pipe is served as a byte stream (message-mode pipes are not offered): serve it with Listen, not ListenPacket")
	}
	return refusePacketAllow(o)
}

// refuseStream says why Listen cannot serve addr, or nil: an address of
// the datagram schemes.
func refuseStream(addr Address) error {
	if addr.kind == KindUDP || addr.typ == typDgram {
		return fmt.Errorf("%s is a datagram address: serve it with ListenPacket (a net.PacketConn), not Listen", addr)
	}
	return nil
}

// listenUDP listens with net.ListenConfig, as listenTCP does, so that name
// resolution, dual stack and every default are net.ListenPacket's own.
func listenUDP(ctx context.Context, a Address, o *Options) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: ipControl(o)}
	a, err := lookupService(ctx, a, "udp")
	if err != nil {
		return nil, err
	}
	pc, err := lc.ListenPacket(ctx, "udp", a.hostPort())
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, udpInUse(err, o.TCPOnlyV6)
	}
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}
