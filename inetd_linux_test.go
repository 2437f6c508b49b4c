package anylisten

import (
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"golang.org/x/sys/unix"
)

// socatInetd starts socat listening on a free port and running the test
// binary as an inetd child with the given EXEC options (socat's modes:
// "" for a socketpair, "pipes" for two pipes). The child's exit status is
// printed as EXIT=N on socat's stderr.
func socatInetd(t *testing.T, mode string) (*child, string) {
	t.Helper()
	tool := testenv.NeedTool(t, "socat")
	p := freePort(t)
	exe := `SYSTEM:"$ANYLISTEN_TEST_BIN"; echo EXIT=$? >&2`
	if mode != "" {
		exe += "," + mode
	}
	cmd := exec.Command(tool, "TCP-LISTEN:"+p+",bind=127.0.0.1,reuseaddr,fork", exe)
	cmd.Env = append(os.Environ(), childEnv("inetd", "", 0)...)
	cmd.Env = append(cmd.Env, "ANYLISTEN_TEST_BIN="+os.Args[0])
	c := startChild(t, cmd)
	waitListening(t, c, "127.0.0.1:"+p)
	return c, p
}

// waitListening polls until something accepts connections on address.
func waitListening(t testing.TB, c *child, address string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", address, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 10 s; stderr:\n%s", address, c.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInetdSocat(t *testing.T) {
	for _, tt := range []struct{ mode, want string }{
		{"", `^\*anylisten\.unixOneConn \*anylisten\.oneConnListener `},
		{"pipes", `^\*anylisten\.stdioConn \*anylisten\.oneConnListener stdio stdio `},
	} {
		t.Run("mode="+tt.mode, func(t *testing.T) {
			c, p := socatInetd(t, tt.mode)
			for range 2 {
				matchLine(t, ask(t, "tcp", "127.0.0.1:"+p), tt.want)
			}
			// The readiness probe and the two questions: three children.
			deadline := time.Now().Add(10 * time.Second)
			for strings.Count(c.stderr.String(), "EXIT=") < 3 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := strings.Count(c.stderr.String(), "EXIT=0"); got != 3 {
				t.Errorf("%d of 3 children exited 0; stderr:\n%s", got, c.stderr)
			}
		})
	}
	t.Run("mode=nofork", func(t *testing.T) {
		// socat execs the child in its own process with the accepted TCP
		// socket as stdin and stdout.
		tool := testenv.NeedTool(t, "socat")
		p := freePort(t)
		cmd := exec.Command(tool, "TCP-LISTEN:"+p+",bind=127.0.0.1,reuseaddr", "EXEC:"+os.Args[0]+",nofork")
		cmd.Env = append(os.Environ(), childEnv("inetd", "", 0)...)
		c := startChild(t, cmd)
		// socat serves this one connection only, so it is also the
		// readiness probe: retry while nothing listens yet.
		deadline := time.Now().Add(10 * time.Second)
		var conn net.Conn
		for {
			var err error
			if conn, err = net.DialTimeout("tcp", "127.0.0.1:"+p, time.Second); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("socat did not listen: %v; stderr:\n%s", err, c.stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := io.ReadAll(conn)
		if err != nil {
			t.Fatal(err)
		}
		matchLine(t, string(line), `^\*anylisten\.tcpOneConn \*anylisten\.oneConnListener 127\.0\.0\.1:`+p+` 127\.0\.0\.1:\d+ `)
		if code := c.wait(t); code != 0 {
			t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
		}
	})
}

// TestInetdSocketPairAndPipe gives the child one end of a socket pair on
// stdin and a pipe on stdout, as a shell whose pipes are socket pairs
// (ksh93) does: the connection reads stdin and writes stdout, and the
// reply comes out of the pipe, not back into the socket pair.
func TestInetdSocketPairAndPipe(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	in, peer := os.NewFile(uintptr(fds[0]), "socketpair"), os.NewFile(uintptr(fds[1]), "socketpair")
	defer peer.Close()
	r, w, err := os.Pipe()
	if err != nil {
		in.Close()
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv("inetd", "", 1)...)
	cmd.Stdin, cmd.Stdout = in, w
	c := startChild(t, cmd)
	in.Close()
	w.Close()
	r.SetDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
	matchLine(t, string(out), `^\*anylisten\.stdioConn \*anylisten\.oneConnListener stdio stdio `)
}

func TestInetdNoConnection(t *testing.T) {
	cmd := exec.Command(os.Args[0]) // stdin is /dev/null
	cmd.Env = append(os.Environ(), childEnv("inetd", "", 1)...)
	c := startChild(t, cmd)
	if code := c.wait(t); code != 3 {
		t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
	}
	want := "listen inetd: stdin is a terminal or a device such as /dev/null, not a connection"
	if !strings.Contains(c.stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, c.stderr)
	}
}
