package holder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// The UNIX sockets are listed through NETLINK_SOCK_DIAG (sock_diag(7),
// <linux/unix_diag.h>), which gives each socket's name with its length,
// as a field of its own: /proc/net/unix prints the name as it is, and a
// name may hold a newline and what looks like another socket's line.
// x/sys/unix has the netlink constants but not these.

// unixDiagReq is struct unix_diag_req.
type unixDiagReq struct {
	Family   uint8 // sdiag_family: AF_UNIX
	Protocol uint8 // sdiag_protocol: 0
	Pad      uint16
	States   uint32 // udiag_states: a bit for each state (1 << state) to list
	Ino      uint32 // udiag_ino: for SOCK_DIAG_BY_FAMILY without NLM_F_DUMP
	Show     uint32 // udiag_show: UDIAG_SHOW_* of what to report
	Cookie   [2]uint32
}

// unixDiagMsg is struct unix_diag_msg, followed in each reply by
// attributes (struct rtattr) that udiag_show asked for.
type unixDiagMsg struct {
	Family uint8 // udiag_family: AF_UNIX
	Type   uint8 // udiag_type: SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
	State  uint8 // udiag_state: TCP_LISTEN for a listening socket
	Pad    uint8
	Ino    uint32 // udiag_ino: the socket's inode, "socket:[INO]" in /proc/PID/fd
	Cookie [2]uint32
}

const (
	udiagShowName = 0x1 // UDIAG_SHOW_NAME
	unixDiagName  = 0   // UNIX_DIAG_NAME, the attribute that holds the name
	tcpListenSt   = 10  // TCP_LISTEN, the state of a listening UNIX socket

	sizeofUnixDiagReq = 24
	sizeofUnixDiagMsg = 16

	// diagBufSize holds any one datagram of a dump: the kernel makes none
	// larger than 32 KiB (netlink_dump caps its allocation there).
	diagBufSize = 32 << 10
	// diagTimeout bounds each wait for the kernel's next datagram.
	diagTimeout = 5 * time.Second
)

// unixSocket is a UNIX socket as unix_diag reports it.
type unixSocket struct {
	ino   uint32
	typ   uint8
	state uint8
	name  string // as the kernel keeps it, "@" for an abstract name's leading NUL; "" if unbound
}

// errDiagUnavailable wraps the errors that say that this system offers no
// sock_diag for UNIX sockets, not that a dump failed.
var errDiagUnavailable = errors.New("sock_diag for AF_UNIX is unavailable")

