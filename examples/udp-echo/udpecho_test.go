package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten"
	"github.com/anylisten/anylisten/internal/testenv"
)

// timeout bounds every wait of these tests: for udp-echo to listen or
// exit, for an echo.
const timeout = testenv.Timeout

// echoPath is the udp-echo binary TestMain builds.
var echoPath string

// TestMain builds udp-echo (with -race when the tests run with it), runs
// the tests and removes udp-echo.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithProgram(m, "udp-echo", &echoPath))
}

// startEcho starts udp-echo with args in dir ("" for the test's
// directory). When the test ends, it is killed if it still runs, and the
// test fails if it wrote anything to standard output.
func startEcho(t *testing.T, dir string, args ...string) *testenv.Process {
	t.Helper()
	cmd := exec.Command(echoPath, args...)
	cmd.Dir = dir
	return testenv.StartProcess(t, cmd, nil)
}

// runEcho runs udp-echo with args until it exits and returns what it
// wrote and its exit code.
func runEcho(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	p := startEcho(t, "", args...)
	code = p.WaitExit(t)
	var exitErr *exec.ExitError
	if err := p.Err(); err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("udp-echo %q: %v", args, err)
	}
	return p.Stdout.String(), p.Stderr.String(), code
}

// waitLog waits until p's standard error holds want.
func waitLog(t *testing.T, p *testenv.Process, want string) {
	t.Helper()
	if err := p.WaitFor(fmt.Sprintf("saying %q", want), func(stderr string) bool { return strings.Contains(stderr, want) }); err != nil {
		t.Fatal(err)
	}
}

// server is a udp-echo that reads datagrams.
type server struct {
	*testenv.Process
	addr   string // the LISTEN_ADDRESS argument
	listen string // the address it says it listens on
	path   string // the socket file of a UNIX path address, else ""
	peer   string // the socat address that reaches it, and gets the echo
}

// Kinds of address serveOn listens on.
const (
	onUDP          = "udp"      // 127.0.0.1:PORT
	onUDPScheme    = "udp://"   // udp://127.0.0.1:PORT
	onUnix         = "unix"     // an absolute socket path
	onUnixRelative = "relative" // ./echo.sock in a new working directory
	onAbstract     = "abstract" // @anylisten-test-RANDOM
)

// serveOn starts udp-echo with the arguments args gives for a new address
// of the kind on and waits until it says it listens. A UDP port that
// another process took in the meantime is replaced by a new one.
func serveOn(t *testing.T, on string, args func(addr string) []string) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		var s server
		dir := ""
		switch on {
		case onUDP, onUDPScheme:
			s.listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreeUDPPort(t)))
			s.addr = s.listen
			if on == onUDPScheme {
				s.addr = "udp://" + s.listen
			}
			s.peer = "UDP:" + s.listen
		case onUnix:
			sockDir := testenv.SocketDir(t)
			s.addr = filepath.Join(sockDir, "echo.sock")
			s.path, s.listen = s.addr, s.addr
			s.peer = unixPeer(s.path, filepath.Join(sockDir, "client.sock"))
		case onUnixRelative:
			dir = testenv.SocketDir(t)
			s.addr, s.listen = "./echo.sock", "./echo.sock"
			s.path = filepath.Join(dir, "echo.sock")
			s.peer = unixPeer(s.path, filepath.Join(dir, "client.sock"))
		case onAbstract:
			if runtime.GOOS != "linux" {
				t.Skipf("abstract UNIX sockets exist on Linux only, not on %s", runtime.GOOS)
			}
			name := fmt.Sprintf("anylisten-test-%016x", rand.Uint64())
			s.addr, s.listen = "@"+name, "@"+name
			// ABSTRACT-SENDTO's bind= is an abstract name too.
			s.peer = "ABSTRACT-SENDTO:" + name + ",bind=" + name + "-client"
		default:
			t.Fatalf("unknown address kind %q", on)
		}
		s.Process = startEcho(t, dir, args(s.addr)...)
		err := s.WaitListening()
		if err == nil {
			return &s
		}
		if errors.Is(err, testenv.ErrAddrInUse) && attempt < 5 && (on == onUDP || on == onUDPScheme) {
			t.Logf("port of %s was taken meanwhile, trying another", s.addr)
			continue
		}
		t.Fatal(err)
	}
}

