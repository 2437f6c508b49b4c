package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anylisten/anylisten"
	"github.com/anylisten/anylisten/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// timeout bounds every wait of these tests: for each run of client.
const timeout = testenv.Timeout

// clientPath is the client binary TestMain builds.
var clientPath string

// TestMain builds client (with -race when the tests run with it), runs the
// tests and removes client.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithProgram(m, "client", &clientPath))
}

// result is what a run of client did.
type result struct {
	Stdout, Stderr string
	Code           int // exit status
}

// runClient runs client with args in dir ("" for the test's directory)
// and stdin (nil for an empty one), and returns what it did. It fails the
// test if client does not exit within the timeout.
func runClient(t *testing.T, dir string, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, clientPath, args...)
	cmd.Dir = dir
	cmd.Env = testenv.ExitAtOnce(nil) // the tests run client often
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = timeout
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("client %q did not exit within %v; stdout %q, stderr:\n%s", args, timeout, stdout.String(), stderr.String())
	}
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running client %q: %v", args, err)
	}
	return r
}

// listen listens on s with anylisten.Listen, serves every connection with
// serve until the test ends, and returns the listener.
func listen(t *testing.T, s string, serve func(net.Listener)) net.Listener {
	t.Helper()
	ln, err := anylisten.Listen(context.Background(), anylisten.MustParseAddress(s), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(ln)
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case <-done:
		case <-time.After(timeout):
			t.Errorf("the server on %s did not stop within %v of Close", s, timeout)
		}
	})
	return ln
}

// serveHTTP answers every request with its method, request URI and Host
// header; /missing is a 404.
func serveHTTP(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, "no %s here\n", r.URL.Path)
			return
		}
		fmt.Fprintf(w, "%s %s host=%s\n", r.Method, r.URL.RequestURI(), r.Host)
	})}
	srv.Serve(ln)
	srv.Close() // and the connections Serve left open
}

// serveEcho sends back everything each connection sends, and closes the
// connection after the client's end of input.
func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(timeout))
			io.Copy(c, c)
		}()
	}
}

// serveGreeting sends each connection a line and closes it, without
// reading anything.
func serveGreeting(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, "bye\n")
		c.Close()
	}
}

var abstractSeq atomic.Uint64

// target is one way to reach a server: the ADDRESS argument, the
// directory to run client in, and the Host header the server sees. A
// target this machine cannot have says why in skip.
type target struct {
	name, addr, dir, host string
	skip                  string
}

// run runs f as a subtest named after tg, or skips it.
func (tg target) run(t *testing.T, f func(t *testing.T)) {
	t.Run(tg.name, func(t *testing.T) {
		if tg.skip != "" {
			t.Skip(tg.skip)
		}
		f(t)
	})
}

