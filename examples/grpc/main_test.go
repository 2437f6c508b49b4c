package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/anylisten/anylisten"
	"github.com/anylisten/anylisten/internal/testenv"
)

// timeout bounds every wait of these tests: for grpcdemo to listen or
// exit, for a health check.
const timeout = testenv.Timeout

// exePath is the grpcdemo binary TestMain builds.
var exePath string

// TestMain builds grpcdemo (with -race when the tests run with it), runs
// the tests and removes grpcdemo.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithProgram(m, "grpcdemo", &exePath))
}

// start starts the program path with args: grpcdemo, or
// systemd-socket-activate running it. When the test ends it is killed if
// it still runs, and the test fails if it wrote anything to standard
// output: serve never does (it may be the connection).
func start(t *testing.T, path string, args ...string) *testenv.Process {
	t.Helper()
	return testenv.StartProcess(t, exec.Command(path, args...), nil)
}

// startServe runs grpcdemo serve with args and waits until it says it
// listens. It returns the process and what it listens on, as logged.
func startServe(t *testing.T, args ...string) (*testenv.Process, string) {
	t.Helper()
	p := start(t, exePath, append([]string{"serve"}, args...)...)
	listening := regexp.MustCompile(`(?m)^grpcdemo: listening on (.*)\n`)
	if err := p.WaitFor("listening", listening.MatchString); err != nil {
		t.Fatal(err)
	}
	return p, listening.FindStringSubmatch(p.Stderr.String())[1]
}

// runCheck runs grpcdemo check with args and returns what it wrote and its
// exit code.
func runCheck(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exePath, append([]string{"check", "--timeout", timeout.String()}, args...)...)
	cmd.Env = testenv.ExitAtOnce(nil) // the tests run check often
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("grpcdemo check %q: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// abstractName returns a new abstract socket name for a test.
func abstractName() string {
	return fmt.Sprintf("grpcdemo-test-%016x", rand.Uint64())
}

// listenEverywhere returns the --listen arguments for 127.0.0.1:0, a UNIX
// socket path in a new directory and, on Linux, a new abstract name, and
// the path and the name ("" elsewhere).
func listenEverywhere(t *testing.T) (args []string, path, name string) {
	t.Helper()
	path = filepath.Join(testenv.SocketDir(t), "grpc.sock")
	args = []string{"--listen", "127.0.0.1:0", "--listen", path}
	if runtime.GOOS == "linux" {
		name = abstractName()
		args = append(args, "--listen", "@"+name)
	}
	return args, path, name
}

// tcpPort finds the port of 127.0.0.1 in the address a server logged (or
// its listener's Addr gave), such as
// "tcp:127.0.0.1:41235,unix:/tmp/1/grpc.sock,unix:@name".
func tcpPort(t *testing.T, listening string) string {
	t.Helper()
	m := regexp.MustCompile(`(?:^|[,:])127\.0\.0\.1:(\d+)(?:,|$)`).FindStringSubmatch(listening)
	if m == nil {
		t.Fatalf("no 127.0.0.1:PORT in %q", listening)
	}
	return m[1]
}

// TestServeAndCheck runs one grpcdemo serve on a TCP port, a UNIX socket
// path and an abstract name at once, checks each with grpcdemo check,
// written in every way anylisten (and gRPC) spells it, and ends it with
// SIGTERM.
func TestServeAndCheck(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("grpcdemo is stopped with SIGTERM, which Windows lacks")
	}
	args, path, name := listenEverywhere(t)
	p, listening := startServe(t, args...)
	port := tcpPort(t, listening)

	addrs := []string{
		"127.0.0.1:" + port, "tcp://127.0.0.1:" + port, "localhost:" + port,
		path, "unix:" + path, "unix://" + path,
	}
	if name != "" {
		addrs = append(addrs, "@"+name, "unix:@"+name, "unix-abstract:"+name)
	}
	t.Run("check", func(t *testing.T) {
		for _, addr := range addrs {
			t.Run(addr, func(t *testing.T) {
				t.Parallel()
				stdout, stderr, code := runCheck(t, addr)
				if stdout != "SERVING\n" || code != 0 {
					t.Errorf("grpcdemo check %s: stdout %q, exit code %d; want \"SERVING\\n\" and 0; stderr:\n%s", addr, stdout, code, stderr)
				}
			})
		}
	})
	t.Run("unknown service", func(t *testing.T) {
		stdout, stderr, code := runCheck(t, "--service", "no.such.Service", path)
		if code != 1 || stdout != "" || !strings.Contains(stderr, "code = NotFound") {
			t.Errorf("grpcdemo check --service no.such.Service: exit code %d, stdout %q; want 1, nothing, and NotFound on stderr:\n%s", code, stdout, stderr)
		}
	})

	if code := p.Stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("grpcdemo serve exited with %d after SIGTERM, want 0; stderr:\n%s", code, p.Stderr.String())
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file %s is still there after SIGTERM (Lstat: %v)", path, err)
	}
	if !strings.HasSuffix(p.Stderr.String(), "grpcdemo: stopped\n") {
		t.Errorf("stderr does not end with grpcdemo: stopped:\n%s", p.Stderr.String())
	}
}

