package anylisten

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// The hand-over protocol: how a process hands its listening sockets to the
// successor an Upgrader starts, and how the successor takes them and says
// it serves. It extends systemd's socket activation protocol, so that a
// successor takes the sockets with the same code that serves a start by
// systemd:
//
//   - The sockets are fds 3, 4, ... with LISTEN_FDS, LISTEN_PID (the
//     successor's pid) and LISTEN_FDNAMES. Each socket's name is the
//     canonical form of the address it serves (handoverName), so that the
//     successor's Listen of the same address takes it; the k-th listener on
//     the same address (k > 1; two on "127.0.0.1:0", say) gets the suffix
//     "#k", so that the successor's k-th Listen of it takes that one.
//     Datagram sockets (ListenPacket) are named and counted the same way,
//     apart from the stream sockets: the successor's Listen takes only
//     stream and seqpacket sockets, and its ListenPacket only datagram
//     sockets. Listeners the process closed are not handed over.
//   - The fd after the sockets (ANYLISTEN_READY_FD) is one end of a UNIX
//     stream socket pair. The successor writes "ready\n" on it in Ready;
//     the predecessor answers "go\n" if it still waits, and otherwise
//     (ReadyTimeout expired, ctx done) closes its end without answering.
//     Only after "go" does the successor own what it took: a late ready
//     counts for nothing.
//   - From the start of Upgrade, a Close of the predecessor's UNIX listener
//     leaves its socket file; if the successor takes over, the file is
//     the successor's, otherwise it is removed then. ANYLISTEN_UNLINK_FDS
//     lists the sockets whose files the predecessor owned (it had bound
//     them, or owned them in turn; never a file systemd made), each as
//     FD:DEV:INO with the file's identity. After "go", the successor owns
//     those files, provided the file at the path is still that inode: it
//     removes the ones it took over when it closes them, and at once those
//     of the sockets it was handed but did not take (an address its new
//     configuration dropped). Another file at the path (another server's,
//     or one a swapped directory leads to) is never removed. It closes
//     the sockets it did not take, so that their clients are refused
//     rather than left waiting. A predecessor of the earlier protocol (a
//     pipe, no answer) passes no files on.

// Ready tells whoever started this process that it now serves: the
// process that handed it its listeners (Upgrader.Upgrade waits for this),
// and, on Linux, systemd, through sd_notify, with READY=1 and MAINPID, so
// that a Type=notify service follows a successor (which needs
// NotifyAccess=all).
// Call it once every Listen is done, best just before serving: connections
// wait in the kernel's queue meanwhile, and a successor that an Upgrader
// gives up on has then accepted none.
//
// Once the predecessor has accepted the word, this process owns the UNIX
// socket files it took over, and closes (and removes the files of) the
// handed-over sockets it did not take. If the predecessor gave up waiting
// (its ReadyTimeout expired), Ready returns an error and changes nothing:
// the predecessor serves on and stops this process. Where nobody waits
// (no Upgrader started this process, no NOTIFY_SOCKET), Ready does
// nothing. Calling it again does nothing more than tell systemd again.
//
// Ready has no timeout of its own: a predecessor answers at once, or
// closes the socket when its ReadyTimeout expires or it exits.
func Ready() error {
	if err := readyToPredecessor(); err != nil {
		return err
	}
	return notifySystemdReady()
}

const (
	// readyFDVar names the fd of the socket on which a successor says it
	// is ready. Its value is only trusted when LISTEN_PID names the
	// process and it is the fd right after the sockets.
	readyFDVar = "ANYLISTEN_READY_FD"
	// unlinkFDsVar lists the passed fds (comma-separated) whose socket
	// files the predecessor owned and passes on to its successor.
	unlinkFDsVar = "ANYLISTEN_UNLINK_FDS"
	// readyMessage is what a successor writes on it, goMessage the
	// predecessor's answer.
	readyMessage = "ready\n"
	goMessage    = "go\n"
)

// handedListener is a listener (ln) or a datagram socket (pc) that an
// Upgrader hands over, and the address it was opened for.
type handedListener struct {
	addr Address
	ln   net.Listener
	pc   net.PacketConn
}

// sock returns the listener or the datagram socket.
func (h handedListener) sock() any {
	if h.pc != nil {
		return h.pc
	}
	return h.ln
}

// key tells apart the listeners whose sockets get the same name: those of
// one address, and among them the stream sockets of Listen from the
// datagram sockets of ListenPacket (a server on :53 may have both, each
// taken by its own call in the successor, which tells them by type).
func (h handedListener) key() string {
	if h.pc != nil {
		return "packet " + h.addr.String()
	}
	return h.addr.String()
}

// handoverName is the LISTEN_FDNAMES entry for the sockets of the k-th
// listener (from 1) on a: its canonical form, with the bytes systemd does
// not allow in a name (':', spaces and controls, non-ASCII) and '%' and '#'
// percent-encoded, and "#k" after it for k > 1.
func handoverName(a Address, k int) string {
	const hex = "0123456789ABCDEF"
	s := a.String()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ':' || c == '%' || c == '#' || c <= ' ' || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	if k > 1 {
		b.WriteString("#" + strconv.Itoa(k))
	}
	return b.String()
}

// parseHandoverName returns the address a handoverName names.
func parseHandoverName(name string) (Address, error) {
	name, _, _ = strings.Cut(name, "#")
	s, err := url.PathUnescape(name)
	if err != nil {
		return Address{}, err
	}
	return ParseAddress(s)
}
