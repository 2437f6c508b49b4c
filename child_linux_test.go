package anylisten

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"golang.org/x/sys/unix"
)

// The test binary doubles as every child process the tests start: with
// ANYLISTEN_TEST_CHILD set to the name of a mode, TestMain runs that
// mode's function from childModes instead of the tests and exits with the
// status it returns. Tests run it under the real systemd-socket-activate,
// socat or strace, with a hand-made LISTEN_FDS environment, or as another
// user from a copy of the binary (copyExecutable); childModeEnv makes the
// variables that pick the mode.
//
// Every mode exits 0 if it did what it was asked; 1 after a failure,
// reported on stderr as "CHILD ERROR: ..." (childErrorf, childFatalf);
// and 2 if one of its variables is missing or wrong ("CHILD BAD
// ENVIRONMENT: ..."). The modes, their variables, and what they print:
//
//	serve    the generic serving child (childEnv makes its environment)
//	           ANYLISTEN_TEST_ADDRS    addresses to listen on, separated by commas
//	           ANYLISTEN_TEST_OPTS     Options as JSON
//	           ANYLISTEN_TEST_CONNS    connections to serve before exiting (default 1);
//	                                   0 serves until Accept fails, -1 exits at once
//	           ANYLISTEN_TEST_READY    if set, call Ready once listening
//	           ANYLISTEN_TEST_CLOEXEC  an fd whose close-on-exec flag to print once listening
//	           ANYLISTEN_TEST_INHERITED if set, print Inherited() once listening:
//	                                   "INHERITED FD NAME ADDR taken=BY closed=BOOL"
//	           ANYLISTEN_TEST_LINGER   with CONNS=-1, how long to wait before closing
//	           ANYLISTEN_TEST_SPAWN    if set, start a shell before the first Listen
//	                                   and print what it has at fd 3, "SPAWN fd3=TARGET"
//	           ANYLISTEN_TEST_READY_AFTER with READY, how long to wait before Ready
//	           ANYLISTEN_TEST_CLOSE_FIRST if set, close the first listener before Ready
//	           ANYLISTEN_TEST_LATE_READY if set, call Ready only once SIGTERM came,
//	                                   print "LATE READY: ERROR", close, exit 0
//	           ANYLISTEN_TEST_PACKETS  addresses to ListenPacket on, after those of
//	                                   ANYLISTEN_TEST_ADDRS (which may then be empty);
//	                                   each datagram counts as a connection, and is
//	                                   answered "ECHO TYPE LOCAL pid=PID: DATAGRAM"
//	           ANYLISTEN_TEST_PEERCRED if set, write the line "PEER CREDS" to each
//	                                   connection first, CREDS its peer's
//	                                   (peerLine), and print "REFUSED CREDS" on
//	                                   stderr for each one the allow lists refuse
//	         prints "LISTENER TYPE ADDR" on stderr for each listener
//	         ("PACKETCONN TYPE ADDR" for each datagram socket), and
//	         "CLOEXEC FD=BOOL (ERR)" if asked; writes one line to each
//	         connection, "CONN LISTENER LOCAL REMOTE LISTEN_FDS=...
//	         KEEPIDLE=...", and closes it. A Listen or Ready error is
//	         printed as "LISTEN ERROR: ..." (and "LISTEN ERROR IS ErrPeerRefused"
//	         when it wraps that) or "READY ERROR: ..." with exit
//	         status 3 (4 if the first Listen failed and changed fds 0-2 all
//	         the same); an fd leak (an fd open after closing every listener
//	         that was not, or pointed elsewhere, before listening) as
//	         "FD LEAK: ..." with exit status 4.
//	copy     serves a file with io.Copy and relays a connection to
//	         another, 8 MiB each, over connections from Listen: the
//	         process TestSendfileAndSplice runs under strace (copyChild).
//	attack   the attacker of the socket file tests (attackChild)
//	           ANYLISTEN_TEST_ATTACK   "exchange A B", "swapin A B" or "connect P"
//	         works until stdin is closed, then prints "HITS N" on stdout.
//	fault    the server of the fault tests (faultChild)
//	           ANYLISTEN_TEST_FAULT    serve: Listen on each address, http.Serve each;
//	                                   listenall: one ListenAll, one http.Serve;
//	                                   spin: as serve, through a listener that retries
//	                                   a temporary Accept error at once (the control)
//	           ANYLISTEN_TEST_ADDRS    addresses, separated by commas
//	           ANYLISTEN_TEST_FREE     if set, lower RLIMIT_NOFILE so that only this many fds are free
//	         prints "PID N", "ADDR NETWORK ADDRESS" for each socket,
//	         "RLIMIT_NOFILE N" if lowered, then "READY" on stderr;
//	         GET / answers "ok", GET /exit ends it.
//	hostile  Listen as the user it runs as (TestHostileUnprivileged; hostileChild)
//	           ANYLISTEN_TEST_CASES    the cases as JSON, a list of hostileChildCase
//	         prints "HOSTILE-RESULT JSON" on stdout for each case.
//	resolve  Listen on a host name while the resolver is one that never
//	         answers, cancelling the context once the query was sent
//	         (TestHostileUnresolvableHost; resolveChild)
//	           ANYLISTEN_TEST_ADDRS    the address, HOST:PORT
//	         prints "RESOLVE-RESULT JSON" on stdout, a resolveResult.
//	perm     connects to UNIX sockets as the user it runs as (permChild)
//	           ANYLISTEN_TEST_PATHS    the socket paths (or @names) as JSON
//	         prints "PERM ID uid=U gid=G groups=[...]" and "PERM I OUTCOME"
//	         for each path on stdout.
//	hold     holds a port or socket path, as a server another developer
//	         left running would (holdChild)
//	           ANYLISTEN_TEST_ADDRS    the address to Listen on
//	           ANYLISTEN_TEST_NET      if set, net.Listen on this network instead;
//	                                   "packet": ListenPacket
//	           ANYLISTEN_TEST_IGNORE_TERM if set, print "SIGTERM: IGNORED" on
//	                                   SIGTERM and keep holding
//	         prints "HOLDING PID" on stderr once listening; exits 0 on
//	         SIGTERM after printing "SIGTERM: EXITING", 3 after "LISTEN
//	         ERROR: ...".
//	forge    binds UNIX datagram sockets to abstract names that hold a
//	         newline and a forged /proc/net/unix line, as any local user
//	         may (forgeChild)
//	           ANYLISTEN_TEST_NAMES    the names as JSON, each "@..."
//	         prints "FORGED uid=U" on stderr once bound; holds them until
//	         SIGTERM, or 60 s.
//
// To add a mode: write a function func() int that returns the exit
// status, add one line to childModes, and describe the mode above.
var childModes = map[string]func() int{
	"serve":   serveChild,
	"copy":    copyChild,
	"attack":  attackChild,
	"fault":   faultChild,
	"hostile": hostileChild,
	"resolve": resolveChild,
	"perm":    permChild,
	"hold":    holdChild,
	"forge":   forgeChild,
}

