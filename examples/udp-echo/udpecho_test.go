package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
func startEcho(t testing.TB, dir string, args ...string) *testenv.Process {
	t.Helper()
	cmd := exec.Command(echoPath, args...)
	cmd.Dir = dir
	return testenv.StartProcess(t, cmd, nil)
}

// startHere is startEcho in the test's directory, for testenv's checks.
func startHere(t testing.TB, args ...string) *testenv.Process { return startEcho(t, "", args...) }

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
	onUDP          = testenv.OnPort         // 127.0.0.1:PORT
	onUDPScheme    = "udp://"               // udp://127.0.0.1:PORT
	onUnix         = testenv.OnUnix         // an absolute socket path
	onUnixRelative = testenv.OnUnixRelative // ./echo.sock in a new working directory
	onAbstract     = testenv.OnAbstract     // @anylisten-test-RANDOM
)

// serveOn starts udp-echo with the arguments args gives for a new address
// of the kind on and waits until it says it listens. A UDP port that
// another process took in the meantime is replaced by a new one.
func serveOn(t testing.TB, on string, args func(addr string) []string) *server {
	t.Helper()
	kind := on
	if on == onUDPScheme {
		kind = onUDP
	}
	var s server
	testenv.ServeOn(t, kind, "udp", "echo.sock", func(a testenv.Address) (*testenv.Process, error) {
		s = server{addr: a.Addr, listen: a.Addr, path: a.Path}
		switch kind {
		case onUDP:
			if on == onUDPScheme {
				s.addr = "udp://" + a.Addr
			}
			s.peer = "UDP:" + a.Addr
		case onAbstract:
			// ABSTRACT-SENDTO's bind= is an abstract name too.
			name := strings.TrimPrefix(a.Addr, "@")
			s.peer = "ABSTRACT-SENDTO:" + name + ",bind=" + name + "-client"
		default:
			s.peer = unixPeer(a.Path, filepath.Join(filepath.Dir(a.Path), "client.sock"))
		}
		s.Process = startEcho(t, a.Dir, args(s.addr)...)
		return s.Process, s.WaitListening()
	})
	return &s
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
	stdin, stdout, stderr := testenv.StartPiped(t, cmd)
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
			s.CheckStop(t, syscall.SIGTERM, s.path)
			if want := answeredBy(s.Cmd.Process.Pid, len(messages)); !strings.Contains(s.Stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, s.Stderr.String())
			}
		})
	}
}

// TestSignal checks that SIGTERM and SIGINT make udp-echo exit with
// status 0 and remove its socket file.
func TestSignal(t *testing.T) {
	serve := func(t testing.TB) (*testenv.Process, string) {
		s := serveOn(t, onUnix, func(addr string) []string { return []string{addr} })
		return s.Process, s.path
	}
	testenv.CheckSignals(t, serve, func(t testing.TB, p *testenv.Process) {
		if want := answeredBy(p.Cmd.Process.Pid, 0); !strings.Contains(p.Stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, p.Stderr.String())
		}
	})
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
	// And the default address.
	forms = append(forms, "(default "+defaultAddress+")")
	testenv.CheckHelp(t, startHere, "Usage: udp-echo [OPTIONS] [LISTEN_ADDRESS]\n", flags, forms)
}

// TestUsageErrors checks that command-line mistakes exit with status 2
// and an error on stderr, and write nothing to stdout.
func TestUsageErrors(t *testing.T) {
	parseErr := func(s string) string { return testenv.ErrorText(t, anylisten.ParseAddress, s) }
	testenv.CheckUsageErrors(t, startHere, []testenv.UsageError{
		{Name: "bare file name", Args: []string{"echo.sock"}, Want: parseErr("echo.sock")},
		{Name: "port out of range", Args: []string{"127.0.0.1:99999"}, Want: parseErr("127.0.0.1:99999")},
		{Name: "unknown scheme", Args: []string{"dns://127.0.0.1:53"}, Want: parseErr("dns://127.0.0.1:53")},
		{Name: "unknown option", Args: []string{"127.0.0.1:8080", "--no-such-option"}, Want: "flag provided but not defined: -no-such-option"},
		{Name: "bad option value", Args: []string{"--unix-listen-chmod", "everyone", "./x.sock"}, Want: `invalid UNIX socket mode "everyone"`},
		{Name: "two addresses", Args: []string{"127.0.0.1:8080", "127.0.0.1:8081"}, Want: `too many arguments: ["127.0.0.1:8081"]`},
	})
}

// TestListenErrors checks that a failure to listen exits with status 1
// and ListenPacket's error on stderr: a port in use, a file in the way,
// and the forms that have no datagram socket.
func TestListenErrors(t *testing.T) {
	testenv.CheckListenErrors(t, startHere, "udp")
	for _, tt := range []struct{ addr, want string }{
		{"inetd", "serve it with Listen, not ListenPacket"},
		{"vsock:any:1234", "AF_VSOCK datagrams are not supported"},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			startHere(t, tt.addr).CheckExit(t, 1, tt.want)
		})
	}
}