// targets starts a server with serve on every kind of socket client
// reaches, each until the test ends, and returns the ways to reach them.
func targets(t *testing.T, serve func(net.Listener)) []target {
	t.Helper()
	var ts []target

	ln := listen(t, "127.0.0.1:0", serve)
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ts = append(ts,
		target{name: "tcp", addr: "127.0.0.1:" + port, host: "127.0.0.1:" + port},
		target{name: "tcp_scheme", addr: "tcp://127.0.0.1:" + port, host: "127.0.0.1:" + port},
		target{name: "tcp_localhost", addr: "localhost:" + port, host: "localhost:" + port},
		target{name: "tcp_colon_port", addr: ":" + port, host: "localhost:" + port},
		target{name: "tcp_bare_port", addr: port, host: "localhost:" + port},
	)

	dir := testenv.SocketDir(t)
	path := filepath.Join(dir, "s.sock")
	listen(t, "unix:"+path, serve)
	ts = append(ts,
		target{name: "unix_scheme", addr: "unix:" + path, host: "localhost"},
		target{name: "unix_relative", addr: "./s.sock", dir: dir, host: "localhost"},
		target{name: "unix_scheme_relative", addr: "unix:s.sock", dir: dir, host: "localhost"},
	)
	if strings.HasPrefix(path, "/") { // not on Windows, where unix: covers it
		ts = append(ts, target{name: "unix_path", addr: path, host: "localhost"})
	}

	abstract := target{name: "abstract", host: "localhost"}
	if runtime.GOOS == "linux" || runtime.GOOS == "android" {
		abstract.addr = fmt.Sprintf("@anylisten-client-test-%d-%d", os.Getpid(), abstractSeq.Add(1))
		listen(t, abstract.addr, serve)
	} else {
		abstract.skip = "abstract UNIX sockets exist on Linux only, not on " + runtime.GOOS
	}
	ts = append(ts, abstract)

	vsock := target{name: "vsock", host: "localhost"}
	if runtime.GOOS != "linux" {
		vsock.skip = "AF_VSOCK exists on Linux only, not on " + runtime.GOOS
	} else if ln, err := anylisten.Listen(context.Background(), anylisten.MustParseAddress("vsock:local:0"), nil); err != nil {
		vsock.skip = fmt.Sprintf("no vsock loopback transport here (%v): modprobe vsock_loopback to run this test", err)
	} else {
		ln.Close()
		ln = listen(t, "vsock:local:0", serve)
		a := ln.Addr().String() // like local(1):1234
		vsock.addr = "vsock:local:" + a[strings.LastIndexByte(a, ':')+1:]
	}
	return append(ts, vsock)
}

func TestHTTP(t *testing.T) {
	for _, tg := range targets(t, serveHTTP) {
		tg.run(t, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				args []string
				want result
			}{{
				name: "get",
				args: []string{tg.addr},
				want: result{Stdout: "GET / host=" + tg.host + "\n"},
			}, {
				name: "post_path_query",
				args: []string{"-X", "POST", tg.addr, "/a/b?c=d&e"},
				want: result{Stdout: "POST /a/b?c=d&e host=" + tg.host + "\n"},
			}, {
				name: "not_found",
				args: []string{tg.addr, "/missing"},
				want: result{
					Stdout: "no /missing here\n",
					Stderr: "client: GET " + canonical(tg.addr) + " /missing: the server answered 404 Not Found\n",
					Code:   1,
				},
			}} {
				t.Run(tc.name, func(t *testing.T) {
					got := runClient(t, tg.dir, nil, tc.args...)
					if diff := cmp.Diff(tc.want, got); diff != "" {
						t.Errorf("client %q (-want +got):\n%s", tc.args, diff)
					}
				})
			}
		})
	}
}

// canonical returns the canonical form of the address s, as client's
// messages name it.
func canonical(s string) string {
	return anylisten.MustParseAddress(s).String()
}

func TestRawEcho(t *testing.T) {
	// Enough that the echo comes back while client still sends, and a
	// client that read or wrote one direction only would block.
	big := make([]byte, 4<<20)
	rand.Read(big)
	for _, tg := range targets(t, serveEcho) {
		tg.run(t, func(t *testing.T) {
			for _, in := range []string{"", "hello\nworld\n", string(big)} {
				got := runClient(t, tg.dir, strings.NewReader(in), "-raw", tg.addr)
				if got.Code != 0 || got.Stderr != "" || got.Stdout != in {
					t.Errorf("client -raw %s with %d bytes of input: exit status %d, stderr %q, %d bytes of output, equal to the input: %v",
						tg.addr, len(in), got.Code, got.Stderr, len(got.Stdout), got.Stdout == in)
				}
			}
		})
	}
}

// A server that closes first ends client, although its standard input is
// still open.
func TestRawServerClosesFirst(t *testing.T) {
	for _, tg := range targets(t, serveGreeting) {
		tg.run(t, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close() // only once client has exited
			got := runClient(t, tg.dir, r, "-raw", tg.addr)
			if diff := cmp.Diff(result{Stdout: "bye\n"}, got); diff != "" {
				t.Errorf("client -raw %s (-want +got):\n%s", tg.addr, diff)
			}
		})
	}
}