func TestMain(m *testing.M) {
	if mode := os.Getenv("ANYLISTEN_TEST_CHILD"); mode != "" {
		os.Exit(childMain(mode))
	}
	os.Exit(checkSuiteFDs(m.Run))
}

// childMain runs the child of mode and returns its exit status.
func childMain(mode string) int {
	run, ok := childModes[mode]
	if !ok {
		modes := slices.Sorted(maps.Keys(childModes))
		return childBadEnv("ANYLISTEN_TEST_CHILD is %q; want one of %s", mode, strings.Join(modes, ", "))
	}
	code := run()
	if code == 0 && childFailed.Load() {
		code = 1
	}
	return code
}

// childModeEnv is the environment that makes the test binary the child
// of mode, with the mode's variables vars ("NAME=value"). Append it to the
// rest of the child's environment.
func childModeEnv(mode string, vars ...string) []string {
	env := append([]string{"ANYLISTEN_TEST_CHILD=" + mode}, vars...)
	return append(env, "GORACE=atexit_sleep_ms=0") // a -race child would wait a second before it exits
}

// childFailed is set once a child reported a failure with childErrorf.
var childFailed atomic.Bool

// childErrorf reports a failure of a child process and lets it go on, as
// t.Errorf does in a test: the message goes to stderr after "CHILD ERROR:
// ", and the child exits 1 where its mode returns 0. Any goroutine may
// call it.
func childErrorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "CHILD ERROR: "+format+"\n", args...)
	childFailed.Store(true)
}

