package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten"
	"github.com/anylisten/anylisten/internal/testenv"
)

// timeout bounds every wait of these tests: for hello to listen or exit,
// for curl.
const timeout = testenv.Timeout

// helloPath is the hello binary TestMain builds.
var helloPath string

// TestMain builds hello (with -race when the tests run with it), runs the
// tests and removes hello.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithProgram(m, "hello", &helloPath))
}

// hello is a running hello process, or a tool that runs hello
// (systemd-socket-activate, socat).
type hello struct {
	*testenv.Process
}

// startHello starts hello with args in dir ("" for the test's directory).
// When the test ends, hello is killed if it still runs, and the test fails
// if it wrote anything to standard output.
func startHello(t testing.TB, dir string, args ...string) *hello {
	t.Helper()
	return startProcess(t, dir, nil, helloPath, args...)
}

// startHere is startHello in the test's directory, for testenv's checks.
func startHere(t testing.TB, args ...string) *testenv.Process {
	return startHello(t, "", args...).Process
}

// startProcess starts the program path with args in dir ("" for the
// test's directory) and the environment env (nil for the test's own), in a
// process group of its own. When the test ends, the whole group is killed
// (the program and every child it started, such as the hellos of
// systemd-socket-activate -a or socat fork), and the test fails if the
// program wrote anything to standard output: hello never does, and
// neither do these tools.
func startProcess(t testing.TB, dir string, env []string, path string, args ...string) *hello {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = env
	return &hello{startInGroup(t, cmd)}
}

// startInGroup is startProcess for a command already made.
func startInGroup(t testing.TB, cmd *exec.Cmd) *testenv.Process {
	t.Helper()
	inOwnProcessGroup(cmd)
	return testenv.StartProcess(t, cmd, killProcessGroup)
}