// unixPeer is the socat address of a client of the UNIX datagram socket
// at path that udp-echo bound itself, bound to client so that it gets
// the echo. socat's UNIX-SENDTO takes a datagram only from the very
// address it sends to: anylisten binds the socket at its absolute path
// where no other user may write the directory (the tests' directories are
// such), so its echo comes from there.
func unixPeer(path, client string) string {
	return "UNIX-SENDTO:" + path + ",bind=" + client
}

// socatEcho runs the real socat between pipes and peer (a socat address),
// sends each of msgs as one datagram, one at a time, and fails the test
// unless each comes back unchanged, and nothing else does.
func socatEcho(t *testing.T, peer string, msgs ...string) {
	t.Helper()
	tool := testenv.NeedTool(t, "socat")
	// -t: after the end of its input, socat exits once no datagram came
	// for this long.
	cmd := exec.Command(tool, "-t", "0.2", "-", peer)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	out := stdout.(*os.File) // a pipe, which has deadlines
	out.SetReadDeadline(time.Now().Add(timeout))
	for _, m := range msgs {
		// One write, one read of socat's: one datagram.
		if _, err := io.WriteString(stdin, m); err != nil {
			t.Fatalf("socat %s: %v", peer, err)
		}
		got := make([]byte, len(m))
		if n, err := io.ReadFull(out, got); err != nil {
			t.Fatalf("socat %s: sent %q, got %q back: %v; socat's stderr:\n%s", peer, m, got[:n], err, stderr.String())
		}
		if string(got) != m {
			t.Fatalf("socat %s: sent %q, got %q back", peer, m, got)
		}
	}
	stdin.Close()
	if rest, err := io.ReadAll(out); len(rest) > 0 || err != nil {
		t.Errorf("socat %s: after the echoes, %q more, %v; socat's stderr:\n%s", peer, rest, err, stderr.String())
	}
}

// answeredBy is the line udp-echo logs when it exits.
func answeredBy(pid, n int) string {
	return fmt.Sprintf("udp-echo: datagrams answered by pid %d: %d\n", pid, n)
}

// messages are the datagrams the tests send: text, and every byte value.
var messages = func() []string {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return []string{"hello\n", string(all), "no newline"}
}()

// TestEcho serves over UDP, a UNIX path and an abstract name, with options
// before and after the address, echoes datagrams to socat, and stops on
// SIGTERM with status 0, having counted them.
func TestEcho(t *testing.T) {
	tests := []struct {
		name string
		on   string
		args func(addr string) []string
	}{
		{"udp", onUDP, func(addr string) []string { return []string{addr} }},
		{"udp scheme", onUDPScheme, func(addr string) []string { return []string{addr} }},
		{"udp options before", onUDP, func(addr string) []string {
			return []string{"--tcp-reuse-port", "--recv-buffer-size", "65536", addr}
		}},
		{"udp options after", onUDP, func(addr string) []string {
			return []string{addr, "-send-buffer-size=65536", "--restart-timeout", "5s"}
		}},
		{"unix path", onUnix, func(addr string) []string { return []string{addr} }},
		{"unix path, option after", onUnix, func(addr string) []string { return []string{addr, "--unix-listen-chmod", "owner"} }},
		{"relative unix path", onUnixRelative, func(addr string) []string { return []string{"--", addr} }},
		{"abstract", onAbstract, func(addr string) []string { return []string{addr} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testenv.NeedTool(t, "socat")
			s := serveOn(t, tt.on, tt.args)
			if want := "udp-echo: listening on " + s.listen + "\n"; !strings.Contains(s.Stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, s.Stderr.String())
			}
			socatEcho(t, s.peer, messages...)
			if s.path != "" {
				if _, err := os.Lstat(s.path); err != nil {
					t.Errorf("socket file: %v", err)
				}
			}
			if code := s.Stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("udp-echo exited with %d after SIGTERM, want 0; stderr:\n%s", code, s.Stderr.String())
			}
			if want := answeredBy(s.Cmd.Process.Pid, len(messages)); !strings.Contains(s.Stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, s.Stderr.String())
			}
			if s.path != "" {
				if _, err := os.Lstat(s.path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("socket file %s is still there after SIGTERM (Lstat: %v)", s.path, err)
				}
			}
		})
	}
}

