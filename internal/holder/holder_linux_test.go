package holder

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TCP finds this process as the holder of its own listeners, IPv4 and
// IPv6, and nobody once they are closed.
func TestTCPFindsThisProcess(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ta := ln.Addr().(*net.TCPAddr)
		h := TCP(ta, false)
		if len(h.Procs) != 1 || h.Procs[0].PID != os.Getpid() || !h.Procs[0].StillHolds() || len(h.HiddenUIDs) != 0 {
			t.Errorf("TCP(%v) = %+v; want this process (pid %d) only", ta, h, os.Getpid())
		}
		ln.Close()
		if h := TCP(ta, false); len(h.Procs) != 0 {
			t.Errorf("TCP(%v) after Close = %+v; want nobody", ta, h)
		}
	}
}

// Another process's IPv6 wildcard socket matches an IPv4 address only as
// Uncertain (it may be IPV6_V6ONLY, as Go's "tcp6" makes it); an IPv4
// holder does not clash with our IPv6 wildcard when we are v6only.
func TestTCPUncertainAcrossFamilies(t *testing.T) {
	ln6, err := net.Listen("tcp6", "[::]:0") // IPV6_V6ONLY
	if err != nil {
		t.Skip(err)
	}
	defer ln6.Close()
	port := ln6.Addr().(*net.TCPAddr).Port
	h := TCP(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, false)
	if len(h.Procs) != 1 || !h.Uncertain {
		t.Errorf("an IPv6 wildcard holder of 127.0.0.1:%d: %+v, want this process, Uncertain", port, h)
	}
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	port4 := ln4.Addr().(*net.TCPAddr).Port
	if h := TCP(&net.TCPAddr{Port: port4}, true); len(h.Procs) != 0 {
		t.Errorf("a v6only [::]:%d clashes with 127.0.0.1:%d: %+v, want nobody", port4, port4, h)
	}
	if h := TCP(&net.TCPAddr{Port: port4}, false); len(h.Procs) != 1 || h.Uncertain {
		t.Errorf("a dual-stack [::]:%d with 127.0.0.1:%d: %+v, want this process, certain", port4, port4, h)
	}
}

// sockInode returns the inode of the socket c, as /proc/PID/fd shows it.
func sockInode(t *testing.T, c syscall.Conn) uint64 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return st.Ino
}

// bindGram binds a UNIX datagram socket to name until the test ends, and
// returns its inode.
func bindGram(t *testing.T, name string) uint64 {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return sockInode(t, c)
}

// Unix finds this process, with the very socket, for a listening socket
// at a path, a listening abstract name ("@" for the leading NUL, the rest
// kept as it is) and a bound datagram socket; not for a stream socket
// that is bound but does not listen, nor once the sockets are closed.
func TestUnixFindsThisProcess(t *testing.T) {
	dir := t.TempDir()
	pid := strconv.Itoa(os.Getpid())
	listen := func(network, name string) (io.Closer, uint64) {
		var c interface {
			io.Closer
			syscall.Conn
		}
		var err error
		if network == "unixgram" {
			c, err = net.ListenUnixgram(network, &net.UnixAddr{Name: name, Net: network})
		} else {
			c, err = net.ListenUnix(network, &net.UnixAddr{Name: name, Net: network})
		}
		if err != nil {
			t.Fatal(err)
		}
		return c, sockInode(t, c)
	}
	for _, tt := range []struct{ network, name string }{
		{"unix", filepath.Join(dir, "stream.sock")},
		{"unix", "@anylisten-holder-test-" + pid + " with a space"},
		{"unixpacket", "@anylisten-holder-test-packet-" + pid},
		{"unixgram", filepath.Join(dir, "gram.sock")},
		{"unixgram", "@anylisten-holder-test-gram-" + pid + "\x00inner NUL"},
	} {
		c, ino := listen(tt.network, tt.name)
		h := Unix(func(name string) bool { return name == tt.name })
		if len(h.Procs) != 1 || h.Procs[0].PID != os.Getpid() || !slices.Equal(h.Procs[0].inodes, []uint64{ino}) || !h.Procs[0].StillHolds() {
			t.Errorf("%s %q: Unix = %+v; want this process (pid %d) with socket %d only", tt.network, tt.name, h, os.Getpid(), ino)
		}
		c.Close()
		if h := Unix(func(name string) bool { return name == tt.name }); len(h.Procs) != 0 {
			t.Errorf("%s %q after Close: Unix = %+v; want nobody", tt.network, tt.name, h)
		}
	}
	// Bound, not listening: Go's ListenUnix would listen, so bind by hand.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	name := "@anylisten-holder-test-bound-" + pid
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		t.Fatal(err)
	}
	if h := Unix(func(n string) bool { return n == name }); len(h.Procs) != 0 {
		t.Errorf("a bound stream socket that does not listen: Unix = %+v; want nobody", h)
	}
}

// A name with a newline and what /proc/net/unix would show as another
// socket's line changes nothing: neither a forged line naming another
// socket's inode (here a TCP listener's, which no real line names) at the
// name in question, nor one that repeats the real socket's inode.
func TestUnixNotForged(t *testing.T) {
	if err := eachUnixSocket(func(unixSocket) {}); errors.Is(err, errDiagUnavailable) {
		t.Skip(err) // the /proc/net/unix fallback believes a forged line naming a TCP socket
	}
	held := "@anylisten-holder-held-" + strconv.Itoa(os.Getpid())
	realIno := bindGram(t, held)
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	for i, ino := range []uint64{sockInode(t, tcp), realIno} {
		bindGram(t, "@f"+strconv.Itoa(i)+"\n0: 2 0 10000 1 1 "+strconv.FormatUint(ino, 10)+" "+held)
	}
	h := Unix(func(name string) bool { return name == held })
	if len(h.Procs) != 1 || h.Procs[0].PID != os.Getpid() || !slices.Equal(h.Procs[0].inodes, []uint64{realIno}) {
		t.Errorf("Unix(%q) = %+v; want this process with socket %d only", held, h, realIno)
	}
}