// waitReady waits until hello has logged that it listens and a connection
// to network/address succeeds. It fails if hello exits first or does not
// get there within the timeout.
func (h *hello) waitReady(network, address string) error {
	deadline := time.Now().Add(timeout)
	for {
		var err error
		if strings.Contains(h.Stderr.String(), "listening on ") {
			var c net.Conn
			if c, err = net.DialTimeout(network, address, time.Until(deadline)); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hello did not accept connections on %s %s within %v (last dial error: %v); stderr:\n%s",
				network, address, timeout, err, h.Stderr.String())
		}
		select {
		case <-h.Done():
			return fmt.Errorf("hello exited before it accepted connections: %v; stderr:\n%s", h.Err(), h.Stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// server is a hello that accepts connections.
type server struct {
	*hello
	addr     string   // the LISTEN_ADDRESS argument
	path     string   // the socket file of a UNIX path address, else ""
	curlArgs []string // the curl arguments that reach it
}

// Kinds of address serveOn listens on.
const (
	onTCP          = testenv.OnPort         // 127.0.0.1:PORT
	onUnix         = testenv.OnUnix         // an absolute socket path
	onUnixRelative = testenv.OnUnixRelative // ./hello.sock in a new working directory
	onAbstract     = testenv.OnAbstract     // @anylisten-test-RANDOM
)

// serveOn starts hello with the arguments args gives for a new address of
// the kind on and waits until it accepts connections. A TCP port that
// another process took in the meantime is replaced by a new one.
func serveOn(t testing.TB, on string, args func(addr string) []string) *server {
	t.Helper()
	var s server
	testenv.ServeOn(t, on, "tcp", "hello.sock", func(a testenv.Address) (*testenv.Process, error) {
		s = server{addr: a.Addr, path: a.Path}
		network, dial := "unix", a.Path
		switch on {
		case onTCP:
			network, dial = "tcp", a.Addr
			s.curlArgs = []string{"http://" + a.Addr + "/"}
		case onAbstract:
			dial = a.Addr // package net dials @name as an abstract socket
			s.curlArgs = []string{"--abstract-unix-socket", strings.TrimPrefix(a.Addr, "@"), "http://x/"}
		default:
			s.curlArgs = []string{"--unix-socket", a.Path, "http://x/"}
		}
		s.hello = startHello(t, a.Dir, args(a.Addr)...)
		return s.Process, s.waitReady(network, dial)
	})
	return &s
}

// curl runs the real curl with args and returns the body it received.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	path := testenv.NeedTool(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args = append([]string{"-sS", "--max-time", strconv.Itoa(int(timeout.Seconds()))}, args...)
	cmd := exec.CommandContext(ctx, path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", args, err, stderr.Bytes())
	}
	return string(out)
}

// TestServe serves over TCP, a UNIX path and an abstract name, with
// options and arguments in several orders, and fetches the text with curl.
func TestServe(t *testing.T) {
	tests := []struct {
		name string
		on   string
		args func(addr string) []string
		want string
	}{{
		name: "tcp default text",
		on:   onTCP,
		args: func(addr string) []string { return []string{addr} },
		want: "Hello, world\n",
	}, {
		name: "tcp",
		on:   onTCP,
		args: func(addr string) []string { return []string{addr, "Hello from usual mode\n"} },
		want: "Hello from usual mode\n",
	}, {
		name: "unix path",
		on:   onUnix,
		args: func(addr string) []string { return []string{addr, "Hello from UNIX socket path mode\n"} },
		want: "Hello from UNIX socket path mode\n",
	}, {
		name: "relative unix path",
		on:   onUnixRelative,
		args: func(addr string) []string { return []string{addr, "Hello from a relative path\n"} },
		want: "Hello from a relative path\n",
	}, {
		name: "abstract",
		on:   onAbstract,
		args: func(addr string) []string { return []string{addr, "Hello from UNIX socket abstract mode\n"} },
		want: "Hello from UNIX socket abstract mode\n",
	}, {
		name: "text without newline",
		on:   onTCP,
		args: func(addr string) []string { return []string{addr, "no newline"} },
		want: "no newline",
	}, {
		name: "options before arguments",
		on:   onTCP,
		args: func(addr string) []string {
			return []string{"--tcp-reuse-port", "--recv-buffer-size", "65536", addr, "before\n"}
		},
		want: "before\n",
	}, {
		name: "option between arguments",
		on:   onUnix,
		args: func(addr string) []string { return []string{addr, "--send-buffer-size=65536", "between\n"} },
		want: "between\n",
	}, {
		name: "options after arguments",
		on:   onTCP,
		args: func(addr string) []string {
			return []string{addr, "after\n", "-tcp-keepalive", "60000:3:5000", "--tcp-listen-backlog", "16"}
		},
		want: "after\n",
	}, {
		name: "-- ends options",
		on:   onTCP,
		args: func(addr string) []string { return []string{addr, "--", "--not-an-option"} },
		want: "--not-an-option",
	}, {
		name: "-- first, - is an argument",
		on:   onAbstract,
		args: func(addr string) []string { return []string{"--", addr, "-"} },
		want: "-",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testenv.NeedTool(t, "curl")
			s := serveOn(t, tt.on, tt.args)
			if got := curl(t, s.curlArgs...); got != tt.want {
				t.Errorf("curl %q got body %q, want %q", s.curlArgs, got, tt.want)
			}
			if want := "hello: listening on " + s.addr + "\n"; !strings.Contains(s.Stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, s.Stderr.String())
			}
		})
	}
}

// TestHelp checks that -h names every option and every address form.
func TestHelp(t *testing.T) {
	flags := []string{
		"unix-listen-unlink", "unix-listen-chmod", "unix-listen-uid", "unix-listen-gid",
		"sd-accept-ignore-environment", "tcp-keepalive", "tcp-reuse-port", "recv-buffer-size",
		"send-buffer-size", "tcp-only-v6", "tcp-listen-backlog", "tcp-kill-port", "npipe-security-descriptor",
	}
	forms := []string{
		"127.0.0.1:8080", "[::]:80", ":8080", "tcp://HOST:PORT", "/run/app.sock", "./app.sock",
		"unix:PATH", "@name", "inetd", "sd-listen", "sd-listen:NAME", "sd-listen:*", "fd://N", "vsock:CID:PORT",
		`\\.\pipe\NAME`, "npipe://NAME",
	}
	testenv.CheckHelp(t, startHere, "Usage: hello [OPTIONS] [LISTEN_ADDRESS] [TEXT_TO_SERVE]\n", flags, forms)
}