// TestSignal checks that SIGINT and SIGTERM make serve exit with status 0,
// also while a client holds a connection open, and remove its socket file.
func TestSignal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("grpcdemo is stopped with SIGINT or SIGTERM, which Windows lacks")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(testenv.SocketDir(t), "grpc.sock")
			p, _ := startServe(t, "--listen", path)

			// A client whose connection is still open: GracefulStop
			// sends it GOAWAY and does not wait for it to hang up.
			conn, err := grpc.NewClient("unix:"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}

			if code := p.Stop(t, sig); code != 0 {
				t.Errorf("grpcdemo serve exited with %d after %v, want 0; stderr:\n%s", code, sig, p.Stderr.String())
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket file %s is still there after %v (Lstat: %v)", path, sig, err)
			}
		})
	}
}

// TestGraceWithWatch checks the stop of a server with a stream that does
// not end by itself: a health Watch learns NOT_SERVING at SIGTERM, and
// the server cuts it off after --grace and exits with status 0.
func TestGraceWithWatch(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("grpcdemo is stopped with SIGTERM, which Windows lacks")
	}
	path := filepath.Join(testenv.SocketDir(t), "grpc.sock")
	p, _ := startServe(t, "--grace", "100ms", "--listen", path)

	addr := anylisten.MustParseAddress(path)
	conn, err := grpc.NewClient("passthrough:///localhost",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return anylisten.Dial(ctx, addr) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	recv := func() healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := watch.Recv()
		if err != nil {
			t.Fatalf("Watch: %v; stderr:\n%s", err, p.Stderr.String())
		}
		return resp.GetStatus()
	}
	if got := recv(); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch says %v first, want SERVING", got)
	}

	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := recv(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch says %v after SIGTERM, want NOT_SERVING", got)
	}
	if _, err := watch.Recv(); err == nil {
		t.Error("Watch goes on after the server stopped")
	}
	if code := p.WaitExit(t); code != 0 {
		t.Errorf("grpcdemo serve exited with %d after SIGTERM, want 0; stderr:\n%s", code, p.Stderr.String())
	}
	if want := "RPCs still running after 100ms, cutting them off\n"; !strings.Contains(p.Stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, p.Stderr.String())
	}
}

