package anylisten

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"golang.org/x/sys/unix"
)

// matchLine fails t unless the child's line matches the regular
// expression want.
func matchLine(t testing.TB, line, want string) {
	t.Helper()
	if !regexp.MustCompile(want).MatchString(line) {
		t.Errorf("child answered %q, want a match for %q", line, want)
	}
}

func TestSystemdSingle(t *testing.T) {
	checkNoFDLeak(t)
	p := freePort(t)
	c := activate(t, 1, []string{"-l", "127.0.0.1:" + p}, "sd-listen", "", 2)
	for range 2 {
		matchLine(t, ask(t, "tcp", "127.0.0.1:"+p), `^\*net\.TCPConn \*net\.TCPListener 127\.0\.0\.1:`+p+` 127\.0\.0\.1:\d+ LISTEN_FDS= KEEPIDLE=15\n$`) // Go's default keep-alive
	}
	if code := c.wait(t); code != 0 {
		t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
	}
}

func TestSystemdOptionsOnInheritedTCP(t *testing.T) {
	p := freePort(t)
	activate(t, 1, []string{"-l", "127.0.0.1:" + p}, "fd://3", `{"tcp_keepalive":"60000:3:5000"}`, 1)
	// The keep-alive option wraps the inherited listener; connections stay
	// *net.TCPConn.
	matchLine(t, ask(t, "tcp", "127.0.0.1:"+p), `^\*net\.TCPConn \*anylisten\.keepaliveListener 127\.0\.0\.1:`+p+` .* KEEPIDLE=60\n$`)
}

func TestSystemdNamed(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	c := activate(t, 2, []string{"-l", "127.0.0.1:" + p1, "-l", "127.0.0.1:" + p2, "--fdname=foo:bar"}, "sd-listen:bar", "", 1)
	matchLine(t, ask(t, "tcp", "127.0.0.1:"+p2), `^\*net\.TCPConn \*net\.TCPListener 127\.0\.0\.1:`+p2+` `)
	if code := c.wait(t); code != 0 {
		t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
	}
}

func TestSystemdSeveralNamed(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	c := activate(t, 2, []string{"-l", "127.0.0.1:" + p1, "-l", "127.0.0.1:" + p2, "--fdname=http:https"}, "sd-listen:https,sd-listen:http", "", 2)
	matchLine(t, ask(t, "tcp", "127.0.0.1:"+p1), ` 127\.0\.0\.1:`+p1+` `)
	matchLine(t, ask(t, "tcp", "127.0.0.1:"+p2), ` 127\.0\.0\.1:`+p2+` `)
	if code := c.wait(t); code != 0 {
		t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
	}
}

func TestSystemdAll(t *testing.T) {
	for _, addr := range []string{"sd-listen:*", "fd://", "fd://*"} {
		t.Run(addr, func(t *testing.T) {
			p1, p2 := freePort(t), freePort(t)
			c := activate(t, 2, []string{"-l", "127.0.0.1:" + p1, "-l", "127.0.0.1:" + p2}, addr, "", 4)
			for _, p := range []string{p1, p2, p2, p1} {
				matchLine(t, ask(t, "tcp", "127.0.0.1:"+p), `^\*net\.TCPConn \*anylisten\.multiListener 127\.0\.0\.1:`+p+` `)
			}
			if code := c.wait(t); code != 0 {
				t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
			}
		})
	}
}

func TestSystemdSameNameMerged(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	activate(t, 2, []string{"-l", "127.0.0.1:" + p1, "-l", "127.0.0.1:" + p2, "--fdname=web"}, "sd-listen:web", "", 2)
	matchLine(t, ask(t, "tcp", "127.0.0.1:"+p2), `\*anylisten\.multiListener 127\.0\.0\.1:`+p2+` `)
	matchLine(t, ask(t, "tcp", "127.0.0.1:"+p1), `\*anylisten\.multiListener 127\.0\.0\.1:`+p1+` `)
}