// TestUnixListenChmod checks that --unix-listen-chmod works before, between
// and after the arguments.
func TestUnixListenChmod(t *testing.T) {
	tests := []struct {
		name string
		args func(path string) []string
		want os.FileMode
	}{
		{"before", func(path string) []string { return []string{"--unix-listen-chmod", "owner", path} }, 0o600},
		{"after", func(path string) []string { return []string{path, "--unix-listen-chmod", "owner"} }, 0o600},
		{"between", func(path string) []string { return []string{path, "-unix-listen-chmod=0640", "text"} }, 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := serveOn(t, onUnix, tt.args)
			fi, err := os.Lstat(s.path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tt.want {
				t.Errorf("socket file has mode %v, want a socket of mode %v", fi.Mode(), tt.want)
			}
		})
	}
}

// TestUnixListenUnlink checks that a stale socket file is in the way
// without --unix-listen-unlink and removed with it, and that a live
// server's socket is never taken over.
func TestUnixListenUnlink(t *testing.T) {
	path := filepath.Join(testenv.SocketDir(t), "hello.sock")
	ln, err := anylisten.Listen(context.Background(), anylisten.MustParseAddress(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	// hello on a live server's socket.
	startHere(t, "--unix-listen-unlink", path).CheckExit(t, 1, "live server")
	if c, err := net.DialTimeout("unix", path, timeout); err != nil {
		t.Errorf("the live server's socket does not take connections any more: %v", err)
	} else {
		c.Close()
	}

	ul := ln.(*anylisten.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := ul.Close(); err != nil { // the socket file stays, stale
		t.Fatal(err)
	}
	// hello on a stale socket: the error names --unix-listen-unlink.
	startHere(t, path).CheckExit(t, 1, "unix-listen-unlink")
	h := startHello(t, "", "--unix-listen-unlink", path)
	if err := h.waitReady("unix", path); err != nil {
		t.Fatal(err)
	}
}

// TestUsageErrors checks that command-line mistakes exit with status 2
// and an error on stderr, and write nothing to stdout.
func TestUsageErrors(t *testing.T) {
	parseErr := func(s string) string { return testenv.ErrorText(t, anylisten.ParseAddress, s) }
	testenv.CheckUsageErrors(t, startHere, []testenv.UsageError{
		{Name: "bare file name", Args: []string{"app.sock"}, Want: parseErr("app.sock")},
		{Name: "missing port", Args: []string{"127.0.0.1"}, Want: parseErr("127.0.0.1")},
		{Name: "port out of range", Args: []string{"--tcp-reuse-port", "localhost:99999"}, Want: parseErr("localhost:99999")},
		{Name: "unknown scheme", Args: []string{"http://127.0.0.1:8080"}, Want: parseErr("http://127.0.0.1:8080")},
		{Name: "unknown option", Args: []string{"127.0.0.1:8080", "--no-such-option"}, Want: "flag provided but not defined: -no-such-option"},
		{Name: "bad option value", Args: []string{"--unix-listen-chmod", "everyone", "./x.sock"}, Want: `invalid UNIX socket mode "everyone"`},
		{Name: "too many arguments", Args: []string{"127.0.0.1:8080", "text", "more"}, Want: `too many arguments: ["more"]`},
	})
}

// TestListenErrors checks that a failure to listen exits with status 1
// and Listen's error on stderr.
func TestListenErrors(t *testing.T) {
	testenv.CheckListenErrors(t, startHere, "tcp")
}

// TestSignal checks that SIGTERM and SIGINT make hello exit with status 0
// and remove its socket file.
func TestSignal(t *testing.T) {
	testenv.CheckSignals(t, func(t testing.TB) (*testenv.Process, string) {
		s := serveOn(t, onUnix, func(addr string) []string { return []string{addr} })
		return s.Process, s.path
	}, nil)
}

// fetch gets a page with curl -sS --fail -i and returns its body. It fails
// the test unless curl received exactly one well-formed HTTP/1.1 200
// response: nothing before the status line (in inetd mode, anything hello
// printed on the connection would be there), a Content-Length that is the
// body's length, nothing after the body.
func fetch(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"--fail", "-i"}, args...)
	out := curl(t, args...)
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("curl %q: the response does not start with HTTP/1.1 200 OK: %q", args, out)
	}
	r := bufio.NewReader(strings.NewReader(out))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("curl %q: %v in the response %q", args, err, out)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("curl %q: reading the body: %v in the response %q", args, err, out)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("curl %q: Content-Length %d, but a body of %d bytes: %q", args, resp.ContentLength, len(body), out)
	}
	if rest, _ := io.ReadAll(r); len(rest) > 0 {
		t.Errorf("curl %q: %q after the response", args, rest)
	}
	return string(body)
}

