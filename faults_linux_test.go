package anylisten

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
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

// The fault tests: a full fd table, clients that misbehave, Close racing
// Accept, and a predecessor killed with SIGKILL. Every wait is bounded,
// every socket is on loopback, a UNIX path or an abstract name.

// faultChild is the server process of the fault tests, mode "fault" (see
// childModes for its variables and what it prints). It passes if it
// served until GET /exit told it to stop.
func faultChild() int {
	mode := os.Getenv("ANYLISTEN_TEST_FAULT")
	if mode != "serve" && mode != "listenall" && mode != "spin" {
		return childBadEnv("ANYLISTEN_TEST_FAULT is %q; want serve, listenall or spin", mode)
	}
	var addrs []Address
	for _, s := range strings.Split(os.Getenv("ANYLISTEN_TEST_ADDRS"), ",") {
		a, err := ParseAddress(s)
		if err != nil {
			return childBadEnv("ANYLISTEN_TEST_ADDRS: %v", err)
		}
		addrs = append(addrs, a)
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	if mode == "listenall" {
		ln, err := ListenAll(context.Background(), addrs, nil)
		if err != nil {
			return childFatalf("ListenAll: %v", err)
		}
		lns = append(lns, ln)
	} else {
		for _, a := range addrs {
			ln, err := Listen(context.Background(), a, nil)
			if err != nil {
				return childFatalf("Listen: %v", err)
			}
			lns = append(lns, ln)
		}
	}
	fmt.Fprintf(os.Stderr, "PID %d\n", os.Getpid())
	for _, ln := range lns {
		for _, a := range faultAddrs(ln) {
			fmt.Fprintf(os.Stderr, "ADDR %s %s\n", a.Network(), a)
		}
	}

	if s := os.Getenv("ANYLISTEN_TEST_FREE"); s != "" {
		free, err := strconv.Atoi(s)
		if err != nil {
			return childBadEnv("ANYLISTEN_TEST_FREE: %v", err)
		}
		var old unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			return childFatalf("%v", err)
		}
		low := old
		if low.Cur, err = faultLimitFor(free); err != nil {
			return childFatalf("%v", err)
		}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
			return childFatalf("%v", err)
		}
		defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
		fmt.Fprintf(os.Stderr, "RLIMIT_NOFILE %d\n", low.Cur)
	}

	exit := make(chan struct{})
	var exitOnce sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/exit", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "bye\n")
		exitOnce.Do(func() { close(exit) })
	})
	srv := &http.Server{Handler: mux}
	var wg sync.WaitGroup
	for _, ln := range lns {
		if mode == "spin" {
			ln = &faultSpinListener{Listener: ln}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				childErrorf("Serve: %v", err)
			}
		}()
	}
	fmt.Fprintln(os.Stderr, "READY")
	select {
	case <-exit:
	case <-time.After(60 * time.Second):
		childErrorf("not told to exit within 60 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		childErrorf("Shutdown: %v", err)
	}
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
	return 0
}

// faultSpinListener is the listener of the control: it retries a
// temporary Accept error at once, without telling the server, as no
// listener should.
type faultSpinListener struct {
	net.Listener
	reported bool // http.Serve calls Accept from one goroutine
}

func (l *faultSpinListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err == nil || !isTemporary(err) {
			return c, err
		}
		if !l.reported {
			fmt.Fprintln(os.Stderr, "SPIN on:", err)
			l.reported = true
		}
	}
}

// faultAddrs returns the address of ln, or of each listener it merges.
func faultAddrs(ln net.Listener) []net.Addr {
	if m, ok := ln.Addr().(MultiAddr); ok {
		return m
	}
	return []net.Addr{ln.Addr()}
}

// faultLimitFor returns the RLIMIT_NOFILE that leaves free fds free.
// The limit bounds fd numbers, not their count, and a new fd takes the
// lowest free number: the limit is where the free'th free number below it
// is reached. (fds above it, such as one a shell leaked into the test,
// stay open and usable.)
func faultLimitFor(free int) (uint64, error) {
	ents, err := os.ReadDir("/proc/self/fd") // its own fd is free again after
	if err != nil {
		return 0, err
	}
	open := map[string]bool{}
	for _, e := range ents {
		open[e.Name()] = true
	}
	limit := 0
	for ; free > 0; limit++ {
		if !open[strconv.Itoa(limit)] {
			free--
		}
	}
	return uint64(limit), nil
}