// diagUnavailable reports whether err says that sock_diag cannot be used
// here at all: no netlink (EAFNOSUPPORT), no NETLINK_SOCK_DIAG
// (EPROTONOSUPPORT, as in gVisor), no unix_diag (ENOENT, the module not
// built), or a sandbox (seccomp or an LSM) that refuses it (EACCES,
// EPERM, ENOSYS, EOPNOTSUPP).
func diagUnavailable(err error) bool {
	for _, e := range []error{unix.EAFNOSUPPORT, unix.EPROTONOSUPPORT, unix.ENOENT, unix.EACCES, unix.EPERM, unix.ENOSYS, unix.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// eachUnixSocket calls f with each UNIX socket of this network namespace,
// from one NETLINK_SOCK_DIAG dump. An error after some calls means that
// the dump is incomplete; one that wraps errDiagUnavailable comes before
// any call.
func eachUnixSocket(f func(unixSocket)) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return unavailableOr(fmt.Errorf("socket: %w", err))
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(diagTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("setsockopt: %w", err)
	}
	const seq = 1
	req, err := binary.Append(nil, binary.NativeEndian, unix.NlMsghdr{
		Len:   unix.SizeofNlMsghdr + sizeofUnixDiagReq,
		Type:  unix.SOCK_DIAG_BY_FAMILY,
		Flags: unix.NLM_F_REQUEST | unix.NLM_F_DUMP,
		Seq:   seq,
	})
	if err == nil {
		req, err = binary.Append(req, binary.NativeEndian, unixDiagReq{
			Family: unix.AF_UNIX,
			States: ^uint32(0), // all
			Show:   udiagShowName,
		})
	}
	if err != nil {
		return err
	}
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return unavailableOr(fmt.Errorf("sendto: %w", err))
	}
	buf := make([]byte, diagBufSize)
	sockets := 0
	count := func(s unixSocket) { sockets++; f(s) }
	for {
		n, _, flags, from, err := unix.Recvmsg(fd, buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("recvmsg: %w", err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			return errors.New("recvmsg: a netlink datagram larger than the buffer")
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue // not from the kernel
		}
		done, err := parseUnixDiag(buf[:n], seq, count)
		if err != nil && sockets == 0 {
			// The kernel refuses the whole request (no unix_diag,
			// ENOENT) in its first reply, before any socket.
			return unavailableOr(err)
		}
		if err != nil || done {
			return err
		}
	}
}

// unavailableOr wraps err in errDiagUnavailable if diagUnavailable(err).
func unavailableOr(err error) error {
	if diagUnavailable(err) {
		return fmt.Errorf("%w: %w", errDiagUnavailable, err)
	}
	return err
}

// parseUnixDiag calls f with each UNIX socket in b, one datagram of the
// reply to the dump request seq, and reports whether it ended the dump
// (NLMSG_DONE). A message that does not fit in b, or a socket message
// that does not fit in its own, is an error, as is NLMSG_ERROR; messages
// of another sequence number are skipped.
func parseUnixDiag(b []byte, seq uint32, f func(unixSocket)) (done bool, err error) {
	for len(b) > 0 {
		var h unix.NlMsghdr
		if len(b) < unix.SizeofNlMsghdr {
			return false, fmt.Errorf("netlink: %d bytes left, too few for a header", len(b))
		}
		if _, err := binary.Decode(b, binary.NativeEndian, &h); err != nil {
			return false, err
		}
		if h.Len < unix.SizeofNlMsghdr || uint64(h.Len) > uint64(len(b)) {
			return false, fmt.Errorf("netlink: message length %d, with %d bytes left", h.Len, len(b))
		}
		body := b[unix.SizeofNlMsghdr:h.Len]
		b = b[min(nlAlign(h.Len), len(b)):]
		if h.Seq != seq {
			continue
		}
		switch h.Type {
		case unix.NLMSG_DONE:
			// Its payload, where there is one, is an int: 0, or a
			// negative errno if the dump failed.
			if len(body) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(body)); e < 0 {
					return true, fmt.Errorf("netlink dump: %w", unix.Errno(-e))
				}
			}
			return true, nil
		case unix.NLMSG_ERROR:
			if len(body) < 4 {
				return false, errors.New("netlink: a short NLMSG_ERROR")
			}
			if e := int32(binary.NativeEndian.Uint32(body)); e < 0 {
				return false, fmt.Errorf("netlink: %w", unix.Errno(-e))
			}
			continue // an acknowledgement, which a dump does not ask for
		case unix.NLMSG_NOOP:
			continue
		case unix.SOCK_DIAG_BY_FAMILY:
		default:
			return false, fmt.Errorf("netlink: unexpected message type %d", h.Type)
		}
		var m unixDiagMsg
		if len(body) < sizeofUnixDiagMsg {
			return false, fmt.Errorf("unix_diag: a message of %d bytes, too short", len(body))
		}
		if _, err := binary.Decode(body, binary.NativeEndian, &m); err != nil {
			return false, err
		}
		if m.Family != unix.AF_UNIX {
			return false, fmt.Errorf("unix_diag: a socket of family %d", m.Family)
		}
		s := unixSocket{ino: m.Ino, typ: m.Type, state: m.State}
		for a := body[nlAlign(sizeofUnixDiagMsg):]; len(a) > 0; {
			if len(a) < unix.SizeofRtAttr {
				return false, errors.New("unix_diag: a truncated attribute")
			}
			l := int(binary.NativeEndian.Uint16(a))
			typ := binary.NativeEndian.Uint16(a[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
			if l < unix.SizeofRtAttr || l > len(a) {
				return false, fmt.Errorf("unix_diag: attribute length %d, with %d bytes left", l, len(a))
			}
			if typ == unixDiagName {
				s.name = sunPath(a[unix.SizeofRtAttr:l])
			}
			a = a[min(nlAlign(l), len(a)):]
		}
		f(s)
	}
	return false, nil
}

// nlAlign rounds n up to the 4-byte alignment of netlink messages and
// attributes (NLMSG_ALIGNTO, RTA_ALIGNTO).
func nlAlign[T uint32 | int](n T) int {
	return (int(n) + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
}

// sunPath is the name the kernel keeps, the sun_path bytes of
// UNIX_DIAG_NAME, as the rest of anylisten writes it: an abstract name,
// which starts with a NUL byte, as "@" and the rest, every byte kept; a
// path up to its terminating NUL.
func sunPath(p []byte) string {
	if len(p) > 0 && p[0] == 0 {
		return "@" + string(p[1:])
	}
	for i, c := range p {
		if c == 0 {
			return string(p[:i])
		}
	}
	return string(p)
}