// checkBody fails the test unless got is want.
func checkBody(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("got body %q, want %q", got, want)
	}
}

// localURL is the URL of 127.0.0.1:port.
func localURL(port int) string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/"
}

// activation is a running systemd-socket-activate and the ports it
// listens on. Without -a it execs hello on the first connection: from then
// on the process is hello.
type activation struct {
	*hello
	ports []int
}

// socketActivate runs systemd-socket-activate -l PORT... FLAGS... --
// hello HELLOARGS..., with nports ports of its own choosing (it does not
// take port 0), and waits until it listens on all of them and on those of
// the -l options in flags. Ports that another process took in the
// meantime are replaced by new ones. Each -l PORT is a bare port:
// systemd-socket-activate binds [::]:PORT, dual stack, as in the example
// session. It runs in a process group of its own, as startProcess says.
func socketActivate(t *testing.T, nports int, flags []string, helloArgs ...string) *activation {
	t.Helper()
	p, ports := testenv.SocketActivate(t, testenv.SocketActivation{
		Ports:   nports,
		Flags:   flags,
		Command: func([]int) []string { return append([]string{helloPath}, helloArgs...) },
		Start:   func(cmd *exec.Cmd) *testenv.Process { return startInGroup(t, cmd) },
	})
	return &activation{&hello{p}, ports}
}

// waitLog waits until h's standard error says want. A line hello wrote
// before it served a connection may reach the test after the response
// did: the test reads hello's standard error from a pipe, concurrently.
func (h *hello) waitLog(t *testing.T, want string) {
	t.Helper()
	if err := h.WaitFor(fmt.Sprintf("saying %q", want), func(stderr string) bool { return strings.Contains(stderr, want) }); err != nil {
		t.Error(err)
	}
}

// checkIsHello checks that a (started without -a) has become hello, by
// exec, and still runs: the one process that served every connection.
func (a *activation) checkIsHello(t *testing.T) {
	t.Helper()
	a.waitLog(t, "hello: listening on ")
	a.CheckExecd(t, helloPath)
	if n := strings.Count(a.Stderr.String(), "hello: listening on "); n != 1 {
		t.Errorf("%d hellos started, want the one that serves every connection; stderr:\n%s", n, a.Stderr.String())
	}
}

// childDied matches systemd-socket-activate -a's line for each child
// that ended.
var childDied = regexp.MustCompile(`(?m)^Child (\d+) died with code (-?\d+)$`)

// checkChildren waits until n children of a (run with -a: one hello per
// connection) have ended, and checks that they were n processes that each
// exited with status 0.
func (a *activation) checkChildren(t *testing.T, n int) {
	t.Helper()
	err := a.WaitFor(fmt.Sprintf("%d children ending", n), func(stderr string) bool {
		return len(childDied.FindAllString(stderr, -1)) >= n
	})
	if err != nil {
		t.Fatal(err)
	}
	stderr := a.Stderr.String()
	pids := map[string]bool{}
	for _, m := range childDied.FindAllStringSubmatch(stderr, -1) {
		pids[m[1]] = true
		if m[2] != "0" {
			t.Errorf("hello (pid %s) exited with %s, want 0; stderr:\n%s", m[1], m[2], stderr)
		}
	}
	if len(pids) != n {
		t.Errorf("%d connections were served by %d processes, want one each; stderr:\n%s", n, len(pids), stderr)
	}
	if got := strings.Count(stderr, "hello: listening on "); got != n {
		t.Errorf("%d hellos said they listen, want %d; stderr:\n%s", got, n, stderr)
	}
}

