package anylisten

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the program that inherits sockets: with
// ANYLISTEN_TEST_CHILD set, TestMain runs childMain instead of the tests,
// so that tests can start it under the real systemd-socket-activate, socat
// or a hand-made LISTEN_FDS environment.
//
//	ANYLISTEN_TEST_CHILD  addresses to listen on, separated by commas
//	ANYLISTEN_TEST_OPTS   Options as JSON
//	ANYLISTEN_TEST_CONNS  connections to serve before exiting (default 1);
//	                      0 serves until Accept fails, -1 exits at once
//	ANYLISTEN_TEST_READY  if set, call Ready once listening
//	ANYLISTEN_TEST_CLOEXEC an fd whose close-on-exec flag to print once listening
//	ANYLISTEN_TEST_LINGER with CONNS=-1, how long to wait before closing
//	ANYLISTEN_TEST_SPAWN  if set, before the first Listen start a shell and
//	                      print what it has at fd 3: "SPAWN fd3=TARGET"
//	ANYLISTEN_TEST_LATE_READY if set, call Ready only once SIGTERM came,
//	                      print "LATE READY: <error or ok>", close, exit 0
//
// It prints "LISTENER TYPE ADDR" on stderr for each listener. For each
// connection it writes one line, "CONN LISTENER LOCAL REMOTE
// LISTEN_FDS=...", and closes it. A Listen error is printed as
// "LISTEN ERROR: ..." on stderr with exit status 3, or 4 if the first
// Listen failed and changed fds 0-2 all the same; an fd leak (more open
// fds after closing every listener than before listening) exits 4.
func TestMain(m *testing.M) {
	if os.Getenv("ANYLISTEN_TEST_CHILD") != "" {
		os.Exit(childMain())
	}
	os.Exit(checkSuiteFDs(m.Run))
}

// checkSuiteFDs runs the tests and fails the run if they leave more fds
// open than there were before: every error path of every backend is
// walked by some test, and none may leak. (Tests also check their own
// fds with checkNoFDLeak, to say which one leaks.)
func checkSuiteFDs(run func() int) int {
	startPoller()
	before := openFDSet()
	code := run()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var leaked []string
		for fd, target := range openFDSet() {
			if _, ok := before[fd]; !ok {
				leaked = append(leaked, fd+" -> "+target)
			}
		}
		if len(leaked) == 0 {
			return code
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "FD LEAK: the test suite left %d fds open: %v\n", len(leaked), leaked)
			return 1
		}
		time.Sleep(50 * time.Millisecond) // closes the runtime finishes late
	}
}

// startPoller makes the runtime open its poller's fds, which stay open:
// they are not a leak.
func startPoller() {
	if r, w, err := os.Pipe(); err == nil {
		r.SetDeadline(time.Now())
		r.Close()
		w.Close()
	}
}