// faultServer is a running fault child.
type faultServer struct {
	*child
	stdout *testenv.Buffer
	addrs  []net.Addr
	pid    int    // the child's (under strace, cmd is strace)
	trace  string // strace's log of the child's accept calls, or ""
}

// startFaultServer runs the fault child in mode (serve, listenall or
// spin) on addrs, with free fds left (0: RLIMIT_NOFILE as is), and waits
// until it is ready.
func startFaultServer(t *testing.T, mode string, free int, addrs ...string) *faultServer {
	t.Helper()
	return runFaultServer(t, "", mode, free, addrs)
}

// traceFaultServer is startFaultServer with the child run under strace,
// which logs its accept calls for acceptFailures.
func traceFaultServer(t *testing.T, mode string, free int, addrs ...string) *faultServer {
	t.Helper()
	return runFaultServer(t, testenv.NeedTool(t, "strace"), mode, free, addrs)
}

func runFaultServer(t *testing.T, strace, mode string, free int, addrs []string) *faultServer {
	t.Helper()
	s := &faultServer{stdout: new(testenv.Buffer)}
	cmd := exec.Command(os.Args[0])
	if strace != "" {
		s.trace = filepath.Join(t.TempDir(), "strace.log")
		cmd = exec.Command(strace, "-f", "-qq", "--seccomp-bpf", "-e", "trace=accept,accept4", "-e", "signal=none", "-o", s.trace, os.Args[0])
	}
	for _, kv := range os.Environ() {
		// Neither another child's nor a service manager's variables.
		if !strings.HasPrefix(kv, "ANYLISTEN_") && !strings.HasPrefix(kv, "LISTEN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	vars := []string{"ANYLISTEN_TEST_FAULT=" + mode, "ANYLISTEN_TEST_ADDRS=" + strings.Join(addrs, ",")}
	if free > 0 {
		vars = append(vars, "ANYLISTEN_TEST_FREE="+strconv.Itoa(free))
	}
	cmd.Env = append(cmd.Env, childModeEnv("fault", vars...)...)
	cmd.Stdout = s.stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.child = startChild(t, cmd)
	t.Cleanup(func() {
		// Killing strace would leave the child running: kill the group.
		select {
		case <-s.exited:
		default:
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	s.waitFor(t, "READY\n")
	m := regexp.MustCompile(`(?m)^PID (\d+)$`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("child did not say its pid; %s", s.output())
	}
	s.pid, _ = strconv.Atoi(m[1])
	for _, m := range regexp.MustCompile(`(?m)^ADDR (\S+) (\S+)$`).FindAllStringSubmatch(s.stderr.String(), -1) {
		s.addrs = append(s.addrs, addrString{m[1], m[2]})
	}
	if len(s.addrs) != len(addrs) {
		t.Fatalf("child listens on %v, want %d addresses; stderr:\n%s", s.addrs, len(addrs), s.stderr)
	}
	return s
}

// output is what the child printed, for failure messages.
func (s *faultServer) output() string {
	return "stderr:\n" + s.stderr.String() + "\nstdout:\n" + s.stdout.String()
}

// get does GET path over a, with one connection that is closed after.
func (s *faultServer) get(a net.Addr, path string, timeout time.Duration) (string, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, a.Network(), a.String())
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := client.Get("http://fault" + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// getUntil polls GET / over a until it answers "ok", for up to 15 s.
func (s *faultServer) getUntil(t *testing.T, a net.Addr) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		body, err := s.get(a, "/", 2*time.Second)
		if err == nil && body == "ok\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET over %s %s still fails after 15 s: %q, %v; %s", a.Network(), a, body, err, s.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exit asks the child to shut down and checks that it passed.
func (s *faultServer) exit(t *testing.T) {
	t.Helper()
	if body, err := s.get(s.addrs[0], "/exit", 10*time.Second); err != nil || body != "bye\n" {
		t.Errorf("GET /exit: %q, %v", body, err)
	}
	if code := s.wait(t); code != 0 {
		t.Errorf("child exited %d; %s", code, s.output())
	}
}

// faultFree is how many fds the EMFILE child has free.
const faultFree = 8

// faultStall is how long stall holds the child's fd table full: long
// enough for a server that backs off as http.Serve does (5 ms, doubling)
// to try Accept a few times.
const faultStall = 1500 * time.Millisecond

// stall fills the child's fd table: it opens more connections to each
// address than the child has fds free, waits until every fd number below
// the child's RLIMIT_NOFILE is taken, and holds them for faultStall. It
// then checks that the EMFILE error reached the server on every address.
// The connections stay open until the test ends or release is called.
func (s *faultServer) stall(t *testing.T) (release func()) {
	t.Helper()
	var conns []net.Conn
	release = func() {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	t.Cleanup(release)
	for _, a := range s.addrs {
		for range faultFree + 6 {
			c, err := net.DialTimeout(a.Network(), a.String(), 5*time.Second)
			if err != nil {
				t.Fatalf("dial %s %s: %v", a.Network(), a, err)
			}
			conns = append(conns, c)
		}
	}
	alive := func() {
		t.Helper()
		select {
		case <-s.exited:
			t.Fatalf("child died with its fd table full (%v); %s", s.cmd.ProcessState, s.output())
		default:
		}
	}
	m := regexp.MustCompile(`(?m)^RLIMIT_NOFILE (\d+)$`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("child did not say its RLIMIT_NOFILE; %s", s.output())
	}
	limit, _ := strconv.Atoi(m[1])
	deadline := time.Now().Add(10 * time.Second)
	for taken := 0; taken < limit; {
		alive()
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(s.pid) + "/fd")
		if err != nil {
			t.Fatal(err)
		}
		taken = 0
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil && n < limit {
				taken++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("child's fd table is not full after 10 s: %d of %d fds taken; %s", taken, limit, s.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-s.exited:
	case <-time.After(faultStall): // the server's time to try, not a wait for readiness
	}
	alive()

	// Every listener has connections waiting that no fd is left for:
	// each Accept failed with EMFILE, and the server was told.
	for _, a := range s.addrs {
		emfile := regexp.MustCompile(`accept ` + a.Network() + ` ` + regexp.QuoteMeta(a.String()) + `: accept4: too many open files`)
		if !emfile.MatchString(s.stderr.String()) {
			t.Errorf("the server was not told that Accept on %s %s fails with EMFILE; %s", a.Network(), a, s.output())
		}
	}
	return release
}

// acceptFailures reads, once the traced child has exited, how many of its
// accept calls failed with EMFILE (strace's log), and how many Accept
// errors its server was told of: http.Serve logs each temporary error it
// backs off from, "http: Accept error: ...; retrying in ...".
func (s *faultServer) acceptFailures(t *testing.T) (failed, told int) {
	t.Helper()
	log, err := os.ReadFile(s.trace)
	if err != nil {
		t.Fatal(err)
	}
	failed = len(regexp.MustCompile(`(?m)^\d+ +(?:accept4?\(.*|<\.\.\. accept4? resumed>.*) = -1 EMFILE `).FindAll(log, -1))
	told = len(regexp.MustCompile(`(?m)http: Accept error: .*: too many open files; retrying in `).FindAllString(s.stderr.String(), -1))
	return failed, told
}

// TestFaultEMFILE fills the fd table of a server process: its Accept then
// fails with EMFILE, a temporary error, which Listen's listeners and
// ListenAll's merge pass on as they are, so that http.Serve backs off
// (sleeps 5 ms, doubling to 1 s, between tries). The server must neither
// spin nor die, and must serve again once fds are free. It spins if a
// listener retries accept itself, at once, instead of passing the error
// on: strace counts the accept calls that failed, and each must be an
// error the server was told of. The control is such a listener.
func TestFaultEMFILE(t *testing.T) {
	for _, tt := range []struct {
		name, mode string
		spins      bool
	}{
		{"serve", "serve", false},
		{"listenall", "listenall", false},
		{"control", "spin", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := testenv.SocketDir(t)
			s := traceFaultServer(t, tt.mode, faultFree, "127.0.0.1:0", "unix:"+filepath.Join(dir, "emfile.sock"))
			for _, a := range s.addrs {
				s.getUntil(t, a)
			}
			release := s.stall(t)
			release()
			for _, a := range s.addrs {
				s.getUntil(t, a)
			}
			s.exit(t)
			failed, told := s.acceptFailures(t)
			t.Logf("%d accept calls failed with EMFILE; the server was told of %d", failed, told)
			switch {
			case !tt.spins && (failed != told || told == 0):
				t.Errorf("%d accept calls failed with EMFILE, and the server was told of %d: want as many, and some; %s", failed, told, s.output())
			case tt.spins && failed <= told:
				t.Errorf("a listener that retries at once made %d accept calls that failed, and the server was told of %d: the test cannot tell spinning; %s",
					failed, told, s.output())
			}
		})
	}
}

// faultListenKinds are the listeners Listen and ListenAll return for
// addresses a test can bind itself.
var faultListenKinds = []struct {
	name   string
	listen func(t *testing.T) net.Listener
}{
	{"tcp", func(t *testing.T) net.Listener { return listenT(t, "127.0.0.1:0", nil) }},
	{"unix", func(t *testing.T) net.Listener {
		return listenT(t, "unix:"+filepath.Join(testenv.SocketDir(t), "fault.sock"), nil)
	}},
	{"abstract", func(t *testing.T) net.Listener { return listenT(t, faultAbstract(), nil) }},
	{"listenall", func(t *testing.T) net.Listener {
		addrs := []Address{
			MustParseAddress("127.0.0.1:0"),
			MustParseAddress("unix:" + filepath.Join(testenv.SocketDir(t), "fault.sock")),
			MustParseAddress(faultAbstract()),
		}
		ln, err := ListenAll(context.Background(), addrs, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}},
}

var faultSeq atomic.Int64

// faultAbstract returns an abstract socket name no other test uses.
func faultAbstract() string {
	return fmt.Sprintf("@anylisten-fault-%d-%d", os.Getpid(), faultSeq.Add(1))
}

// checkNoGoroutineLeak fails t at cleanup if more goroutines run than
// when it was called.
func checkNoGoroutineLeak(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines grew from %d to %d:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// faultEcho serves ln: each connection gets back the first line it sends
// and is then closed; a connection that sends nothing is held until it
// ends or 10 s pass.
type faultEcho struct {
	accepted atomic.Int64
	tempErrs atomic.Int64
	done     chan error // the error that ended the accept loop
	handlers sync.WaitGroup
}

func serveFaultEcho(ln net.Listener) *faultEcho {
	e := &faultEcho{done: make(chan error, 1)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				// As http.Serve does; a thousand in a row would be a bug.
				if isTemporary(err) && e.tempErrs.Add(1) < 1000 {
					continue
				}
				e.done <- err
				return
			}
			e.accepted.Add(1)
			e.handlers.Add(1)
			go func() {
				defer e.handlers.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					io.WriteString(c, line)
				}
			}()
		}
	}()
	return e
}

// faultClient is one client of TestFaultMisbehavingClients.
type faultClient func(t *testing.T, a net.Addr, tag string) (held net.Conn)

// faultDial connects to a, or reports why not and returns nil. It may
// run in any goroutine.
func faultDial(t *testing.T, a net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(a.Network(), a.String(), 5*time.Second)
	if err != nil {
		t.Errorf("dial %s %s: %v", a.Network(), a, err)
		return nil
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// faultReset connects and closes with SO_LINGER 0: a TCP peer gets a
// reset, not a FIN. (UNIX sockets know no reset: the server just finds
// the connection closed.)
func faultReset(t *testing.T, a net.Addr, _ string) net.Conn {
	c := faultDial(t, a)
	if c == nil {
		return nil
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetLinger(0); err != nil {
			t.Error(err)
		}
	}
	c.Close()
	return nil
}

// faultHalfOpen sends a line, shuts its sending side and still expects
// the answer.
func faultHalfOpen(t *testing.T, a net.Addr, tag string) net.Conn {
	c := faultDial(t, a)
	if c == nil {
		return nil
	}
	defer c.Close()
	io.WriteString(c, tag+"\n")
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	faultExpect(t, c, tag)
	return nil
}

// faultHalfOpenEmpty shuts its sending side at once and waits for the
// server to close.
func faultHalfOpenEmpty(t *testing.T, a net.Addr, _ string) net.Conn {
	c := faultDial(t, a)
	if c == nil {
		return nil
	}
	defer c.Close()
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	faultExpect(t, c, "")
	return nil
}

// faultSilent connects and never sends; the connection is held until the
// test ends.
func faultSilent(t *testing.T, a net.Addr, _ string) net.Conn {
	if c := faultDial(t, a); c != nil {
		return c
	}
	return nil // not a nil *net.TCPConn in an interface
}

// faultGood sends a line and expects it back.
func faultGood(t *testing.T, a net.Addr, tag string) net.Conn {
	c := faultDial(t, a)
	if c == nil {
		return nil
	}
	defer c.Close()
	io.WriteString(c, tag+"\n")
	faultExpect(t, c, tag)
	return nil
}

// faultExpect reads c to its end and checks that it is tag's line.
func faultExpect(t *testing.T, c net.Conn, tag string) {
	t.Helper()
	want := tag + "\n"
	if tag == "" {
		want = ""
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != want {
		t.Errorf("client %q over %s %s got %q, %v", tag, c.RemoteAddr().Network(), c.RemoteAddr(), got, err)
	}
}

// TestFaultMisbehavingClients has clients reset connections before and
// while the server accepts them, half-close them, and hold them without
// sending: the listener must go on accepting the others, lose none, and
// stop cleanly on Close.
func TestFaultMisbehavingClients(t *testing.T) {
	for _, k := range faultListenKinds {
		t.Run(k.name, func(t *testing.T) {
			checkNoFDLeak(t)
			checkNoGoroutineLeak(t)
			ln := k.listen(t)
			targets := faultAddrs(ln)
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()

			// Before any Accept: the connections wait in the backlog,
			// and the reset ones are gone by the time they are accepted.
			var queued []net.Conn
			for i, a := range targets {
				for j := range 10 {
					faultReset(t, a, "")
					if c := faultSilent(t, a, ""); c != nil {
						held = append(held, c)
					}
					c := faultDial(t, a)
					if c == nil {
						t.FailNow()
					}
					tag := fmt.Sprintf("queued-%d-%d", i, j)
					io.WriteString(c, tag+"\n")
					if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
						t.Fatal(err)
					}
					queued = append(queued, c)
				}
			}
			e := serveFaultEcho(ln)
			for i, c := range queued {
				faultExpect(t, c, fmt.Sprintf("queued-%d-%d", i/10, i%10))
				c.Close()
			}
			wantAccepted := int64(3 * 10 * len(targets))

			// While accepting: every kind of client at once.
			clients := []faultClient{faultReset, faultHalfOpen, faultHalfOpenEmpty, faultSilent, faultGood}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 10 {
						if t.Failed() {
							return // each failure costs a 10 s deadline
						}
						for j, client := range clients {
							a := targets[(g+i+j)%len(targets)]
							if c := client(t, a, fmt.Sprintf("g%d-%d-%d", g, i, j)); c != nil {
								mu.Lock()
								held = append(held, c)
								mu.Unlock()
							}
						}
					}
				}()
			}
			wg.Wait()
			wantAccepted += 8 * 10 * int64(len(clients))
			// And with all of that held open, a good client still gets in.
			for _, a := range targets {
				faultGood(t, a, "last")
			}
			wantAccepted += int64(len(targets))

			// No connection is lost: the reset ones too are accepted (and
			// then read as reset or closed), as Linux hands them out.
			deadline := time.Now().Add(10 * time.Second)
			for e.accepted.Load() < wantAccepted && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := e.accepted.Load(); got != wantAccepted {
				t.Errorf("accepted %d connections, want %d", got, wantAccepted)
			}
			if n := e.tempErrs.Load(); n > 0 {
				t.Logf("%d temporary Accept errors, retried", n)
			}

			if err := ln.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			select {
			case err := <-e.done:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("the accept loop ended with %v, want net.ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Accept did not return within 5 s of Close")
			}
			for _, c := range held {
				c.Close()
			}
			held = nil
			e.handlers.Wait() // each is bounded by its 10 s deadline
		})
	}
}

// faultCloseKinds is every kind of listener the library returns.
var faultCloseKinds = []struct {
	name, typ string
	// make returns a listener and a function that connects to it (nil
	// for the one-connection listener, whose connection comes with it).
	make func(t *testing.T) (net.Listener, func() (net.Conn, error))
}{
	{"tcp", "*net.TCPListener", func(t *testing.T) (net.Listener, func() (net.Conn, error)) {
		return faultWithDial(listenT(t, "127.0.0.1:0", nil))
	}},
	{"unix", "*anylisten.UnixListener", func(t *testing.T) (net.Listener, func() (net.Conn, error)) {
		return faultWithDial(listenT(t, "unix:"+filepath.Join(testenv.SocketDir(t), "close.sock"), nil))
	}},
	{"abstract", "*anylisten.UnixListener", func(t *testing.T) (net.Listener, func() (net.Conn, error)) {
		return faultWithDial(listenT(t, faultAbstract(), nil))
	}},
	{"inherited-keepalive", "*anylisten.keepaliveListener", func(t *testing.T) (net.Listener, func() (net.Conn, error)) {
		return faultWithDial(faultInherited(t, &Options{TCPKeepalive: &TCPKeepalive{Idle: time.Minute}}))
	}},
	{"listenall", "*anylisten.multiListener", func(t *testing.T) (net.Listener, func() (net.Conn, error)) {
		addrs := []Address{
			MustParseAddress("127.0.0.1:0"),
			MustParseAddress("unix:" + filepath.Join(testenv.SocketDir(t), "close.sock")),
			MustParseAddress(faultAbstract()),
		}
		ln, err := ListenAll(context.Background(), addrs, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return faultWithDial(ln)
	}},
	{"oneconn", "*anylisten.oneConnListener", func(t *testing.T) (net.Listener, func() (net.Conn, error)) {
		raw := listenT(t, "127.0.0.1:0", nil)
		client, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		server, err := raw.Accept()
		if err != nil {
			t.Fatal(err)
		}
		raw.Close()
		ln := newOneConnListener(server)
		t.Cleanup(func() { ln.Close() })
		return ln, nil
	}},
}

// faultWithDial returns ln and a function that dials one of its
// addresses after another.
func faultWithDial(ln net.Listener) (net.Listener, func() (net.Conn, error)) {
	addrs := faultAddrs(ln)
	var n atomic.Int64
	return ln, func() (net.Conn, error) {
		a := addrs[int(n.Add(1))%len(addrs)]
		return net.DialTimeout(a.Network(), a.String(), 5*time.Second)
	}
}

// faultInherited makes the listener Listen makes of an inherited
// listening TCP socket (sd-listen), as inheritedForBench does: the fd of
// a socket this process opened is inspected and taken over.
func faultInherited(t *testing.T, o *Options) net.Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rc, err := raw.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	err = rawControl(rc, func(fd uintptr) error {
		info, err := inspectFD(int(fd))
		if err == nil {
			err = info.checkStream()
		}
		if err == nil {
			ln, err = fdListener(info, o)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// faultBlockedAccept calls Accept; the tests find it in goroutine dumps.
//
//go:noinline
func faultBlockedAccept(ln net.Listener, res chan<- acceptResult) {
	c, err := ln.Accept()
	res <- acceptResult{c, err}
}

// faultWaitBlocked polls until a goroutine is parked in faultBlockedAccept
// (waiting for the network or a channel, not running).
func faultWaitBlocked(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, ".faultBlockedAccept(") &&
				(strings.Contains(g, " [IO wait") || strings.Contains(g, " [select")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no goroutine blocked in Accept within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// faultLoopsLeft returns how many more multiListener watchers than before
// run after a Close returned. Close waits for every watcher to call its
// WaitGroup's Done, after which the goroutine may still show in a stack
// dump for a moment while it returns: so count again until the number
// drops, for at most a second.
func faultLoopsLeft(before int) int {
	deadline := time.Now().Add(time.Second)
	for {
		n := faultAcceptLoops() - before
		if n <= 0 || time.Now().After(deadline) {
			return n
		}
		runtime.Gosched()
	}
}

// faultAcceptLoops counts the goroutines running a multiListener's watcher
// (watch). (No test runs in parallel with a test that is not parallel, so
// all of them belong to the test that counts.)
func faultAcceptLoops() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), ".(*multiListener).watch(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// faultClosed checks that err, from op, reports a closed listener.
func faultClosed(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("%s: %v, want an error wrapping net.ErrClosed", op, err)
	}
}

// TestFaultListenerClose closes every kind of listener while Accept is
// blocked, twice, before Accept, and from many goroutines while many
// others accept and clients connect: nothing panics, races or leaks, and
// every Accept ends with net.ErrClosed.
func TestFaultListenerClose(t *testing.T) {
	for _, k := range faultCloseKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Run("type", func(t *testing.T) {
				checkNoFDLeak(t)
				if ln, _ := k.make(t); fmt.Sprintf("%T", ln) != k.typ {
					t.Errorf("listener is %T, want %s", ln, k.typ)
				}
			})

			t.Run("while-accept-blocked", func(t *testing.T) {
				checkNoFDLeak(t)
				checkNoGoroutineLeak(t)
				ln, dial := k.make(t)
				var first net.Conn
				if dial == nil { // the first Accept hands the one connection out
					c, err := ln.Accept()
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					first = c
				}
				res := make(chan acceptResult, 1)
				go faultBlockedAccept(ln, res)
				faultWaitBlocked(t)
				if err := ln.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				select {
				case r := <-res:
					if r.c != nil {
						r.c.Close()
						t.Errorf("Accept returned a connection, %v, after Close", r.c.RemoteAddr())
					}
					faultClosed(t, "Accept blocked during Close", r.err)
				case <-time.After(5 * time.Second):
					t.Fatal("Close did not unblock Accept within 5 s")
				}
				if first != nil {
					// The connection handed out is the caller's: Close
					// leaves it working.
					first.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err := first.Write([]byte("x")); err != nil {
						t.Errorf("the connection Accept returned was closed with the listener: %v", err)
					}
				}
			})

			t.Run("twice-then-accept", func(t *testing.T) {
				checkNoFDLeak(t)
				checkNoGoroutineLeak(t)
				loops := faultAcceptLoops()
				ln, _ := k.make(t)
				if err := ln.Close(); err != nil {
					t.Errorf("first Close: %v", err)
				}
				if n := faultLoopsLeft(loops); n > 0 {
					t.Errorf("Close returned while %d watchers still run", n)
				}
				faultClosed(t, "second Close", ln.Close())
				for i := range 3 {
					res := make(chan acceptResult, 1)
					go func() { c, err := ln.Accept(); res <- acceptResult{c, err} }()
					select {
					case r := <-res:
						if r.c != nil {
							r.c.Close()
							t.Errorf("Accept after Close returned a connection")
						}
						faultClosed(t, fmt.Sprintf("Accept %d after Close", i+1), r.err)
					case <-time.After(5 * time.Second):
						t.Fatal("Accept after Close blocks")
					}
				}
				faultClosed(t, "third Close", ln.Close())
				if p := faultSocketPath(ln); p != "" {
					if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("socket file %s after Close: %v, want it removed", p, err)
					}
				}
			})

			t.Run("concurrent", func(t *testing.T) {
				checkNoFDLeak(t)
				checkNoGoroutineLeak(t)
				for round := range 5 {
					faultCloseConcurrently(t, k.make, round)
				}
			})
		})
	}
}

// faultSocketPath returns the socket file of a listener on a UNIX path,
// or "".
func faultSocketPath(ln net.Listener) string {
	for _, a := range faultAddrs(ln) {
		if a.Network() == "unix" && !strings.HasPrefix(a.String(), "@") {
			return a.String()
		}
	}
	return ""
}

// faultCloseConcurrently has 16 goroutines accept, 4 dial, and, once a few
// connections went through, 8 close the listener at once.
func faultCloseConcurrently(t *testing.T, newListener func(*testing.T) (net.Listener, func() (net.Conn, error)), round int) {
	loops := faultAcceptLoops()
	ln, dial := newListener(t)
	const acceptors, dialers, closers = 16, 4, 8
	var accepted atomic.Int64
	start, closeNow, stopDial := make(chan struct{}), make(chan struct{}), make(chan struct{})
	acceptErrs := make(chan error, acceptors)
	closeErrs := make(chan error, closers)
	var wg sync.WaitGroup
	for range acceptors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				c, err := ln.Accept()
				if err != nil {
					if isTemporary(err) {
						continue
					}
					acceptErrs <- err
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
	}
	if dial != nil {
		for range dialers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for {
					select {
					case <-stopDial:
						return
					default:
					}
					c, err := dial()
					if err != nil {
						return // the listener is closed
					}
					c.Close()
				}
			}()
		}
	}
	for range closers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-closeNow
			closeErrs <- ln.Close()
		}()
	}
	close(start)
	if dial != nil {
		deadline := time.Now().Add(5 * time.Second)
		for accepted.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	close(closeNow)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(stopDial)
		t.Fatalf("round %d: Accept, Dial or Close still running 10 s after Close", round)
	}
	close(stopDial)
	if n := faultLoopsLeft(loops); n > 0 {
		t.Errorf("round %d: every Close returned while %d watchers still run", round, n)
	}
	if dial != nil && accepted.Load() < 3 {
		t.Errorf("round %d: only %d connections accepted before Close", round, accepted.Load())
	}
	if dial == nil && accepted.Load() > 1 {
		t.Errorf("round %d: the one-connection listener handed out %d", round, accepted.Load())
	}
	close(acceptErrs)
	for err := range acceptErrs {
		faultClosed(t, fmt.Sprintf("round %d: Accept", round), err)
	}
	close(closeErrs)
	succeeded := 0
	for err := range closeErrs {
		if err == nil {
			succeeded++
		} else {
			faultClosed(t, fmt.Sprintf("round %d: a concurrent Close", round), err)
		}
	}
	if succeeded != 1 {
		t.Errorf("round %d: %d of %d concurrent Closes returned nil, want 1", round, succeeded, closers)
	}
	if p := faultSocketPath(ln); p != "" {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("round %d: socket file %s after Close: %v, want it removed", round, p, err)
		}
	}
}