func TestSystemdUnixPath(t *testing.T) {
	path := filepath.Join(testenv.SocketDir(t), "sd.sock")
	c := activate(t, 1, []string{"-l", path}, "sd-listen", "", 1)
	matchLine(t, ask(t, "unix", path), `^\*net\.UnixConn \*anylisten\.UnixListener `+regexp.QuoteMeta(path)+` `)
	if code := c.wait(t); code != 0 {
		t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the inherited socket file was removed: %v", err)
	}
}

func TestSystemdAbstract(t *testing.T) {
	name := "@anylisten-sd-" + freePort(t)
	activate(t, 1, []string{"-l", name}, "sd-listen", "", 1)
	matchLine(t, ask(t, "unix", name), `^\*net\.UnixConn \*anylisten\.UnixListener `+name+` `)
}

func TestSystemdAcceptMode(t *testing.T) {
	p := freePort(t)
	c := activate(t, 1, []string{"-a", "-l", "127.0.0.1:" + p}, "sd-listen", "", 0)
	for range 2 { // one child process per connection
		matchLine(t, ask(t, "tcp", "127.0.0.1:"+p), `^\*anylisten\.tcpOneConn \*anylisten\.oneConnListener 127\.0\.0\.1:`+p+` 127\.0\.0\.1:\d+ `)
	}
	childrenExitedZero(t, c, 2)
}

// childrenExitedZero waits until systemd-socket-activate -a reported n
// children dead, and checks that each exited 0.
func childrenExitedZero(t testing.TB, c *child, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(c.stderr.String(), " died with code ") < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d children ended within 10 s; stderr:\n%s", n, c.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := strings.Count(c.stderr.String(), " died with code 0\n"); got != n {
		t.Errorf("%d of %d children exited 0; stderr:\n%s", got, n, c.stderr)
	}
}

func TestInetdSystemd(t *testing.T) {
	t.Run("nowait", func(t *testing.T) {
		p := freePort(t)
		c := activate(t, 1, []string{"--inetd", "-a", "-l", "127.0.0.1:" + p}, "inetd", "", 0)
		for range 2 {
			matchLine(t, ask(t, "tcp", "127.0.0.1:"+p), `^\*anylisten\.tcpOneConn \*anylisten\.oneConnListener 127\.0\.0\.1:`+p+` 127\.0\.0\.1:\d+ `)
		}
		childrenExitedZero(t, c, 2)
	})
	t.Run("wait", func(t *testing.T) {
		p := freePort(t)
		c := activate(t, 1, []string{"--inetd", "-l", "127.0.0.1:" + p}, "inetd", "", 3)
		for range 3 {
			matchLine(t, ask(t, "tcp", "127.0.0.1:"+p), `^\*net\.TCPConn \*net\.TCPListener 127\.0\.0\.1:`+p+` `)
		}
		if code := c.wait(t); code != 0 {
			t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
		}
	})
}

func TestSystemdDatagram(t *testing.T) {
	p := freePort(t)
	c := activate(t, 1, []string{"-d", "-l", "127.0.0.1:" + p}, "sd-listen", "", 1)
	u, err := net.Dial("udp", "127.0.0.1:"+p)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Write([]byte("wake up")) // systemd-socket-activate starts the child on the first datagram
	if code := c.wait(t); code != 3 {
		t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
	}
	for _, want := range []string{"listen systemd sd-listen: fd 3 (unknown): only datagram sockets were passed; serve them with ListenPacket (a net.PacketConn), not Listen"} {
		if !strings.Contains(c.stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, c.stderr)
		}
	}
}

func TestSystemdPlainWithTwo(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	c := activate(t, 2, []string{"-l", "127.0.0.1:" + p1, "-l", "127.0.0.1:" + p2, "--fdname=foo:bar"}, "sd-listen", "", 1)
	conn, err := net.Dial("tcp", "127.0.0.1:"+p1)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if code := c.wait(t); code != 3 {
		t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
	}
	for _, want := range []string{"2 sockets were passed: fd 3 (foo), fd 4 (bar)", "sd-listen:NAME", "sd-listen:*"} {
		if !strings.Contains(c.stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, c.stderr)
		}
	}
}