func childMain() int {
	switch os.Getenv("ANYLISTEN_TEST_CHILD") {
	case "copy":
		return copyChild()
	case "attack":
		return attackChild()
	}
	var opts Options
	if s := os.Getenv("ANYLISTEN_TEST_OPTS"); s != "" {
		if err := json.Unmarshal([]byte(s), &opts); err != nil {
			fmt.Fprintln(os.Stderr, "bad ANYLISTEN_TEST_OPTS:", err)
			return 2
		}
	}
	conns := 1
	if s := os.Getenv("ANYLISTEN_TEST_CONNS"); s != "" {
		conns, _ = strconv.Atoi(s)
	}
	if os.Getenv("ANYLISTEN_TEST_SPAWN") != "" {
		out, err := exec.Command("/bin/sh", "-c", `readlink /proc/$$/fd/3 || echo none`).Output()
		fmt.Fprintf(os.Stderr, "SPAWN fd3=%s (%v)\n", strings.TrimSpace(string(out)), err)
	}
	startPoller()
	before := openFDSet()
	stdio := stdioState()
	var lns []net.Listener
	for _, s := range strings.Split(os.Getenv("ANYLISTEN_TEST_CHILD"), ",") {
		addr, err := ParseAddress(s)
		if err == nil {
			var ln net.Listener
			if ln, err = Listen(context.Background(), addr, &opts); err == nil {
				lns = append(lns, ln)
				continue
			}
		}
		fmt.Fprintln(os.Stderr, "LISTEN ERROR:", err)
		if now := stdioState(); len(lns) == 0 && now != stdio {
			fmt.Fprintf(os.Stderr, "STDIO CHANGED by a failed Listen: %s; before: %s\n", now, stdio)
			return 4
		}
		for _, ln := range lns {
			ln.Close()
		}
		return 3
	}
	for _, ln := range lns {
		fmt.Fprintf(os.Stderr, "LISTENER %T %s\n", ln, ln.Addr())
	}
	if s := os.Getenv("ANYLISTEN_TEST_CLOEXEC"); s != "" {
		fd, _ := strconv.Atoi(s)
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		fmt.Fprintf(os.Stderr, "CLOEXEC %d=%v (%v)\n", fd, err == nil && flags&unix.FD_CLOEXEC != 0, err)
	}
	if os.Getenv("ANYLISTEN_TEST_LATE_READY") != "" {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		fmt.Fprintln(os.Stderr, "WAITING FOR SIGTERM")
		<-term
		err := Ready()
		fmt.Fprintln(os.Stderr, "LATE READY:", err)
		for _, ln := range lns {
			ln.Close()
		}
		return 0
	}
	if os.Getenv("ANYLISTEN_TEST_READY") != "" {
		if err := Ready(); err != nil {
			fmt.Fprintln(os.Stderr, "READY ERROR:", err)
			return 3
		}
	}
	if conns < 0 {
		if d, err := time.ParseDuration(os.Getenv("ANYLISTEN_TEST_LINGER")); err == nil {
			time.Sleep(d)
		}
		for _, ln := range lns {
			ln.Close()
		}
		return 0
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						fmt.Fprintln(os.Stderr, "ACCEPT ERROR:", err)
					}
					return
				}
				fmt.Fprintf(c, "%T %T %s %s LISTEN_FDS=%s KEEPIDLE=%d\n", c, ln, c.LocalAddr(), c.RemoteAddr(), os.Getenv("LISTEN_FDS"), keepIdle(c))
				c.Close()
				mu.Lock()
				served++
				done := conns > 0 && served >= conns
				mu.Unlock()
				if done {
					for _, l := range lns {
						l.Close()
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, ln := range lns {
		ln.Close()
	}
	// Inherited fds are closed once taken, and inetd points stdin and
	// stdout at /dev/null; no other fd may have appeared or changed.
	for fd, target := range openFDSet() {
		if before[fd] != target && !((fd == "0" || fd == "1") && target == "/dev/null") {
			fmt.Fprintf(os.Stderr, "FD LEAK: fd %s (%s) is open after Close; before Listen: %v\n", fd, target, before)
			return 4
		}
	}
	return 0
}

// stdioState describes fds 0, 1 and 2: what each points at and its file
// status flags (O_NONBLOCK among them, which a failed Listen must not
// leave changed).
func stdioState() string {
	var b strings.Builder
	for fd := range 3 {
		target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		fmt.Fprintf(&b, "%d=%s flags=%#x (%v) ", fd, target, flags, err)
	}
	return strings.TrimSpace(b.String())
}

// keepIdle returns TCP_KEEPIDLE of a TCP connection, or -1.
func keepIdle(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if _, tcp := c.LocalAddr().(*net.TCPAddr); !ok || !tcp {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	v := -1
	rc.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE) })
	return v
}

// openFDSet maps the open fds of the process to what they point at.
func openFDSet() map[string]string {
	fds := map[string]string{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[e.Name()] = target
		}
	}
	return fds
}

// child is a running child process and what it printed on stderr.
type child struct {
	cmd    *exec.Cmd
	stderr *testenv.Buffer
	exited chan struct{}
}

// childEnv is the environment that makes the test binary a child
// listening on addrs.
func childEnv(addrs, opts string, conns int) []string {
	return []string{
		"ANYLISTEN_TEST_CHILD=" + addrs, "ANYLISTEN_TEST_OPTS=" + opts, "ANYLISTEN_TEST_CONNS=" + strconv.Itoa(conns),
		"GORACE=atexit_sleep_ms=0", // a -race child would wait a second before it exits
	}
}

// startChild starts cmd, capturing stderr, and kills it at cleanup.
func startChild(t testing.TB, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{cmd: cmd, stderr: new(testenv.Buffer), exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// waitFor polls until the child's stderr contains s.
func (c *child) waitFor(t testing.TB, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.stderr.String(), s) {
		select {
		case <-c.exited:
			if strings.Contains(c.stderr.String(), s) {
				return
			}
			t.Fatalf("child exited (%v) without printing %q; stderr:\n%s", c.cmd.ProcessState, s, c.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("child did not print %q within 10 s; stderr:\n%s", s, c.stderr)
		}
	}
}

// wait waits for the child to exit and returns its exit status.
func (c *child) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("child did not exit within 15 s; stderr:\n%s", c.stderr)
	}
	return c.cmd.ProcessState.ExitCode()
}

// activate starts the test binary as a child under systemd-socket-activate
// with args (its -l, --fdname, -a, --inetd ... options) and waits until
// it listens on all n sockets.
func activate(t testing.TB, n int, args []string, addrs, opts string, conns int) *child {
	t.Helper()
	tool := testenv.NeedTool(t, "systemd-socket-activate")
	for _, kv := range childEnv(addrs, opts, conns) {
		args = append(args, "-E", kv)
	}
	args = append(args, "--", os.Args[0])
	c := startChild(t, exec.Command(tool, args...))
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(c.stderr.String(), "Listening on ") < n {
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate %q did not listen within 10 s; stderr:\n%s", args, c.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

// ask connects to network/address and returns the line the child wrote.
func ask(t testing.TB, network, address string) string {
	t.Helper()
	c, err := net.DialTimeout(network, address, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, address, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	if _, err := b.ReadFrom(c); err != nil {
		t.Fatalf("read from %s: %v", address, err)
	}
	return b.String()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) string {
	return strconv.Itoa(testenv.FreePort(t))
}
