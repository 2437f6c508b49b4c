package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten"
	"github.com/anylisten/anylisten/internal/testenv"
)

// timeout bounds every wait of these tests: for the build, for hello to
// listen or exit, for curl.
const timeout = 10 * time.Second

// helloPath is the hello binary TestMain builds.
var helloPath string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds hello into a temporary directory, runs the tests and
// removes the directory.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hello-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	helloPath = filepath.Join(dir, "hello")
	// go test puts the go command of its own GOROOT first in PATH.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", helloPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build -o %s .: %v\n%s", helloPath, err, out)
		return 1
	}
	return m.Run()
}

// lockedBuffer is a bytes.Buffer that a child's output can be copied into
// while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// hello is a running hello process.
type hello struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	exited         chan struct{} // closed once Wait has returned
	waitErr        error         // Wait's result, set before exited is closed
}

// startHello starts hello with args in dir ("" for the test's directory).
// When the test ends, hello is killed if it still runs, and the test fails
// if it wrote anything to standard output.
func startHello(t *testing.T, dir string, args ...string) *hello {
	t.Helper()
	h := &hello{cmd: exec.Command(helloPath, args...), exited: make(chan struct{})}
	h.cmd.Dir = dir
	h.cmd.Stdout = &h.stdout
	h.cmd.Stderr = &h.stderr
	h.cmd.WaitDelay = timeout
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		h.waitErr = h.cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		if !h.hasExited() {
			h.cmd.Process.Kill()
		}
		select {
		case <-h.exited:
		case <-time.After(timeout):
			t.Errorf("hello %q (pid %d) did not exit within %v of SIGKILL", args, h.cmd.Process.Pid, timeout)
			return
		}
		if out := h.stdout.String(); out != "" {
			t.Errorf("hello %q wrote to standard output: %q", args, out)
		}
	})
	return h
}

func (h *hello) hasExited() bool {
	select {
	case <-h.exited:
		return true
	default:
		return false
	}
}

// waitReady waits until hello has logged that it listens and a connection
// to network/address succeeds. It fails if hello exits first or does not
// get there within the timeout.
func (h *hello) waitReady(network, address string) error {
	deadline := time.Now().Add(timeout)
	for {
		var err error
		if strings.Contains(h.stderr.String(), "listening on ") {
			var c net.Conn
			if c, err = net.DialTimeout(network, address, time.Until(deadline)); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hello did not accept connections on %s %s within %v (last dial error: %v); stderr:\n%s",
				network, address, timeout, err, h.stderr.String())
		}
		select {
		case <-h.exited:
			return fmt.Errorf("hello exited before it accepted connections: %v; stderr:\n%s", h.waitErr, h.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop sends sig to hello and returns its exit code.
func (h *hello) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := h.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.exited:
	case <-time.After(timeout):
		t.Fatalf("hello did not exit within %v of %v; stderr:\n%s", timeout, sig, h.stderr.String())
	}
	return h.cmd.ProcessState.ExitCode()
}

// runHello runs hello with args until it exits and returns what it wrote
// and its exit code.
func runHello(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	h := startHello(t, "", args...)
	select {
	case <-h.exited:
	case <-time.After(timeout):
		t.Fatalf("hello %q did not exit within %v; stderr:\n%s", args, timeout, h.stderr.String())
	}
	var exitErr *exec.ExitError
	if h.waitErr != nil && !errors.As(h.waitErr, &exitErr) {
		t.Fatalf("hello %q: %v", args, h.waitErr)
	}
	return h.stdout.String(), h.stderr.String(), h.cmd.ProcessState.ExitCode()
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
	onTCP          = "tcp"      // 127.0.0.1:PORT
	onUnix         = "unix"     // an absolute socket path
	onUnixRelative = "relative" // ./hello.sock in a new working directory
	onAbstract     = "abstract" // @anylisten-test-RANDOM
)

// serveOn starts hello with the arguments args gives for a new address of
// the kind on and waits until it accepts connections. A TCP port that
// another process took in the meantime is replaced by a new one.
func serveOn(t *testing.T, on string, args func(addr string) []string) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		var s server
		network, dial, dir := "unix", "", ""
		switch on {
		case onTCP:
			network = "tcp"
			s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
			dial = s.addr
			s.curlArgs = []string{"http://" + s.addr + "/"}
		case onUnix:
			s.addr = filepath.Join(testenv.SocketDir(t), "hello.sock")
			s.path, dial = s.addr, s.addr
			s.curlArgs = []string{"--unix-socket", s.path, "http://x/"}
		case onUnixRelative:
			dir = testenv.SocketDir(t)
			s.addr = "./hello.sock"
			s.path = filepath.Join(dir, "hello.sock")
			dial = s.path
			s.curlArgs = []string{"--unix-socket", s.path, "http://x/"}
		case onAbstract:
			if runtime.GOOS != "linux" {
				t.Skipf("abstract UNIX sockets exist on Linux only, not on %s", runtime.GOOS)
			}
			name := fmt.Sprintf("anylisten-test-%016x", rand.Uint64())
			s.addr = "@" + name
			dial = s.addr // package net dials @name as an abstract socket
			s.curlArgs = []string{"--abstract-unix-socket", name, "http://x/"}
		default:
			t.Fatalf("unknown address kind %q", on)
		}
		s.hello = startHello(t, dir, args(s.addr)...)
		err := s.waitReady(network, dial)
		if err == nil {
			return &s
		}
		if on == onTCP && attempt < 5 && s.hasExited() && strings.Contains(s.stderr.String(), "address already in use") {
			t.Logf("port of %s was taken meanwhile, trying another: %v", s.addr, err)
			continue
		}
		t.Fatal(err)
	}
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
			if want := "hello: listening on " + s.addr + "\n"; !strings.Contains(s.stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, s.stderr.String())
			}
		})
	}
}

