package anylisten

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"golang.org/x/sys/unix"
)

// holdChild holds an address until SIGTERM, mode "hold".
func holdChild() int {
	addr, err := ParseAddress(os.Getenv("ANYLISTEN_TEST_ADDRS"))
	if err != nil {
		return childBadEnv("ANYLISTEN_TEST_ADDRS: %v", err)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	var ln io.Closer
	switch network := os.Getenv("ANYLISTEN_TEST_NET"); network {
	case "":
		ln, err = Listen(context.Background(), addr, nil)
	case "packet":
		ln, err = ListenPacket(context.Background(), addr, nil)
	default:
		ln, err = net.Listen(network, os.Getenv("ANYLISTEN_TEST_ADDRS"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "LISTEN ERROR:", err)
		return 3
	}
	defer ln.Close()
	fmt.Fprintln(os.Stderr, "HOLDING", os.Getpid())
	for range term {
		if os.Getenv("ANYLISTEN_TEST_IGNORE_TERM") == "" {
			fmt.Fprintln(os.Stderr, "SIGTERM: EXITING")
			return 0
		}
		fmt.Fprintln(os.Stderr, "SIGTERM: IGNORED")
	}
	return 0
}

// startHolder starts the test binary as a holder (mode "hold") of the
// address that addr makes of a port, on a free port, and returns it once it holds the port, with the
// port. A port taken meanwhile is replaced, up to three times.
func startHolder(t *testing.T, addr func(port string) string, ignoreTerm bool) (*child, string) {
	t.Helper()
	for range 3 {
		port := freePort(t)
		c := startHolderOf(t, addr(port), ignoreTerm, "")
		if c != nil {
			return c, port
		}
	}
	t.Fatal("three free ports were taken before the holder could listen")
	return nil, ""
}

// startHolderOf starts a holder of addr, which Listens on it, or with a
// network, calls net.Listen; it returns nil if the address was in use.
func startHolderOf(t *testing.T, addr string, ignoreTerm bool, network string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	vars := []string{"ANYLISTEN_TEST_ADDRS=" + addr}
	if ignoreTerm {
		vars = append(vars, "ANYLISTEN_TEST_IGNORE_TERM=1")
	}
	if network != "" {
		vars = append(vars, "ANYLISTEN_TEST_NET="+network)
	}
	cmd.Env = append(os.Environ(), childModeEnv("hold", vars...)...)
	c := startChild(t, cmd)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.stderr.String(), "HOLDING ") {
		select {
		case <-c.exited:
			if strings.Contains(c.stderr.String(), syscall.EADDRINUSE.Error()) {
				return nil
			}
			t.Fatalf("holder of %s exited (%v); stderr:\n%s", addr, c.cmd.ProcessState, c.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("holder of %s did not listen within 10 s; stderr:\n%s", addr, c.stderr)
		}
	}
	return c
}

// heldByText is how an error names the holder c, a test binary:
// "(held by pid 1234 (anylisten.test))". The command name is the
// executable's name cut to the kernel's 15 bytes.
func heldByText(c *child) string {
	name := filepath.Base(os.Args[0])
	return fmt.Sprintf("(held by pid %d (%s))", c.cmd.Process.Pid, name[:min(len(name), 15)])
}

// exited reports whether the child has exited.
func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// checkInUse fails t unless err is Listen's error for an address in use:
// a *net.OpError that wraps EADDRINUSE.
func checkInUse(t *testing.T, ln net.Listener, err error) {
	t.Helper()
	var oe *net.OpError
	if err == nil || ln != nil || !errors.As(err, &oe) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Listen = %v, %v; want no listener and a *net.OpError that wraps EADDRINUSE", ln, err)
	}
}

// An address in use names the process that holds it, for every way the
// two addresses clash.
func TestPortInUseNamesHolder(t *testing.T) {
	for _, tt := range []struct{ name, holder, ours string }{
		{"same address", "127.0.0.1:%s", "127.0.0.1:%s"},
		{"ours is the wildcard", "127.0.0.1:%s", ":%s"},
		{"theirs is the wildcard", "0.0.0.0:%s", "127.0.0.1:%s"},
		{"IPv6 wildcard against IPv4", "[::]:%s", "127.0.0.1:%s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, port := startHolder(t, func(p string) string { return fmt.Sprintf(tt.holder, p) }, false)
			ln, err := Listen(context.Background(), MustParseAddress(fmt.Sprintf(tt.ours, port)), nil)
			checkInUse(t, ln, err)
			want := fmt.Sprintf("listen tcp %s: bind: address already in use %s", fmt.Sprintf(tt.ours, port), heldByText(h))
			if got := err.Error(); got != want {
				t.Errorf("Listen error:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// A live UNIX socket at a path names its holder, whether it was bound
// there (by package net) or, as anylisten binds, in a private directory
// and moved; so does an abstract name in use.
func TestUnixInUseNamesHolder(t *testing.T) {
	dir := testenv.SocketDir(t)
	abstract := "@anylisten-test-" + strconv.Itoa(os.Getpid())
	for _, tt := range []struct{ name, addr, network, why string }{
		{"anylisten", filepath.Join(dir, "anylisten.sock"), "", ": a live server has this socket open %s; it is not taken over"},
		{"bound at the path", filepath.Join(dir, "net.sock"), "unix", ": a live server has this socket open %s; it is not taken over"},
		{"abstract", abstract, "", " %s"},
		{"datagram", filepath.Join(dir, "gram.sock"), "packet", ": a live server has this socket open %s; it is not taken over"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startHolderOf(t, tt.addr, false, tt.network)
			ln, err := Listen(context.Background(), MustParseAddress(tt.addr), nil)
			checkInUse(t, ln, err)
			want := "listen unix " + tt.addr + ": bind: address already in use" + fmt.Sprintf(tt.why, heldByText(h))
			if got := err.Error(); got != want {
				t.Errorf("Listen error:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// With TCPKillPort the holder gets SIGTERM, exits, and Listen binds.
func TestKillPortStopsHolder(t *testing.T) {
	h, port := startHolder(t, func(p string) string { return "127.0.0.1:" + p }, false)
	ln, err := Listen(context.Background(), MustParseAddress("127.0.0.1:"+port), &Options{TCPKillPort: true})
	if err != nil {
		t.Fatalf("Listen with TCPKillPort: %v; holder's stderr:\n%s", err, h.stderr)
	}
	defer ln.Close()
	roundTrip(t, ln)
	if code := h.wait(t); code != 0 || !strings.Contains(h.stderr.String(), "SIGTERM: EXITING") {
		t.Errorf("holder exited with status %d, stderr:\n%s\nwant status 0 after SIGTERM", code, h.stderr)
	}
}

// A holder that ignores SIGTERM keeps the port: Listen fails after its
// bounded wait, says so, and has not killed the holder.
func TestKillPortHolderIgnoresTerm(t *testing.T) {
	h, port := startHolder(t, func(p string) string { return "127.0.0.1:" + p }, true)
	ln, err := Listen(context.Background(), MustParseAddress("127.0.0.1:"+port), &Options{TCPKillPort: true})
	checkInUse(t, ln, err)
	held := strings.TrimSuffix(strings.TrimPrefix(heldByText(h), "(held by "), ")")
	want := fmt.Sprintf("listen tcp 127.0.0.1:%s: bind: address already in use %s; the tcp_kill_port option (--tcp-kill-port) "+
		"sent SIGTERM to %s, and the port was still in use 5s later; it never sends SIGKILL: stop the holder yourself", port, heldByText(h), held)
	if got := err.Error(); got != want {
		t.Errorf("Listen error:\n got %s\nwant %s", got, want)
	}
	if h.hasExited() {
		t.Fatalf("the holder exited (%v); want it still running; stderr:\n%s", h.cmd.ProcessState, h.stderr)
	}
	if !strings.Contains(h.stderr.String(), "SIGTERM: IGNORED") {
		t.Errorf("the holder got no SIGTERM; stderr:\n%s", h.stderr)
	}
}

// TCPKillPort never stops this process itself: the same address given
// twice would otherwise kill the program.
func TestKillPortRefusesSelf(t *testing.T) {
	first := listenT(t, "127.0.0.1:0", nil)
	addr := first.Addr().String()
	ln, err := Listen(context.Background(), MustParseAddress(addr), &Options{TCPKillPort: true})
	checkInUse(t, ln, err)
	self := fmt.Sprintf("pid %d (%s), this process", os.Getpid(), strings.TrimSuffix(mustRead(t, "/proc/self/comm"), "\n"))
	want := fmt.Sprintf("listen tcp %s: bind: address already in use (held by %s); the tcp_kill_port option (--tcp-kill-port) "+
		"does not stop this process itself, which holds the port: is the address given twice?", addr, self)
	if got := err.Error(); got != want {
		t.Errorf("Listen error:\n got %s\nwant %s", got, want)
	}
	roundTrip(t, first)
}

// A UDP port in use is an error that names its holder, as a TCP port's
// is: here this process, which a datagram server given one address twice
// finds.
func TestUDPPortInUseNamesHolder(t *testing.T) {
	first := listenPacketT(t, "127.0.0.1:0", nil)
	addr := first.LocalAddr().String()
	pc, err := ListenPacket(context.Background(), MustParseAddress(addr), nil)
	if pc != nil {
		pc.Close()
	}
	self := fmt.Sprintf("pid %d (%s), this process", os.Getpid(), strings.TrimSuffix(mustRead(t, "/proc/self/comm"), "\n"))
	want := fmt.Sprintf("listen udp %s: bind: address already in use (held by %s)", addr, self)
	if err == nil || err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("ListenPacket error:\n got %v\nwant %s (wrapping EADDRINUSE)", err, want)
	}
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TCPKillPort run as uid 65534 refuses to stop root's holder, and says
// why; root's holder keeps running.
func TestKillPortRefusesOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the holder as root and Listen as uid 65534 (nobody); run the tests as root")
	}
	h, port := startHolder(t, func(p string) string { return "127.0.0.1:" + p }, false)
	base := testenv.SocketDir(t)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "anylisten.test")
	copyExecutable(t, bin)
	r := runHostileChild(t, bin, []hostileChildCase{{Addr: "127.0.0.1:" + port, Opts: Options{TCPKillPort: true}}})[0]
	want := "listen tcp 127.0.0.1:" + port + ": bind: address already in use (held by a process of uid 0 that this process cannot see); " +
		"the tcp_kill_port option (--tcp-kill-port) does not stop the holder: it belongs to uid 0, and this process runs as uid " +
		strconv.Itoa(nobody) + ", not root"
	if r.Err != want || !r.OpError {
		t.Errorf("Listen as uid %d with TCPKillPort:\n got %q (a *net.OpError: %v)\nwant %q", nobody, r.Err, r.OpError, want)
	}
	if h.hasExited() || strings.Contains(h.stderr.String(), "SIGTERM") {
		t.Errorf("root's holder was signalled or exited (%v); stderr:\n%s", h.cmd.ProcessState, h.stderr)
	}
}

// From review: --tcp-kill-port must not stop a process that does not hold
// the address. /proc does not show IPV6_V6ONLY, so another process's IPv6
// wildcard socket only may clash with an IPv4 address: kill-port then
// refuses, and stops nobody; our own IPV6_V6ONLY (TCPOnlyV6) leaves IPv4
// holders out. (Both signalled the wrong process before.)
func TestKillPortAcrossFamilies(t *testing.T) {
	t.Run("their v6only wildcard", func(t *testing.T) {
		port := freePort(t)
		innocent := startHolderOf(t, "[::]:"+port, false, "tcp6") // Go's tcp6 is IPV6_V6ONLY
		real := startHolderOf(t, "127.0.0.1:"+port, false, "tcp4")
		if innocent == nil || real == nil {
			t.Skip("the port was taken meanwhile")
		}
		ln, err := Listen(context.Background(), MustParseAddress("127.0.0.1:"+port), &Options{TCPKillPort: true})
		if err == nil {
			ln.Close()
			t.Fatal("Listen succeeded: kill-port stopped a holder it could not be sure of")
		}
		if !strings.Contains(err.Error(), "does not stop a holder that may not hold this address") {
			t.Errorf("Listen error: %v; want a refusal that says why", err)
		}
		if innocent.hasExited() || real.hasExited() {
			t.Errorf("a holder was stopped: [::] exited %v, 127.0.0.1 exited %v", innocent.hasExited(), real.hasExited())
		}
	})
	t.Run("our v6only wildcard", func(t *testing.T) {
		port := freePort(t)
		innocent := startHolderOf(t, "127.0.0.1:"+port, false, "tcp4")
		real := startHolderOf(t, "[::1]:"+port, false, "tcp6")
		if innocent == nil || real == nil {
			t.Skip("the port was taken meanwhile")
		}
		ln, err := Listen(context.Background(), MustParseAddress("[::]:"+port), &Options{TCPOnlyV6: true, TCPKillPort: true})
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		ln.Close()
		if innocent.hasExited() {
			t.Error("kill-port stopped the holder of 127.0.0.1, which a v6only [::] does not clash with")
		}
		real.wait(t)
	})
}

// The kernel prints a socket's name in /proc/net/unix as it is: a name
// with a newline can carry a line that looks like another socket's record,
// naming any socket's inode at the path in question. A fresh-eyes review
// had "held by" name an innocent process so; a forged line repeats an
// inode, and is not believed.
func TestHolderNotForged(t *testing.T) {
	held := "@anylisten-test-held-" + strconv.Itoa(os.Getpid())
	pc := listenPacketT(t, "unixgram:"+held, nil) // the real holder: this process
	innocent := startHolderOf(t, "@anylisten-test-innocent-"+strconv.Itoa(os.Getpid()), false, "")
	ino := ""
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", innocent.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", innocent.cmd.Process.Pid, e.Name()))
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			ino = strings.TrimSuffix(s, "]")
		}
	}
	if ino == "" {
		t.Fatal("the innocent holder has no socket")
	}
	forged := "@x\n0000000000000000: 00000002 00000000 00010000 0001 01 " + ino + " " + held
	forger, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: forged, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	_, err = ListenPacket(context.Background(), MustParseAddress(pc.LocalAddr().String()), nil)
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("ListenPacket of a name in use: %v", err)
	}
	if bad := fmt.Sprintf("pid %d", innocent.cmd.Process.Pid); strings.Contains(err.Error(), bad) {
		t.Errorf("the error names the innocent process (%s), from a forged line: %v", bad, err)
	}
	if self := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(err.Error(), self) {
		t.Errorf("the error does not name the real holder (%s): %v", self, err)
	}
}

// forgeChild binds the names of ANYLISTEN_TEST_NAMES, mode "forge".
func forgeChild() int {
	var names []string
	if err := json.Unmarshal([]byte(os.Getenv("ANYLISTEN_TEST_NAMES")), &names); err != nil {
		return childBadEnv("ANYLISTEN_TEST_NAMES: %v", err)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	for _, name := range names {
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			return childFatalf("bind %q: %v", name, err)
		}
		defer c.Close()
	}
	fmt.Fprintf(os.Stderr, "FORGED uid=%d\n", os.Getuid())
	select {
	case <-term:
	case <-time.After(60 * time.Second):
	}
	return 0
}

// socketInodes returns the inodes of the sockets that process pid has open.
func socketInodes(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd/", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var inos []string
	for _, e := range ents {
		l, _ := os.Readlink(dir + e.Name())
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			inos = append(inos, strings.TrimSuffix(s, "]"))
		}
	}
	return inos
}

// From review: any local user can bind an abstract name that holds a
// newline and what /proc/net/unix shows as a line of its own. Run as uid
// 65534, such names made "held by" name an innocent process (a forged
// line naming the inode of its TCP socket, which no real line names) and
// hide the real holder (a forged line repeating its socket's inode, which
// the duplicate defence then dropped). The sockets now come from
// sock_diag, which no name can forge: the error names the real holder,
// this process, only.
func TestHolderNotForgedByOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the forger as uid 65534 (nobody); run the tests as root")
	}
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG); err != nil {
		t.Skipf("no sock_diag (%v): the /proc/net/unix fallback believes a forged line naming a TCP socket", err)
	} else {
		unix.Close(fd)
	}
	base := testenv.SocketDir(t)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "anylisten.test")
	copyExecutable(t, bin)
	path := filepath.Join(base, "held.sock")
	ln := listenT(t, path, nil) // the real holder: this process
	var st unix.Stat_t
	rc, err := ln.(*UnixListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { err = unix.Fstat(int(fd), &st) })
	if err != nil {
		t.Fatal(err)
	}
	realIno := strconv.FormatUint(st.Ino, 10)
	innocent := startHolderOf(t, "127.0.0.1:0", false, "")
	innocentInos := socketInodes(t, innocent.cmd.Process.Pid)
	if len(innocentInos) == 0 {
		t.Fatal("the innocent holder has no socket")
	}
	// A line of /proc/net/unix: Num RefCount Protocol Flags (10000:
	// listening) Type (2: datagram) St Inode Path.
	line := func(ino string) string { return "0: 2 0 10000 1 1 " + ino + " " + path }
	self := fmt.Sprintf("pid %d (%s), this process", os.Getpid(), strings.TrimSuffix(mustRead(t, "/proc/self/comm"), "\n"))
	want := "listen unix " + path + ": bind: address already in use: a live server has this socket open (held by " + self + "); it is not taken over"
	for _, tt := range []struct {
		name   string
		forged []string // the inodes of the forged lines
	}{
		{"innocent named", innocentInos},
		{"real holder hidden", []string{realIno}},
		{"both", append([]string{realIno}, innocentInos...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			for i, ino := range tt.forged {
				names = append(names, "@f"+strconv.Itoa(i)+"\n"+line(ino))
			}
			js, err := json.Marshal(names)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin)
			cmd.Dir = base
			cmd.Env = append(os.Environ(), childModeEnv("forge", "ANYLISTEN_TEST_NAMES="+string(js))...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			forger := startChild(t, cmd)
			forger.waitFor(t, fmt.Sprintf("FORGED uid=%d", nobody))
			defer func() { forger.cmd.Process.Signal(syscall.SIGTERM); forger.wait(t) }()
			// The control: /proc/net/unix shows each forged line as a line.
			table := mustRead(t, "/proc/net/unix")
			for _, ino := range tt.forged {
				if !strings.Contains(table, "\n"+line(ino)+"\n") {
					t.Fatalf("/proc/net/unix has no forged line %q", line(ino))
				}
			}
			ln, err := Listen(context.Background(), MustParseAddress(path), nil)
			checkInUse(t, ln, err)
			if got := err.Error(); got != want {
				t.Errorf("Listen error:\n got %s\nwant %s\n(the innocent holder is pid %d)", got, want, innocent.cmd.Process.Pid)
			}
		})
	}
}