// TestExampleSession runs the example session of tokio-listener's README,
// with hello for its clap_axum example, the real systemd-socket-activate
// and the real curl, each server on a port or socket of its own:
//
//	hello 127.0.0.1:PORT   $'Hello from usual mode\n'
//	hello ./path_socket    $'Hello from UNIX socket path mode\n'
//	hello @abstract_socket $'Hello from UNIX socket abstract mode\n'
//	systemd-socket-activate -l PORT hello sd-listen $'Hello from pre-listened socket\n'
//	systemd-socket-activate --inetd -a -l PORT hello inetd $'Hello from inetd mode\n'
//	systemd-socket-activate -l P1 -l P2 --fdname=foo:bar -- hello sd-listen:bar $'Hello from a named pre-listened socket\n'
//	systemd-socket-activate -l P1 -l P2 -- hello 'sd-listen:*' $'Hello from any of the two pre-listened sockets\n'
//
// and two more: inetd's wait mode (--inetd without -a: stdin is the
// listening socket) and sd-listen under -a, which hello-inetd@.service
// does with systemd's Accept=yes.
func TestExampleSession(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("abstract sockets and systemd-socket-activate are Linux's, not %s's", runtime.GOOS)
	}
	t.Run("usual mode", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "curl")
		const text = "Hello from usual mode\n"
		s := serveOn(t, onTCP, func(addr string) []string { return []string{addr, text} })
		checkBody(t, fetch(t, s.curlArgs...), text)
	})
	t.Run("UNIX socket path mode", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "curl")
		const text = "Hello from UNIX socket path mode\n"
		dir := testenv.SocketDir(t)
		h := startHello(t, dir, "./path_socket", text)
		path := filepath.Join(dir, "path_socket")
		if err := h.waitReady("unix", path); err != nil {
			t.Fatal(err)
		}
		checkBody(t, fetch(t, "--unix-socket", path, "http://x/"), text)
		h.waitLog(t, "hello: listening on ./path_socket\n")
	})
	t.Run("UNIX socket abstract mode", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "curl")
		const text = "Hello from UNIX socket abstract mode\n"
		s := serveOn(t, onAbstract, func(addr string) []string { return []string{addr, text} })
		checkBody(t, fetch(t, s.curlArgs...), text)
	})
	t.Run("pre-listened socket", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "curl")
		const text = "Hello from pre-listened socket\n"
		a := socketActivate(t, 1, nil, "sd-listen", text)
		for range 2 {
			checkBody(t, fetch(t, localURL(a.ports[0])), text)
		}
		a.checkIsHello(t)
		a.waitLog(t, fmt.Sprintf("hello: listening on [::]:%d\n", a.ports[0]))
		if code := a.Stop(t, syscall.SIGTERM); code != 0 {
			t.Errorf("hello exited with %d after SIGTERM, want 0; stderr:\n%s", code, a.Stderr.String())
		}
	})
	t.Run("unclaimed socket", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "curl")
		const text = "Hello from the socket asked for\n"
		// Two sockets passed, one asked for: hello serves that one, and
		// says which passed socket nobody listens on.
		asked := testenv.FreePort(t)
		a := socketActivate(t, 1, []string{"-l", strconv.Itoa(asked)}, "--listen", fmt.Sprintf(":%d", asked), text)
		checkBody(t, fetch(t, localURL(asked)), text)
		a.waitLog(t, fmt.Sprintf("hello: passed socket fd 3 (unknown) on [::]:%d is not listened on\n", a.ports[0]))
		if code := a.Stop(t, syscall.SIGTERM); code != 0 {
			t.Errorf("hello exited with %d after SIGTERM, want 0; stderr:\n%s", code, a.Stderr.String())
		}
	})
	t.Run("inetd mode", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "curl")
		const text = "Hello from inetd mode\n"
		// A new hello per connection, with the connected socket on
		// stdin and stdout; each exits 0 after its connection.
		a := socketActivate(t, 1, []string{"--inetd", "-a"}, "inetd", text)
		for range 2 {
			checkBody(t, fetch(t, localURL(a.ports[0])), text)
		}
		a.checkChildren(t, 2)
	})
	t.Run("inetd wait mode", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "curl")
		const text = "Hello from inetd wait mode\n"
		// stdin is the listening socket: one hello serves every
		// connection, as sd-listen does.
		a := socketActivate(t, 1, []string{"--inetd"}, "inetd", text)
		for range 3 {
			checkBody(t, fetch(t, localURL(a.ports[0])), text)
		}
		a.checkIsHello(t)
		if code := a.Stop(t, syscall.SIGTERM); code != 0 {
			t.Errorf("hello exited with %d after SIGTERM, want 0; stderr:\n%s", code, a.Stderr.String())
		}
	})
	t.Run("named pre-listened socket", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "curl")
		const text = "Hello from a named pre-listened socket\n"
		a := socketActivate(t, 2, []string{"--fdname=foo:bar"}, "sd-listen:bar", text)
		checkBody(t, fetch(t, localURL(a.ports[1])), text)
		a.checkIsHello(t)
		a.waitLog(t, fmt.Sprintf("hello: listening on [::]:%d\n", a.ports[1]))
	})
	t.Run("any of the two pre-listened sockets", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "curl")
		const text = "Hello from any of the two pre-listened sockets\n"
		a := socketActivate(t, 2, nil, "sd-listen:*", text)
		checkBody(t, fetch(t, localURL(a.ports[0])), text)
		checkBody(t, fetch(t, localURL(a.ports[1])), text)
		a.checkIsHello(t)
		a.waitLog(t, fmt.Sprintf("hello: listening on tcp:[::]:%d,tcp:[::]:%d\n", a.ports[0], a.ports[1]))
	})
	t.Run("sd-listen with Accept=yes", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "curl")
		const text = "Hello from a connection passed as fd 3\n"
		// -a without --inetd: fd 3 is the connected socket, LISTEN_FDS=1.
		a := socketActivate(t, 1, []string{"-a"}, "sd-listen", text)
		for range 2 {
			checkBody(t, fetch(t, localURL(a.ports[0])), text)
		}
		a.checkChildren(t, 2)
	})
}