// TestSignal checks that SIGTERM and SIGINT make udp-echo exit with
// status 0 and remove its socket file.
func TestSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := serveOn(t, onUnix, func(addr string) []string { return []string{addr} })
			if code := s.Stop(t, sig); code != 0 {
				t.Errorf("udp-echo exited with %d after %v, want 0; stderr:\n%s", code, sig, s.Stderr.String())
			}
			if _, err := os.Lstat(s.path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket file %s is still there after %v (Lstat: %v)", s.path, sig, err)
			}
			if want := answeredBy(s.Cmd.Process.Pid, 0); !strings.Contains(s.Stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, s.Stderr.String())
			}
		})
	}
}

// exchange sends msg on c and fails the test unless exactly msg comes
// back.
func exchange(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("sending %d bytes: %v", len(msg), err)
	}
	buf := make([]byte, len(msg)+1)
	n, err := c.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("sent %d bytes, got %d back (equal: %v): %v", len(msg), n, bytes.Equal(buf[:n], msg), err)
	}
}

// TestDatagramSizes sends the longest datagrams udp-echo answers, and
// one longer, which it must not send back cut.
func TestDatagramSizes(t *testing.T) {
	t.Run("udp", func(t *testing.T) {
		t.Parallel()
		s := serveOn(t, onUDP, func(addr string) []string { return []string{addr} })
		c, err := net.Dial("udp", s.listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		exchange(t, c, bytes.Repeat([]byte("u"), 65507)) // the longest over IPv4
	})
	t.Run("unix", func(t *testing.T) {
		t.Parallel()
		s := serveOn(t, onUnix, func(addr string) []string { return []string{addr} })
		client := filepath.Join(filepath.Dir(s.path), "client.sock")
		c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: client, Net: "unixgram"}, &net.UnixAddr{Name: s.path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		exchange(t, c, bytes.Repeat([]byte("x"), maxDatagram))
		if _, err := c.Write(make([]byte, maxDatagram+1)); err != nil {
			t.Fatal(err)
		}
		waitLog(t, s.Process, fmt.Sprintf("udp-echo: not answering a datagram from %s: longer than %d bytes\n", client, maxDatagram))
		exchange(t, c, []byte("after the long one")) // and nothing of the long one
	})
}

// TestUnboundSender: a datagram from a UNIX socket bound to no address
// cannot be answered; udp-echo says so and serves on.
func TestUnboundSender(t *testing.T) {
	s := serveOn(t, onUnix, func(addr string) []string { return []string{addr} })
	unbound, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer unbound.Close()
	if _, err := unbound.Write([]byte("who am I")); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s.Process, "udp-echo: cannot answer a datagram of 8 bytes from an unbound UNIX socket: the sender must bind an address (socat: bind=)\n")
	socatEcho(t, s.peer, "still serving")
}