// TestUsageErrors checks that command-line mistakes exit with status 2.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"listen"}, `unknown command "listen"`},
		{"bad listen address", []string{"serve", "--listen", "app.sock"}, `invalid listen address "app.sock"`},
		{"argument to serve", []string{"serve", "127.0.0.1:0"}, "give addresses with --listen"},
		{"unknown option", []string{"serve", "--no-such-option"}, "flag provided but not defined: -no-such-option"},
		{"check without address", []string{"check"}, "check takes one ADDRESS"},
		{"bad check address", []string{"check", "127.0.0.1"}, `invalid listen address "127.0.0.1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, exePath, tt.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 {
				t.Errorf("grpcdemo %q: %v, want exit status 2", tt.args, err)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("grpcdemo %q: stderr does not say %q:\n%s", tt.args, tt.want, stderr.String())
			}
			if stdout.Len() > 0 {
				t.Errorf("grpcdemo %q wrote to stdout: %q", tt.args, stdout.String())
			}
		})
	}
}

// recordingListener records the concrete type of every connection it
// accepts, and passes the connection on as it is.
type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	types map[string]int
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if c != nil {
		l.mu.Lock()
		l.types[fmt.Sprintf("%T", c)]++
		l.mu.Unlock()
	}
	return c, err
}

// TestInProcess serves in this process on a TCP port, a UNIX path and an
// abstract name, merged by ListenAll, and checks each both through
// anylisten.Dial and through gRPC's own resolvers (dns, unix,
// unix-abstract), whose target strings ParseAddress takes for the same
// address. It checks that grpc.Server got the kernel's connections,
// unwrapped, and that cancelling the context stops serve.
func TestInProcess(t *testing.T) {
	args, path, name := listenEverywhere(t)
	cfg, err := parseServeFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := anylisten.ListenAll(ctx, cfg.addrs, &cfg.opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingListener{Listener: ln, types: map[string]int{}}
	served := make(chan error, 1)
	go func() { served <- serve(ctx, rec, cfg.grace) }()
	tcp := "127.0.0.1:" + tcpPort(t, ln.Addr().String())

	// Each target is what the server listens on, in gRPC's spelling.
	targets := []struct {
		target string // for grpc.NewClient, and for ParseAddress
		listen string // the --listen address that ParseAddress(target) equals
	}{
		{tcp, tcp},
		{"unix:" + path, path},
		{"unix://" + path, path},
	}
	if name != "" {
		targets = append(targets,
			struct{ target, listen string }{"unix-abstract:" + name, "@" + name},
			struct{ target, listen string }{"unix:@" + name, "@" + name})
	}
	t.Run("anylisten.Dial", func(t *testing.T) {
		for _, tt := range targets {
			t.Run(tt.target, func(t *testing.T) {
				t.Parallel()
				addr, err := anylisten.ParseAddress(tt.target)
				if err != nil {
					t.Fatal(err)
				}
				if want := anylisten.MustParseAddress(tt.listen); addr != want {
					t.Errorf("ParseAddress(%q) = %v, want %v, the address the server listens on", tt.target, addr, want)
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				status, err := check(ctx, addr, "")
				if err != nil || status != healthpb.HealthCheckResponse_SERVING {
					t.Errorf("check(%v) = %v, %v; want SERVING", addr, status, err)
				}
			})
		}
	})
	t.Run("gRPC's resolvers", func(t *testing.T) {
		for _, tt := range targets {
			t.Run(tt.target, func(t *testing.T) {
				t.Parallel()
				conn, err := grpc.NewClient(tt.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
				if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Errorf("Check through grpc.NewClient(%q) = %v, %v; want SERVING", tt.target, resp, err)
				}
			})
		}
	})

	rec.mu.Lock()
	types := maps.Clone(rec.types)
	rec.mu.Unlock()
	t.Logf("accepted connections by type: %v", types)
	for typ := range types {
		if typ != "*net.TCPConn" && typ != "*net.UnixConn" {
			t.Errorf("grpc.Server accepted a %s; want the kernel's own *net.TCPConn and *net.UnixConn only: %v", typ, types)
		}
	}
	if types["*net.TCPConn"] == 0 || types["*net.UnixConn"] == 0 {
		t.Errorf("accepted connections by type: %v; want both *net.TCPConn and *net.UnixConn", types)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve returned %v after its context was cancelled, want nil", err)
		}
	case <-time.After(timeout):
		t.Fatalf("serve did not return within %v of its context being cancelled", timeout)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file %s is still there after serve returned (Lstat: %v)", path, err)
	}
}

// TestGRPCTargets checks which of gRPC's target strings ParseAddress takes,
// and for what: gRPC's unix: and unix-abstract: schemes name the same
// sockets in anylisten, and so does gRPC core's vsock:; the resolver
// schemes (dns:, passthrough:, ipv4:) name no socket and are errors.
func TestGRPCTargets(t *testing.T) {
	tests := []struct {
		target string
		want   string // Address.String; "" for a ParseError
	}{
		{"127.0.0.1:50051", "127.0.0.1:50051"},
		{"[::1]:50051", "[::1]:50051"},
		{"localhost:50051", "localhost:50051"},
		{"unix:/run/grpc.sock", "/run/grpc.sock"},
		{"unix:///run/grpc.sock", "/run/grpc.sock"},
		{"unix:grpc.sock", "unix:grpc.sock"},
		{"unix:@grpc", "@grpc"},
		{"unix-abstract:grpc", "@grpc"},
		{"vsock:3:50051", "vsock:3:50051"},
		{"unix://host/grpc.sock", ""},
		{"dns:///localhost:50051", ""},
		{"passthrough:///localhost:50051", ""},
		{"ipv4:127.0.0.1:50051", ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			a, err := anylisten.ParseAddress(tt.target)
			var perr *anylisten.ParseError
			switch {
			case tt.want == "" && !errors.As(err, &perr):
				t.Errorf("ParseAddress(%q) = %v, %v; want a *ParseError", tt.target, a, err)
			case tt.want != "" && (err != nil || a.String() != tt.want):
				t.Errorf("ParseAddress(%q) = %v, %v; want %s", tt.target, a, err, tt.want)
			}
		})
	}
}

// childDied matches systemd-socket-activate -a's line for each child that
// ended.
var childDied = regexp.MustCompile(`(?m)^Child (\d+) died with code (-?\d+)$`)

// TestSocketActivation runs grpcdemo serve under the real
// systemd-socket-activate, which listens on 127.0.0.1:PORT and starts
// grpcdemo on the first connection:
//
//	systemd-socket-activate -l 127.0.0.1:PORT -- grpcdemo serve --listen sd-listen
//	systemd-socket-activate -l 127.0.0.1:PORT -- grpcdemo serve --listen 127.0.0.1:PORT
//	systemd-socket-activate -a -l 127.0.0.1:PORT -- grpcdemo serve --listen sd-listen
//	systemd-socket-activate --inetd -a -l 127.0.0.1:PORT -- grpcdemo serve --listen inetd
//
// Without -a, systemd-socket-activate execs grpcdemo, which serves every
// connection until SIGTERM. With -a it accepts each connection itself and
// starts one grpcdemo for it (as systemd's Accept=yes does), which exits
// with status 0 once the client hangs up.
func TestSocketActivation(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("systemd-socket-activate is for Linux, not %s", runtime.GOOS)
	}
	tests := []struct {
		name   string
		flags  []string                 // of systemd-socket-activate, before -l
		listen func(addr string) string // the --listen address, given 127.0.0.1:PORT
	}{
		{"sd-listen", nil, func(string) string { return "sd-listen" }},
		{"plain address adopts the passed socket", nil, func(addr string) string { return addr }},
		{"Accept=yes", []string{"-a"}, func(string) string { return "sd-listen" }},
		{"inetd", []string{"--inetd", "-a"}, func(string) string { return "inetd" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tool := testenv.NeedTool(t, "systemd-socket-activate")
			perConn := len(tt.flags) > 0

			var p *testenv.Process
			var addr string
			for attempt := 1; ; attempt++ {
				addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
				args := append(append([]string{}, tt.flags...), "-l", addr, "--", exePath, "serve", "--listen", tt.listen(addr))
				p = start(t, tool, args...)
				want := "Listening on " + addr + " as 3.\n"
				err := p.WaitFor("listening", func(stderr string) bool { return strings.Contains(stderr, want) })
				if err == nil {
					break
				}
				if attempt < 5 && p.HasExited() && strings.Contains(p.Stderr.String(), "Address already in use") {
					t.Logf("port of %s was taken meanwhile, trying another: %v", addr, err)
					continue
				}
				t.Fatalf("systemd-socket-activate %q: %v", args, err)
			}

			// The first check starts grpcdemo: the connection waits in the
			// backlog of the passed socket until grpcdemo accepts it.
			const checks = 2
			for i := range checks {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				status, err := check(ctx, anylisten.MustParseAddress(addr), "")
				cancel()
				if err != nil || status != healthpb.HealthCheckResponse_SERVING {
					t.Fatalf("check %d of %s = %v, %v; want SERVING; stderr:\n%s", i+1, addr, status, err, p.Stderr.String())
				}
			}

			if perConn {
				// One grpcdemo per connection, each ending with status 0
				// when its client hung up.
				err := p.WaitFor(fmt.Sprintf("%d children ending", checks), func(stderr string) bool {
					return len(childDied.FindAllString(stderr, -1)) >= checks
				})
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range childDied.FindAllStringSubmatch(p.Stderr.String(), -1) {
					if m[2] != "0" {
						t.Errorf("grpcdemo (pid %s) exited with %s, want 0; stderr:\n%s", m[1], m[2], p.Stderr.String())
					}
				}
				if n := strings.Count(p.Stderr.String(), "grpcdemo: listening on "+addr+"\n"); n != checks {
					t.Errorf("%d grpcdemos said they listen on %s, want %d; stderr:\n%s", n, addr, checks, p.Stderr.String())
				}
				return
			}

			// systemd-socket-activate has become grpcdemo, by exec: the one
			// process that served both checks.
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			if exe != exePath {
				t.Errorf("process %d runs %s, want %s", p.Cmd.Process.Pid, exe, exePath)
			}
			listening := "grpcdemo: listening on " + addr + "\n"
			if err := p.WaitFor("saying "+listening, func(stderr string) bool { return strings.Contains(stderr, listening) }); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(p.Stderr.String(), listening); n != 1 {
				t.Errorf("%d grpcdemos said they listen on %s, want 1; stderr:\n%s", n, addr, p.Stderr.String())
			}
			if code := p.Stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("grpcdemo exited with %d after SIGTERM, want 0; stderr:\n%s", code, p.Stderr.String())
			}
		})
	}
}