// inetdWrapper is the program socat runs: it runs hello in inetd mode and
// appends what it found on standard input and hello's exit status to the
// file $HELLO_STATUS. Paths and text come in the environment, since ','
// and ':' are special in socat's addresses; the status goes to a file,
// since standard error may be the connection.
const inetdWrapper = `#!/bin/sh
if [ -S /dev/stdin ]; then stdin=socket; elif [ -p /dev/stdin ]; then stdin=pipe; else stdin=other; fi
"$HELLO" inetd "$HELLO_TEXT"
status=$?
echo "stdin=$stdin exit=$status" >>"$HELLO_STATUS"
exit $status
`

// TestInetdSocat serves one HTTP request in inetd mode under socat, in
// each way socat hands a program its connection, and checks that the
// response is exactly hello's (nothing else on the connection) and that
// hello exits with status 0:
//
//	socat TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr,fork EXEC:wrapper          # a socketpair on stdin and stdout
//	socat TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr,fork EXEC:wrapper,pipes    # two pipes
//	socat TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr EXEC:wrapper,nofork        # the TCP socket itself
//
// and, with socat's stderr option, as classic inetd does: standard error
// is the connection too.
func TestInetdSocat(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("inetd mode is for Unix")
	}
	tests := []struct {
		name   string
		listen string // options of TCP-LISTEN after bind and reuseaddr
		exec   string // options of EXEC
		stdin  string // what the wrapper finds on stdin: socket or pipe
		// wantLog is the line hello logs on its standard error, socat's
		// (its TCP port for %d); "" if it must log nothing there.
		wantLog string
	}{
		{"socketpair", ",fork", "", "socket", "hello: listening on "},
		{"pipes", ",fork", ",pipes", "pipe", "hello: listening on stdio\n"},
		{"socket", "", ",nofork", "socket", "hello: listening on 127.0.0.1:%d\n"},
		{"socketpair, stderr too", ",fork", ",stderr", "socket", ""},
		{"pipes, stderr too", ",fork", ",pipes,stderr", "pipe", ""},
		{"socket, stderr too", "", ",nofork,stderr", "socket", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tool := testenv.NeedTool(t, "socat")
			testenv.NeedTool(t, "curl")
			text := "Hello from inetd mode under socat (" + tt.name + ")\n"
			dir := testenv.SocketDir(t)
			script := filepath.Join(dir, "inetd.sh")
			if err := os.WriteFile(script, []byte(inetdWrapper), 0o755); err != nil {
				t.Fatal(err)
			}
			statusFile := filepath.Join(dir, "status")
			// socat ends the wrapper when the connection ends: hello
			// must have exited by then, even when built with -race.
			env := testenv.ExitAtOnce(append(os.Environ(), "HELLO="+helloPath, "HELLO_TEXT="+text, "HELLO_STATUS="+statusFile))

			var socat *hello
			var port int
			for attempt := 1; ; attempt++ {
				port = testenv.FreePort(t)
				args := []string{"-d", "-d",
					fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr%s", port, tt.listen),
					"EXEC:" + script + tt.exec}
				socat = startProcess(t, "", env, tool, args...)
				listening := regexp.MustCompile(`listening on .*127\.0\.0\.1:` + strconv.Itoa(port) + `\b`)
				err := socat.WaitFor("listening", func(stderr string) bool { return listening.MatchString(stderr) })
				if err == nil {
					break
				}
				if attempt < 5 && socat.HasExited() && strings.Contains(socat.Stderr.String(), "Address already in use") {
					t.Logf("port %d was taken meanwhile, trying another: %v", port, err)
					continue
				}
				t.Fatalf("socat %q: %v", args, err)
			}

			checkBody(t, fetch(t, localURL(port)), text)

			// The wrapper writes the status line once hello has exited.
			var status string
			deadline := time.Now().Add(timeout)
			for {
				b, err := os.ReadFile(statusFile)
				if err == nil && bytes.HasSuffix(b, []byte("\n")) {
					status = string(b)
					break
				}
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("hello did not exit within %v of its connection; socat's stderr:\n%s", timeout, socat.Stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if want := "stdin=" + tt.stdin + " exit=0\n"; status != want {
				t.Errorf("the wrapper says %q, want %q; socat's stderr:\n%s", status, want, socat.Stderr.String())
			}
			if tt.listen == "" {
				// nofork: socat became the wrapper, which exits with hello's status.
				if code := socat.WaitExit(t); code != 0 {
					t.Errorf("socat (the wrapper, by exec) exited with %d, want 0; stderr:\n%s", code, socat.Stderr.String())
				}
			} else {
				// End socat, so that its standard error, which hello
				// shared, is complete.
				killProcessGroup(socat.Cmd.Process)
				socat.WaitExit(t)
			}
			stderr := socat.Stderr.String()
			if tt.wantLog == "" {
				if strings.Contains(stderr, "hello:") {
					t.Errorf("hello logged to socat's stderr although its own stderr was the connection:\n%s", stderr)
				}
			} else {
				want := tt.wantLog
				if strings.Contains(want, "%d") {
					want = fmt.Sprintf(want, port)
				}
				if !strings.Contains(stderr, want) {
					t.Errorf("socat's stderr does not have hello's %q:\n%s", want, stderr)
				}
			}
		})
	}
}