// handOver returns a command that runs the test binary as a child that
// inherits files as fds 3, 4, ... with LISTEN_FDS set for it, as a service
// manager would: a shell sets LISTEN_PID to its own pid and execs the
// child. env adds or overrides variables; if it sets LISTEN_PID (or
// names it alone, which leaves it unset), the child is run directly so
// that the value given stays.
func handOver(files []*os.File, env []string, addrs, opts string, conns int) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0"`, os.Args[0])
	cmd.Env = append(os.Environ(), "LISTEN_FDS="+strconv.Itoa(len(files)))
	cmd.Env = append(cmd.Env, childEnv(addrs, opts, conns)...)
	for _, kv := range env {
		if strings.HasPrefix(kv, "LISTEN_PID") {
			cmd = exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "LISTEN_FDS="+strconv.Itoa(len(files)))
			cmd.Env = append(cmd.Env, childEnv(addrs, opts, conns)...)
		}
		if strings.Contains(kv, "=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.ExtraFiles = files
	return cmd
}

// tcpFile returns a listening TCP socket's file and its port.
func tcpFile(t testing.TB) (*os.File, string) { return netFile(t, "tcp") }

// udpFile returns a bound UDP socket's file and its port.
func udpFile(t testing.TB) (*os.File, string) { return netFile(t, "udp") }

// netFile returns the file of a socket that package net made on
// 127.0.0.1:0 (network "tcp": listening, "udp": bound), and its port.
func netFile(t testing.TB, network string) (*os.File, string) {
	t.Helper()
	var c interface {
		File() (*os.File, error)
		Close() error
	}
	var addr net.Addr
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, addr = pc.(*net.UDPConn), pc.LocalAddr()
	} else {
		ln, err := net.Listen(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, addr = ln.(*net.TCPListener), ln.Addr()
	}
	defer c.Close()
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	_, port, _ := net.SplitHostPort(addr.String())
	return f, port
}

func TestSystemdEnvironmentErrors(t *testing.T) {
	f1, _ := tcpFile(t)
	f2, _ := tcpFile(t)
	for _, tt := range []struct {
		name  string
		files []*os.File
		env   []string
		addr  string
		opts  string
		want  []string
	}{
		{"pid mismatch", []*os.File{f1}, []string{"LISTEN_PID=1"}, "sd-listen", "",
			[]string{`LISTEN_PID="1" is not this process`, "--sd-accept-ignore-environment"}},
		{"empty pid", []*os.File{f1}, []string{"LISTEN_PID="}, "sd-listen", "",
			[]string{`LISTEN_PID="" is not this process`}},
		{"no pid", []*os.File{f1}, []string{"LISTEN_PID"}, "sd-listen", "",
			[]string{"LISTEN_FDS=1 is set but LISTEN_PID is not"}},
		{"fd 0", []*os.File{f1}, nil, "fd://0", `{"sd_accept_ignore_environment":true}`,
			[]string{"fd 0 is stdin, stdout or stderr, not a passed socket; for a socket on stdin use inetd"}},
		{"not listening", []*os.File{boundFile(t)}, nil, "sd-listen", "",
			[]string{"fd 3 (unknown): a stream TCP/IPv4 socket on 127.0.0.1:", "is neither listening nor connected"}},
		{"bad count", []*os.File{f1}, []string{"LISTEN_FDS=zero"}, "sd-listen", "",
			[]string{`LISTEN_FDS="zero" is not a number of sockets from 1 to 65536`}},
		{"names mismatch", []*os.File{f1, f2}, []string{"LISTEN_FDNAMES=a"}, "sd-listen:a", "",
			[]string{`LISTEN_FDNAMES="a" does not name exactly LISTEN_FDS=2 sockets`}},
		{"missing name", []*os.File{f1, f2}, []string{"LISTEN_FDNAMES=http:https"}, "sd-listen:admin", "",
			[]string{`no socket named "admin" was passed; the sockets passed are fd 3 (http), fd 4 (https)`}},
		{"fd out of range", []*os.File{f1}, nil, "fd://4", "",
			[]string{"fd 4 is not among the sockets passed (LISTEN_FDS=1: fds 3 to 3)"}},
		{"claimed twice", []*os.File{f1, f2}, []string{"LISTEN_FDNAMES=a:b"}, "sd-listen:a,fd://3", "",
			[]string{"fd 3 (a) was already taken by an earlier Listen of sd-listen:a"}},
		{"not a socket", []*os.File{os.Stdin}, nil, "sd-listen", "",
			[]string{"fd 3 (unknown): not a socket"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startChild(t, handOver(tt.files, tt.env, tt.addr, tt.opts, 1))
			if code := c.wait(t); code != 3 {
				t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(c.stderr.String(), want) {
					t.Errorf("stderr does not say %q:\n%s", want, c.stderr)
				}
			}
		})
	}
}