func TestConnectError(t *testing.T) {
	dir := testenv.SocketDir(t)
	missing := filepath.Join(dir, "none.sock")
	for _, args := range [][]string{
		{"unix:" + missing},
		{"-raw", "unix:" + missing},
		{"vsock:any:1024"}, // any is for listening only
	} {
		got := runClient(t, "", nil, args...)
		if got.Code != 1 || got.Stdout != "" || !strings.HasPrefix(got.Stderr, "client: ") || strings.Count(got.Stderr, "\n") != 1 {
			t.Errorf("client %q: exit status %d, stdout %q, stderr %q; want status 1, no output and a one-line error",
				args, got.Code, got.Stdout, got.Stderr)
		}
	}
}

func TestCommandLineErrors(t *testing.T) {
	const help = " (client -h for help)\n"
	for _, tc := range []struct {
		args   []string
		stderr string // the whole of it, or with a trailing "...", its start
	}{
		{nil, "client: missing ADDRESS" + help},
		{[]string{"inetd"}, "client: inetd: a server given this address serves the connection inetd passes on stdin and stdout; " +
			"it names no address to connect to: give the address inetd listens on, like 127.0.0.1:8080" + help},
		{[]string{"-"}, "client: -: a server given this address serves the connection inetd passes ..."},
		{[]string{"-raw", "stdio"}, "client: stdio: a server given this address serves the connection inetd passes ..."},
		{[]string{"sd-listen"}, "client: sd-listen: a server given this address serves a socket systemd passes; " +
			"it names no address to connect to: give the address of that socket (ListenStream= of the .socket unit), " +
			"like 127.0.0.1:8080 or /run/app.sock" + help},
		{[]string{"-raw", "sd-listen:http"}, "client: sd-listen:http: a server given this address serves a socket systemd passes; ..."},
		{[]string{"sd-listen:*", "/"}, "client: sd-listen:*: a server given this address serves a socket systemd passes; ..."},
		{[]string{"fd://3"}, "client: fd://3: a server given this address serves a socket systemd passes; ..."},
		{[]string{"app.sock"}, `client: anylisten: invalid listen address "app.sock": neither a TCP address (HOST:PORT needs a port) ` +
			`nor a UNIX socket path (a relative path must start with ./ or ../: write ./app.sock or unix:app.sock)` + help},
		{[]string{"./app.sock", "index.html"}, `client: PATH "index.html" must start with /` + help},
		{[]string{"./app.sock", "/", "/"}, `client: too many arguments: ["/"]; want ADDRESS and at most PATH` + help},
		{[]string{"-raw", "./app.sock", "/"}, `client: -raw takes ADDRESS only; what is ["/"]?` + help},
		{[]string{"-raw", "-X", "POST", "./app.sock"}, "client: -X has no meaning with -raw, which sends no HTTP request" + help},
		{[]string{"-X", "BAD METHOD", "./app.sock"}, `client: net/http: invalid method "BAD METHOD"` + help},
		{[]string{"-nope", "./app.sock"}, "flag provided but not defined: -nope\n..."},
	} {
		got := runClient(t, "", nil, tc.args...)
		stderrOK := got.Stderr == tc.stderr
		if start, ok := strings.CutSuffix(tc.stderr, "..."); ok {
			stderrOK = strings.HasPrefix(got.Stderr, start)
		}
		if got.Code != 2 || got.Stdout != "" || !stderrOK {
			t.Errorf("client %q: exit status %d, stdout %q, stderr:\n%s\nwant status 2, no output and stderr:\n%s",
				tc.args, got.Code, got.Stdout, got.Stderr, tc.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	got := runClient(t, "", nil, "-h")
	if got.Code != 0 || got.Stdout != "" || !strings.Contains(got.Stderr, "\nUsage:\n  client [-X METHOD] ADDRESS [PATH]") {
		t.Errorf("client -h: exit status %d, stdout %q, stderr:\n%s\nwant status 0 and the usage on stderr", got.Code, got.Stdout, got.Stderr)
	}
}