// TestHelp checks that -h names the usage, every datagram address form
// and the options.
func TestHelp(t *testing.T) {
	flags := []string{
		"restart-timeout", "unix-listen-unlink", "unix-listen-chmod", "unix-listen-uid", "unix-listen-gid",
		"sd-accept-ignore-environment", "no-adopt", "tcp-reuse-port", "recv-buffer-size", "send-buffer-size", "tcp-only-v6",
	}
	forms := []string{
		"127.0.0.1:53", "[::]:53", ":53", "udp://HOST:PORT", "/run/app.sock", "./app.sock", "unixgram:PATH",
		"@name", "unixgram:@name", "sd-listen", "ListenDatagram=", "sd-listen:NAME", "fd://N", "bind=",
	}
	for _, arg := range []string{"-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runEcho(t, arg)
			if code != 0 {
				t.Errorf("udp-echo %s exited with %d, want 0", arg, code)
			}
			if stdout != "" {
				t.Errorf("udp-echo %s wrote to stdout: %q", arg, stdout)
			}
			if want := "Usage: udp-echo [OPTIONS] [LISTEN_ADDRESS]\n"; !strings.Contains(stderr, want) {
				t.Errorf("help lacks the usage line %q:\n%s", want, stderr)
			}
			if want := "(default " + defaultAddress + ")"; !strings.Contains(stderr, want) {
				t.Errorf("help does not say %q:\n%s", want, stderr)
			}
			for _, f := range flags {
				if !strings.Contains(stderr, "\n  -"+f+" ") && !strings.Contains(stderr, "\n  -"+f+"\n") {
					t.Errorf("help does not list the option -%s:\n%s", f, stderr)
				}
			}
			for _, f := range forms {
				if !strings.Contains(stderr, f) {
					t.Errorf("help does not name %s:\n%s", f, stderr)
				}
			}
		})
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
		{"bare file name", []string{"echo.sock"}, parseErr("echo.sock")},
		{"port out of range", []string{"127.0.0.1:99999"}, parseErr("127.0.0.1:99999")},
		{"unknown scheme", []string{"dns://127.0.0.1:53"}, parseErr("dns://127.0.0.1:53")},
		{"unknown option", []string{"127.0.0.1:8080", "--no-such-option"}, "flag provided but not defined: -no-such-option"},
		{"bad option value", []string{"--unix-listen-chmod", "everyone", "./x.sock"}, `invalid UNIX socket mode "everyone"`},
		{"two addresses", []string{"127.0.0.1:8080", "127.0.0.1:8081"}, `too many arguments: ["127.0.0.1:8081"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runEcho(t, tt.args...)
			if code != 2 {
				t.Errorf("udp-echo %q exited with %d, want 2", tt.args, code)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("udp-echo %q: stderr does not say %q:\n%s", tt.args, tt.want, stderr)
			}
			if stdout != "" {
				t.Errorf("udp-echo %q wrote to stdout: %q", tt.args, stdout)
			}
		})
	}
}

// TestListenErrors checks that a failure to listen exits with status 1
// and ListenPacket's error on stderr: a port in use, a file in the way,
// and the forms that have no datagram socket.
func TestListenErrors(t *testing.T) {
	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_, stderr, code := runEcho(t, c.LocalAddr().String())
		if want := "listen udp " + c.LocalAddr().String() + ": bind: address already in use"; code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("udp-echo on a port in use exited with %d, want 1 and %q in stderr:\n%s", code, want, stderr)
		}
	})
	t.Run("regular file at path", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(testenv.SocketDir(t), "file")
		if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := runEcho(t, "--unix-listen-unlink", path)
		if code != 1 || !strings.Contains(stderr, "a regular file is at this path") {
			t.Errorf("udp-echo on a regular file exited with %d, want 1 and an error naming the regular file; stderr:\n%s", code, stderr)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
			t.Errorf("the regular file was touched: %q, %v", b, err)
		}
	})
	for _, tt := range []struct{ addr, want string }{
		{"inetd", "serve it with Listen, not ListenPacket"},
		{"vsock:any:1234", "AF_VSOCK datagrams are not supported"},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runEcho(t, tt.addr)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("udp-echo %s exited with %d, want 1 and %q in stderr:\n%s", tt.addr, code, tt.want, stderr)
			}
		})
	}
}