// childFatalf reports a failure as childErrorf does and returns the exit
// status 1, for the mode to end with, as t.Fatalf ends a test:
//
//	return childFatalf("Listen: %v", err)
func childFatalf(format string, args ...any) int {
	childErrorf(format, args...)
	return 1
}

// childBadEnv reports a variable that a mode cannot use and returns the
// exit status 2.
func childBadEnv(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "CHILD BAD ENVIRONMENT: "+format+"\n", args...)
	return 2
}

// childFDLeaks returns the fds of a child that are open now and were not
// in before (openFDSet), or pointed elsewhere. Inherited fds are closed
// once taken, and inetd points stdin and stdout at /dev/null: that is no
// leak.
func childFDLeaks(before map[string]string) []string {
	return fdsLeft(2*time.Second, func(fd, target string) bool {
		return before[fd] != target && !((fd == "0" || fd == "1") && target == "/dev/null")
	})
}

// checkSuiteFDs runs the tests and fails the run if they leave more fds
// open than there were before: every error path of every backend is
// walked by some test, and none may leak. (Tests also check their own
// fds with checkNoFDLeak, to say which one leaks.)
func checkSuiteFDs(run func() int) int {
	startPoller()
	before := openFDSet()
	code := run()
	leaked := fdsLeft(5*time.Second, func(fd, _ string) bool { _, ok := before[fd]; return !ok })
	if len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FD LEAK: the test suite left %d fds open: %v\n", len(leaked), leaked)
		return 1
	}
	return code
}