// TestSeveralListen serves one hello on a TCP port, a UNIX path and an
// abstract name at once, given by repeated --listen flags.
func TestSeveralListen(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("abstract UNIX sockets exist on Linux only, not on %s", runtime.GOOS)
	}
	testenv.NeedTool(t, "curl")
	const text = "Hello from three sockets\n"
	path := filepath.Join(testenv.SocketDir(t), "several.sock")
	name := fmt.Sprintf("anylisten-test-%016x", rand.Uint64())
	// The TCP address comes last: a taken port shows as the only failure.
	s := serveOn(t, onTCP, func(addr string) []string {
		return []string{"--listen", path, "--listen=@" + name, "--listen", addr, text}
	})
	want := fmt.Sprintf("hello: listening on unix:%s,unix:@%s,tcp:%s\n", path, name, s.addr)
	if !strings.Contains(s.Stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, s.Stderr.String())
	}
	for _, args := range [][]string{
		s.curlArgs,
		{"--unix-socket", path, "http://x/"},
		{"--abstract-unix-socket", name, "http://x/"},
	} {
		if got := curl(t, args...); got != text {
			t.Errorf("curl %q got body %q, want %q", args, got, text)
		}
	}
}

// TestAllowListLogged: with --unix-allow-uid, a peer the list refuses
// (curl as uid 65534) gets no answer, and hello logs it, never silently;
// root, on the list, is served.
func TestAllowListLogged(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "not root (euid %d): running curl as another user needs root", os.Geteuid())
	}
	setpriv := testenv.NeedTool(t, "setpriv")
	curlPath := testenv.NeedTool(t, "curl")
	name := "anylisten-hello-allow-" + strconv.Itoa(os.Getpid())
	h := startHello(t, "", "--unix-allow-uid", "0", "--listen", "@"+name, "allowed\n")
	if err := h.WaitListening(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		curlPath, "-sS", "--max-time", "10", "--abstract-unix-socket", name, "http://x/").Output()
	if err == nil {
		t.Errorf("curl as uid 65534 was served: %q", out)
	}
	if err := h.WaitFor("the refusal in the log", func(stderr string) bool {
		return strings.Contains(stderr, "hello: refused a connection to @"+name+" from uid 65534 (gid 65534, groups [], pid ")
	}); err != nil {
		t.Error(err)
	}
	if got := curl(t, "--abstract-unix-socket", name, "http://x/"); got != "allowed\n" {
		t.Errorf("root got %q, want the text", got)
	}
}