// boundFile returns a TCP socket that is bound but neither listening nor
// connected.
func boundFile(t testing.TB) *os.File {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "bound")
	t.Cleanup(func() { f.Close() })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSystemdIgnoreEnvironment(t *testing.T) {
	f, port := tcpFile(t)
	// LISTEN_PID names another process: only the option makes fd 3 usable.
	c := startChild(t, handOver([]*os.File{f}, []string{"LISTEN_PID=1"}, "sd-listen", `{"sd_accept_ignore_environment":true}`, 1))
	matchLine(t, ask(t, "tcp", "127.0.0.1:"+port), `^\*net\.TCPConn \*net\.TCPListener 127\.0\.0\.1:`+port+` `)
	if code := c.wait(t); code != 0 {
		t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
	}
}

func TestSystemdDefaultNames(t *testing.T) {
	f1, _ := tcpFile(t)
	f2, p2 := tcpFile(t)
	// Without LISTEN_FDNAMES, go-systemd calls fd 4 LISTEN_FD_4.
	c := startChild(t, handOver([]*os.File{f1, f2}, nil, "sd-listen:LISTEN_FD_4", "", 1))
	matchLine(t, ask(t, "tcp", "127.0.0.1:"+p2), ` 127\.0\.0\.1:`+p2+` `)
	if code := c.wait(t); code != 0 {
		t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
	}
}

func TestAdoptInherited(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		f, port := tcpFile(t)
		// The parent still holds the socket: binding anew would fail with
		// EADDRINUSE, so an answer proves the child adopted it.
		c := startChild(t, handOver([]*os.File{f}, nil, "127.0.0.1:"+port, "", 1))
		matchLine(t, ask(t, "tcp", "127.0.0.1:"+port), `^\*net\.TCPConn \*net\.TCPListener 127\.0\.0\.1:`+port+` `)
		if code := c.wait(t); code != 0 {
			t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
		}
	})
	t.Run("unix", func(t *testing.T) {
		dir := testenv.SocketDir(t)
		path := filepath.Join(dir, "adopt.sock")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		f, err := ln.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// Asked for by a relative path from another directory.
		cmd := handOver([]*os.File{f}, nil, "./"+filepath.Base(path), "", 1)
		cmd.Dir = dir
		c := startChild(t, cmd)
		matchLine(t, ask(t, "unix", path), `^\*net\.UnixConn \*anylisten\.UnixListener `+regexp.QuoteMeta(path)+` `)
		if code := c.wait(t); code != 0 {
			t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("the adopted socket file was removed: %v", err)
		}
	})
	t.Run("systemd-socket-activate", func(t *testing.T) {
		p := freePort(t)
		c := activate(t, 1, []string{"-l", "127.0.0.1:" + p}, "127.0.0.1:"+p, "", 1)
		matchLine(t, ask(t, "tcp", "127.0.0.1:"+p), `^\*net\.TCPConn \*net\.TCPListener 127\.0\.0\.1:`+p+` `)
		if code := c.wait(t); code != 0 {
			t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
		}
	})
	t.Run("systemd-socket-activate unix", func(t *testing.T) {
		path := filepath.Join(testenv.SocketDir(t), "tool.sock")
		c := activate(t, 1, []string{"-l", path}, "unix:"+path, `{"unix_listen_unlink":true}`, 1)
		matchLine(t, ask(t, "unix", path), `^\*net\.UnixConn \*anylisten\.UnixListener `+regexp.QuoteMeta(path)+` `)
		if code := c.wait(t); code != 0 {
			t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("the adopted socket file was removed: %v", err)
		}
	})
	t.Run("other port binds anew", func(t *testing.T) {
		f, _ := tcpFile(t)
		p := freePort(t)
		c := startChild(t, handOver([]*os.File{f}, nil, "127.0.0.1:"+p+",sd-listen", "", 2))
		waitListening(t, c, "127.0.0.1:"+p)
	})
}