// fdsLeft returns the open fds, as "FD -> TARGET", that leak says are
// leaked, after waiting up to within for them to be closed: the runtime
// finishes some closes late.
func fdsLeft(within time.Duration, leak func(fd, target string) bool) []string {
	deadline := time.Now().Add(within)
	for {
		var leaked []string
		for fd, target := range openFDSet() {
			if leak(fd, target) {
				leaked = append(leaked, fd+" -> "+target)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(10 * time.Millisecond)
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

// serveChild is the generic serving child, mode "serve".
func serveChild() int {
	var opts Options
	if s := os.Getenv("ANYLISTEN_TEST_OPTS"); s != "" {
		if err := json.Unmarshal([]byte(s), &opts); err != nil {
			return childBadEnv("ANYLISTEN_TEST_OPTS: %v", err)
		}
	}
	conns := 1
	if s := os.Getenv("ANYLISTEN_TEST_CONNS"); s != "" {
		conns, _ = strconv.Atoi(s)
	}
	peercred := os.Getenv("ANYLISTEN_TEST_PEERCRED") != ""
	if peercred {
		opts.UnixRefused = func(r Refusal) {
			fmt.Fprintf(os.Stderr, "REFUSED %s\n", peerLine(r.Peer, r.Err))
		}
	}
	if os.Getenv("ANYLISTEN_TEST_SPAWN") != "" {
		out, err := exec.Command("/bin/sh", "-c", `readlink /proc/$$/fd/3 || echo none`).Output()
		fmt.Fprintf(os.Stderr, "SPAWN fd3=%s (%v)\n", strings.TrimSpace(string(out)), err)
	}
	startPoller()
	before := openFDSet()
	stdio := stdioState()
	var lns []net.Listener
	var pcs []net.PacketConn
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
		for _, pc := range pcs {
			pc.Close()
		}
	}
	type listenArg struct {
		s      string
		packet bool
	}
	var list []listenArg
	addrs, packets := os.Getenv("ANYLISTEN_TEST_ADDRS"), os.Getenv("ANYLISTEN_TEST_PACKETS")
	if addrs != "" || packets == "" {
		for _, s := range strings.Split(addrs, ",") {
			list = append(list, listenArg{s, false})
		}
	}
	if packets != "" {
		for _, s := range strings.Split(packets, ",") {
			list = append(list, listenArg{s, true})
		}
	}
	for _, arg := range list {
		addr, err := ParseAddress(arg.s)
		if err == nil && arg.packet {
			var pc net.PacketConn
			if pc, err = ListenPacket(context.Background(), addr, &opts); err == nil {
				pcs = append(pcs, pc)
				continue
			}
		} else if err == nil {
			var ln net.Listener
			if ln, err = Listen(context.Background(), addr, &opts); err == nil {
				lns = append(lns, ln)
				continue
			}
		}
		fmt.Fprintln(os.Stderr, "LISTEN ERROR:", err)
		if errors.Is(err, ErrPeerRefused) {
			fmt.Fprintln(os.Stderr, "LISTEN ERROR IS ErrPeerRefused")
		}
		if now := stdioState(); len(lns)+len(pcs) == 0 && now != stdio {
			fmt.Fprintf(os.Stderr, "STDIO CHANGED by a failed Listen: %s; before: %s\n", now, stdio)
			return 4
		}
		closeAll()
		return 3
	}
	for _, ln := range lns {
		fmt.Fprintf(os.Stderr, "LISTENER %T %s\n", ln, ln.Addr())
	}
	for _, pc := range pcs {
		fmt.Fprintf(os.Stderr, "PACKETCONN %T %s\n", pc, pc.LocalAddr())
	}
	if os.Getenv("ANYLISTEN_TEST_INHERITED") != "" {
		for _, s := range Inherited() {
			fmt.Fprintf(os.Stderr, "INHERITED %d %s %v taken=%s closed=%v\n", s.FD, s.Name, s.Addr, s.TakenBy, s.Closed)
		}
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
		closeAll()
		return 0
	}
	if os.Getenv("ANYLISTEN_TEST_CLOSE_FIRST") != "" {
		lns[0].Close()
		lns = lns[1:]
	}
	if os.Getenv("ANYLISTEN_TEST_READY") != "" {
		if d, err := time.ParseDuration(os.Getenv("ANYLISTEN_TEST_READY_AFTER")); err == nil {
			time.Sleep(d)
		}
		if err := Ready(); err != nil {
			fmt.Fprintln(os.Stderr, "READY ERROR:", err)
			return 3
		}
	}
	if conns < 0 {
		if d, err := time.ParseDuration(os.Getenv("ANYLISTEN_TEST_LINGER")); err == nil {
			time.Sleep(d)
		}
		closeAll()
		return 0
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	// count counts one connection or datagram served, and closes
	// everything after the last.
	count := func() {
		mu.Lock()
		served++
		done := conns > 0 && served >= conns
		mu.Unlock()
		if done {
			closeAll()
		}
	}
	for _, pc := range pcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65536)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						fmt.Fprintln(os.Stderr, "READ ERROR:", err)
					}
					return
				}
				if _, err := fmt.Fprintf(writerTo{pc, from}, "ECHO %T %s pid=%d: %s", pc, pc.LocalAddr(), os.Getpid(), buf[:n]); err != nil {
					fmt.Fprintln(os.Stderr, "WRITE ERROR:", err)
				}
				count()
			}
		}()
	}
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
				if peercred {
					fmt.Fprintf(c, "PEER %s\n", peerLine(PeerCredentials(c)))
				}
				fmt.Fprintf(c, "%T %T %s %s LISTEN_FDS=%s KEEPIDLE=%d\n", c, ln, c.LocalAddr(), c.RemoteAddr(), os.Getenv("LISTEN_FDS"), keepIdle(c))
				c.Close()
				count()
			}
		}()
	}
	wg.Wait()
	closeAll()
	if leaked := childFDLeaks(before); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FD LEAK: %v are open after Close; before Listen: %v\n", leaked, before)
		return 4
	}
	return 0
}

// writerTo writes each Write as one datagram to addr.
type writerTo struct {
	pc   net.PacketConn
	addr net.Addr
}

func (w writerTo) Write(b []byte) (int, error) { return w.pc.WriteTo(b, w.addr) }

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

// childEnv is the environment that makes the test binary the serving
// child (mode "serve") listening on addrs, with the Options opts (JSON, or
// "") and serving conns connections.
func childEnv(addrs, opts string, conns int) []string {
	return childModeEnv("serve", "ANYLISTEN_TEST_ADDRS="+addrs, "ANYLISTEN_TEST_OPTS="+opts, "ANYLISTEN_TEST_CONNS="+strconv.Itoa(conns))
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