// TestHelp checks that -h names every option and every address form.
func TestHelp(t *testing.T) {
	flags := []string{
		"unix-listen-unlink", "unix-listen-chmod", "unix-listen-uid", "unix-listen-gid",
		"sd-accept-ignore-environment", "tcp-keepalive", "tcp-reuse-port", "recv-buffer-size",
		"send-buffer-size", "tcp-only-v6", "tcp-listen-backlog",
	}
	forms := []string{
		"127.0.0.1:8080", "[::]:80", ":8080", "tcp://HOST:PORT", "/run/app.sock", "./app.sock",
		"unix:PATH", "@name", "inetd", "sd-listen", "sd-listen:NAME", "sd-listen:*", "fd://N", "vsock:CID:PORT",
	}
	for _, arg := range []string{"-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runHello(t, arg)
			if code != 0 {
				t.Errorf("hello %s exited with %d, want 0", arg, code)
			}
			if stdout != "" {
				t.Errorf("hello %s wrote to stdout: %q", arg, stdout)
			}
			if want := "Usage: hello [OPTIONS] [LISTEN_ADDRESS] [TEXT_TO_SERVE]\n"; !strings.Contains(stderr, want) {
				t.Errorf("help lacks the usage line %q:\n%s", want, stderr)
			}
			for _, f := range flags {
				if !strings.Contains(stderr, "\n  -"+f+" ") && !strings.Contains(stderr, "\n  -"+f+"\n") {
					t.Errorf("help does not list the option -%s:\n%s", f, stderr)
				}
			}
			for _, f := range forms {
				if !strings.Contains(stderr, f) {
					t.Errorf("help does not name the address form %s:\n%s", f, stderr)
				}
			}
		})
	}
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

	_, stderr, code := runHello(t, "--unix-listen-unlink", path)
	if code != 1 || !strings.Contains(stderr, "live server") {
		t.Errorf("hello on a live server's socket exited with %d, want 1 and an error naming the live server; stderr:\n%s", code, stderr)
	}
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
	_, stderr, code = runHello(t, path)
	if code != 1 || !strings.Contains(stderr, "unix-listen-unlink") {
		t.Errorf("hello on a stale socket exited with %d, want 1 and an error naming --unix-listen-unlink; stderr:\n%s", code, stderr)
	}
	h := startHello(t, "", "--unix-listen-unlink", path)
	if err := h.waitReady("unix", path); err != nil {
		t.Fatal(err)
	}
}

// TestUsageErrors checks that command-line mistakes exit with status 2
// and an error on stderr, and write nothing to stdout.
func TestUsageErrors(t *testing.T) {
	parseErr := func(s string) string {
		_, err := anylisten.ParseAddress(s)
		if err == nil {
			t.Fatalf("ParseAddress(%q) succeeded", s)
		}
		return err.Error()
	}
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"bare file name", []string{"app.sock"}, parseErr("app.sock")},
		{"missing port", []string{"127.0.0.1"}, parseErr("127.0.0.1")},
		{"port out of range", []string{"--tcp-reuse-port", "localhost:99999"}, parseErr("localhost:99999")},
		{"unknown scheme", []string{"http://127.0.0.1:8080"}, parseErr("http://127.0.0.1:8080")},
		{"unknown option", []string{"127.0.0.1:8080", "--no-such-option"}, "flag provided but not defined: -no-such-option"},
		{"bad option value", []string{"--unix-listen-chmod", "everyone", "./x.sock"}, `invalid UNIX socket mode "everyone"`},
		{"too many arguments", []string{"127.0.0.1:8080", "text", "more"}, `too many arguments: ["more"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runHello(t, tt.args...)
			if code != 2 {
				t.Errorf("hello %q exited with %d, want 2", tt.args, code)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("hello %q: stderr does not say %q:\n%s", tt.args, tt.want, stderr)
			}
			if stdout != "" {
				t.Errorf("hello %q wrote to stdout: %q", tt.args, stdout)
			}
		})
	}
}

// TestListenErrors checks that a failure to listen exits with status 1
// and Listen's error on stderr.
func TestListenErrors(t *testing.T) {
	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		_, stderr, code := runHello(t, ln.Addr().String())
		if want := "listen tcp " + ln.Addr().String() + ": bind: address already in use"; code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("hello on a port in use exited with %d, want 1 and %q in stderr:\n%s", code, want, stderr)
		}
	})
	t.Run("regular file at path", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(testenv.SocketDir(t), "file")
		if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := runHello(t, "--unix-listen-unlink", path)
		if code != 1 || !strings.Contains(stderr, "a regular file is at this path") {
			t.Errorf("hello on a regular file exited with %d, want 1 and an error naming the regular file; stderr:\n%s", code, stderr)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
			t.Errorf("the regular file was touched: %q, %v", b, err)
		}
	})
}

// TestSignal checks that SIGTERM and SIGINT make hello exit with status 0
// and remove its socket file.
func TestSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := serveOn(t, onUnix, func(addr string) []string { return []string{addr} })
			if code := s.stop(t, sig); code != 0 {
				t.Errorf("hello exited with %d after %v, want 0; stderr:\n%s", code, sig, s.stderr.String())
			}
			if _, err := os.Lstat(s.path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket file %s is still there after %v (Lstat: %v)", s.path, sig, err)
			}
		})
	}
}