func TestSystemdNothingPassed(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LISTEN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv("sd-listen:http", "", 1)...)
	c := startChild(t, cmd)
	if code := c.wait(t); code != 3 {
		t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
	}
	for _, want := range []string{"listen systemd sd-listen:http: LISTEN_FDS is not set: no sockets were passed", "systemd-socket-activate"} {
		if !strings.Contains(c.stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, c.stderr)
		}
	}
}

// The environment errors that the real systemd-socket-activate can be made
// to produce, and the option that overrides a wrong LISTEN_PID.
func TestSystemdErrorsUnderTool(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		addr string
		want string
	}{
		{"pid mismatch", []string{"-E", "LISTEN_PID=1"}, "sd-listen", `LISTEN_PID="1" is not this process`},
		{"missing name", []string{"--fdname=http"}, "sd-listen:admin", `no socket named "admin" was passed; the sockets passed are fd 3 (http)`},
		{"unnamed", nil, "sd-listen:http", `no socket named "http" was passed; the sockets passed are fd 3 (unknown)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := freePort(t)
			c := activate(t, 1, append([]string{"-l", "127.0.0.1:" + p}, tt.args...), tt.addr, "", 1)
			conn, err := net.Dial("tcp", "127.0.0.1:"+p) // starts the child
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if code := c.wait(t); code != 3 {
				t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
			}
			if !strings.Contains(c.stderr.String(), tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, c.stderr)
			}
		})
	}
	t.Run("ignore environment", func(t *testing.T) {
		p := freePort(t)
		c := activate(t, 1, []string{"-l", "127.0.0.1:" + p, "-E", "LISTEN_PID=1"}, "sd-listen", `{"sd_accept_ignore_environment":true}`, 1)
		matchLine(t, ask(t, "tcp", "127.0.0.1:"+p), `^\*net\.TCPConn \*net\.TCPListener 127\.0\.0\.1:`+p+` `)
		if code := c.wait(t); code != 0 {
			t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
		}
	})
}

// Inherited sockets that a Listen did not take are close-on-exec, so that
// programs this one starts do not inherit them (systemd-socket-activate
// passes them without the flag).
func TestSystemdUnclaimedCloseOnExec(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	c := activate(t, 2, []string{"-l", "127.0.0.1:" + p1, "-l", "127.0.0.1:" + p2, "--fdname=a:b", "-E", "ANYLISTEN_TEST_CLOEXEC=4"},
		"sd-listen:a", "", 1)
	ask(t, "tcp", "127.0.0.1:"+p1)
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "CLOEXEC 4=true") {
		t.Errorf("the unclaimed fd 4 is not close-on-exec; stderr:\n%s", c.stderr)
	}
}

// Errors read once, name the option as config key and flag, and point at
// the right fd; the zero Address gives a *net.OpError as Listen promises.
func TestListenErrorWording(t *testing.T) {
	if os.Getenv("LISTEN_FDS") != "" {
		t.Skip("this test process was passed sockets")
	}
	_, err := Listen(context.Background(), MustParseAddress("fd://7"), nil)
	want := "listen systemd fd://7: LISTEN_FDS is not set: no sockets were passed to this process " +
		"(start it from a systemd .socket unit or with systemd-socket-activate); " +
		"the sd_accept_ignore_environment option (--sd-accept-ignore-environment) takes fd 7 regardless"
	if err == nil || err.Error() != want {
		t.Errorf("Listen(fd://7):\n got %v\nwant %s", err, want)
	}
	var zero Address
	_, err = Listen(context.Background(), zero, nil)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "listen" {
		t.Errorf("Listen of the zero Address: %#v, want a *net.OpError", err)
	}
	_, err = Dial(context.Background(), zero)
	if !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("Dial of the zero Address: %#v, want a *net.OpError", err)
	}
}

// A passed fd that was not open when the program started, or that holds
// another file now (the program closed it, and the number went to a
// socket of its own), is never taken: a fresh-eyes review had ListenPacket
// adopt the program's own UDP socket from such a slot and close it under
// its owner, whose next datagram went into an unrelated TCP connection.
func TestReusedSlotNotTaken(t *testing.T) {
	ln := listenT(t, "127.0.0.1:0", &Options{NoAdopt: true})
	lfd, err := dupSocket(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	const slot = 200 // the program's own socket, at the number of a passed slot
	if err := unix.Dup3(lfd, slot, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Close(lfd)
	t.Cleanup(func() { unix.Close(slot) })
	saved := passedAtStart
	t.Cleanup(func() { passedAtStart = saved })
	e := &sdEnv{n: slot - listenFDsStart + 1}
	match, err := boundMatcher(context.Background(), MustParseAddress(ln.Addr().String()), false)
	if err != nil || match == nil {
		t.Fatalf("boundMatcher: %v", err)
	}
	find := func() (sdFD, bool) {
		inherited.mu.Lock()
		defer inherited.mu.Unlock()
		return findLocked(e, match)
	}
	var st unix.Stat_t
	if err := unix.Fstat(slot, &st); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		passed map[int]fileID
		taken  bool
		why    string
	}{
		{"closed at start", map[int]fileID{}, false, "not open when the program started"},
		{"another file now", map[int]fileID{slot: {uint64(st.Dev), uint64(st.Ino) + 1}}, false, "another file than the one passed"},
		{"the file passed", map[int]fileID{slot: {uint64(st.Dev), uint64(st.Ino)}}, true, ""},
	} {
		passedAtStart = tt.passed
		f, ok := find()
		if ok != tt.taken || ok && f.fd != slot {
			t.Errorf("%s: found %v, %v; want found %v", tt.name, f, ok, tt.taken)
		}
		if err := stillPassed(slot); (err == nil) != tt.taken || err != nil && !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: stillPassed = %v, want %q", tt.name, err, tt.why)
		}
	}
}

// A socket file passed in with wider rights than the options ask for is
// an error, not silently a wider access: porting rest-server found
// --unix-listen-chmod owner ignored on a socket systemd-socket-activate
// made (mode 0666), so uid 65534 was served. Rights as asked, or
// narrower, adopt as before.
func TestAdoptedSocketRights(t *testing.T) {
	for _, tt := range []struct {
		name, opts string
		code       int
		want       string
	}{
		{"wider", `{"unix_listen_chmod":"owner"}`, 3, "wider than the 0600 that the unix_listen_chmod option (--unix-listen-chmod) asks for"},
		{"other owner", `{"unix_listen_uid":4242}`, 3, "belongs to uid 0, not the 4242 that the unix_listen_uid option (--unix-listen-uid) asks for"},
		{"as asked", `{"unix_listen_chmod":"0777"}`, 0, "LISTENER *anylisten.UnixListener "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(testenv.SocketDir(t), "passed.sock")
			c := activate(t, 1, []string{"-l", path}, path, tt.opts, 1)
			conn, err := net.Dial("unix", path) // starts the child
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if code := c.wait(t); code != tt.code {
				t.Fatalf("child exited %d, want %d; stderr:\n%s", code, tt.code, c.stderr)
			}
			if !strings.Contains(c.stderr.String(), tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, c.stderr)
			}
		})
	}
}