// The /proc/net/unix fallback, for a system without sock_diag, still
// finds a socket, and drops an inode that a forged line repeats.
func TestUnixProcFallback(t *testing.T) {
	held := "@anylisten-holder-proc-" + strconv.Itoa(os.Getpid())
	ino := bindGram(t, held)
	match := func(name string) bool { return name == held }
	if got := unixProcOwners(match); len(got) != 1 || got[ino] != -1 {
		t.Errorf("unixProcOwners = %v; want socket %d only", got, ino)
	}
	bindGram(t, "@g\n0: 2 0 0 2 1 "+strconv.FormatUint(ino, 10)+" @x")
	if got := unixProcOwners(match); len(got) != 0 {
		t.Errorf("unixProcOwners with the inode repeated = %v; want none believed", got)
	}
}

// nlMsg is a netlink message of type typ and sequence number seq with the
// payload parts, padded to the alignment.
func nlMsg(typ uint16, seq uint32, parts ...[]byte) []byte {
	body := slices.Concat(parts...)
	b, _ := binary.Append(nil, binary.NativeEndian, unix.NlMsghdr{Len: uint32(unix.SizeofNlMsghdr + len(body)), Type: typ, Seq: seq})
	b = append(b, body...)
	return append(b, make([]byte, nlAlign(len(b))-len(b))...)
}

// diagMsg is a unix_diag_msg, with a UNIX_DIAG_NAME of name unless nil.
func diagMsg(typ, state uint8, ino uint32, name []byte) []byte {
	b, _ := binary.Append(nil, binary.NativeEndian, unixDiagMsg{Family: unix.AF_UNIX, Type: typ, State: state, Ino: ino})
	if name != nil {
		b, _ = binary.Append(b, binary.NativeEndian, unix.RtAttr{Len: uint16(unix.SizeofRtAttr + len(name)), Type: unixDiagName})
		b = append(b, name...)
		b = append(b, make([]byte, nlAlign(len(b))-len(b))...)
	}
	return b
}

func errno(e unix.Errno) []byte {
	return binary.NativeEndian.AppendUint32(make([]byte, 0, unix.SizeofNlMsgerr), uint32(-int32(e)))
}

// parseUnixDiag takes the sockets of a datagram, names as anylisten
// writes them, and refuses what does not fit.
func TestParseUnixDiag(t *testing.T) {
	path := append([]byte("/run/x.sock"), 0)
	abstract := []byte("\x00ab\ncd\x00e")
	good := slices.Concat(
		nlMsg(unix.SOCK_DIAG_BY_FAMILY, 7, diagMsg(unix.SOCK_STREAM, tcpListenSt, 11, path)),
		nlMsg(unix.SOCK_DIAG_BY_FAMILY, 8, diagMsg(unix.SOCK_DGRAM, 7, 99, path)), // another request's
		nlMsg(unix.SOCK_DIAG_BY_FAMILY, 7, diagMsg(unix.SOCK_DGRAM, 7, 12, abstract)),
		nlMsg(unix.SOCK_DIAG_BY_FAMILY, 7, diagMsg(unix.SOCK_STREAM, 1, 13, nil)),
	)
	want := []unixSocket{
		{ino: 11, typ: unix.SOCK_STREAM, state: tcpListenSt, name: "/run/x.sock"},
		{ino: 12, typ: unix.SOCK_DGRAM, state: 7, name: "@ab\ncd\x00e"},
		{ino: 13, typ: unix.SOCK_STREAM, state: 1},
	}
	for _, tt := range []struct {
		name string
		b    []byte
		done bool
		err  string
		n    int // the sockets of want it gives before it stops
	}{
		{"sockets", good, false, "", 3},
		{"sockets, then done", slices.Concat(good, nlMsg(unix.NLMSG_DONE, 7, errno(0))), true, "", 3},
		{"error", nlMsg(unix.NLMSG_ERROR, 7, errno(unix.ENOENT), make([]byte, unix.SizeofNlMsghdr)), false, "no such file", 0},
		{"dump failed", slices.Concat(good, nlMsg(unix.NLMSG_DONE, 7, errno(unix.EINTR))), true, "interrupted", 3},
		{"message longer than the datagram", good[:len(good)-4], false, "message length", 2},
		{"header cut short", slices.Concat(good, make([]byte, 8)), false, "too few for a header", 3},
		{"attribute longer than its message", func() []byte {
			m := diagMsg(unix.SOCK_DGRAM, 7, 14, path)
			binary.NativeEndian.PutUint16(m[sizeofUnixDiagMsg:], 200)
			return slices.Concat(good, nlMsg(unix.SOCK_DIAG_BY_FAMILY, 7, m))
		}(), false, "attribute length", 3},
		{"socket message cut short", slices.Concat(good, nlMsg(unix.SOCK_DIAG_BY_FAMILY, 7, make([]byte, 8))), false, "too short", 3},
	} {
		var got []unixSocket
		done, err := parseUnixDiag(tt.b, 7, func(s unixSocket) { got = append(got, s) })
		if done != tt.done || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: done %v, error %v; want %v, %q", tt.name, done, err, tt.done, tt.err)
		}
		if tt.name == "error" && !diagUnavailable(err) {
			t.Errorf("%s: %v is not taken for sock_diag unavailable", tt.name, err)
		}
		if !slices.Equal(got, want[:tt.n]) {
			t.Errorf("%s: sockets %+v; want %+v", tt.name, got, want[:tt.n])
		}
	}
}