// TestFaultCrashedPredecessor kills a server with SIGKILL while a client
// holds a connection: on a UNIX path its socket file stays behind. The
// next Listen fails with EADDRINUSE and an error that names
// --unix-listen-unlink, leaves the file, and with the option succeeds. An
// abstract socket vanishes with its process: the next Listen just works.
func TestFaultCrashedPredecessor(t *testing.T) {
	for _, tt := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"unix", func(t *testing.T) string { return "unix:" + filepath.Join(testenv.SocketDir(t), "crash.sock") }},
		{"abstract", func(*testing.T) string { return faultAbstract() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkNoFDLeak(t)
			addr := tt.addr(t)
			s := startFaultServer(t, "serve", 0, addr)
			a := s.addrs[0]
			s.getUntil(t, a)
			held := faultDial(t, a)
			if held == nil {
				t.FailNow()
			}
			defer held.Close()
			io.WriteString(held, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if line, err := bufio.NewReader(held).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
				t.Fatalf("held connection: %q, %v", line, err)
			}

			if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			s.wait(t)
			if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want SIGKILL", s.cmd.ProcessState)
			}
			// The rest of the response may still be buffered; then the
			// end of the connection, not a timeout.
			if _, err := io.Copy(io.Discard, held); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the held connection after its server died: %v, want its end", err)
			}

			path := strings.TrimPrefix(addr, "unix:")
			if tt.name == "unix" {
				if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
					t.Fatalf("after SIGKILL the socket file is %v, %v; want it left behind", fi, err)
				}
				ln, err := Listen(context.Background(), MustParseAddress(addr), nil)
				if ln != nil || !errors.Is(err, syscall.EADDRINUSE) {
					if ln != nil {
						ln.Close()
					}
					t.Fatalf("Listen over the crashed server's socket = %v, %v; want EADDRINUSE", ln, err)
				}
				for _, want := range []string{path, "stale socket file", "--unix-listen-unlink"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if _, err := os.Lstat(path); err != nil {
					t.Errorf("the failed Listen removed the socket file: %v", err)
				}
			}
			var opts *Options
			if tt.name == "unix" {
				opts = &Options{UnixListenUnlink: true}
			}
			ln := listenT(t, addr, opts)
			roundTrip(t, ln)
			if err := ln.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.name == "unix" {
				if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("socket file after Close: %v, want it removed", err)
				}
			}
		})
	}
}
