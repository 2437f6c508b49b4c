package anylisten

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestInetdNotAConnection starts the inetd child with a stdin or a stdout
// that cannot carry a connection, as the runtime, a shell or a
// misconfigured service gives it, and checks that Listen names the file
// and what it is, and leaves fds 0-2 as they were (the child checks that).
func TestInetdNotAConnection(t *testing.T) {
	const devNull = "/dev/null (closed when the program started, or redirected there)"
	const right = ", not a connection: inetd mode serves the socket, or the two pipes, " +
		"that inetd, systemd (--inetd, StandardInput=socket) or socat passes on stdin and stdout"
	dir := t.TempDir()
	file := filepath.Join(dir, "request")
	if err := os.WriteFile(file, []byte("GET / HTTP/1.0\r\n\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opened := func(name string, flag int) func(*testing.T) *os.File {
		return func(t *testing.T) *os.File {
			f, err := os.OpenFile(name, flag, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}
	}
	pipe := func(t *testing.T) (r, w *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		return r, w
	}
	readEnd := func(t *testing.T) *os.File { r, _ := pipe(t); return r }
	writeEnd := func(t *testing.T) *os.File { _, w := pipe(t); return w }
	socketPair := func(t *testing.T) *os.File {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		a, b := os.NewFile(uintptr(fds[0]), "socketpair"), os.NewFile(uintptr(fds[1]), "socketpair")
		t.Cleanup(func() { a.Close(); b.Close() })
		return a
	}
	listeningSocket := func(t *testing.T) *os.File {
		ln := listenT(t, "127.0.0.1:0", nil)
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	udpSocket := func(t *testing.T) *os.File {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		f, err := c.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	const unusableSocket = "a socket that is not a connected stream socket (listening, datagram or unconnected)"
	for _, tt := range []struct {
		name string
		// redirect, if set, starts the child as /bin/sh -c 'exec "$0" REDIRECT'.
		redirect string
		// stdin and stdout give the child's files; nil means os/exec's
		// /dev/null.
		stdin, stdout func(*testing.T) *os.File
		want          string
	}{
		{name: "stdin closed", redirect: "<&-", stdout: writeEnd, want: "stdin is " + devNull},
		{name: "stdin /dev/null", stdout: writeEnd, want: "stdin is " + devNull},
		{name: "stdin and stdout /dev/null", want: "stdin is " + devNull},
		{name: "stdin a terminal", stdin: openPTY, stdout: writeEnd, want: `stdin is a terminal ("/dev/pts/N")`},
		{name: "stdin /dev/zero", stdin: opened("/dev/zero", os.O_RDONLY), stdout: writeEnd, want: `stdin is a character device ("/dev/zero")`},
		{name: "stdin a regular file", stdin: opened(file, os.O_RDONLY), stdout: writeEnd, want: `stdin is a regular file ("` + file + `")`},
		{name: "stdin a directory", stdin: opened(dir, os.O_RDONLY), stdout: writeEnd, want: `stdin is a directory ("` + dir + `")`},
		{name: "stdin a pipe's write end", stdin: writeEnd, stdout: writeEnd, want: "stdin is a pipe open only for writing"},
		{name: "stdout closed, stdin a pipe", redirect: ">&-", stdin: readEnd, want: "stdout is " + devNull},
		{name: "stdout /dev/null, stdin a pipe", stdin: readEnd, want: "stdout is " + devNull},
		{name: "stdout /dev/null, stdin a socket pair", stdin: socketPair, want: "stdout is " + devNull},
		{name: "stdout a terminal, stdin a socket pair", stdin: socketPair, stdout: openPTY, want: `stdout is a terminal ("/dev/pts/N")`},
		{name: "stdout a regular file, stdin a pipe", stdin: readEnd, stdout: opened(file, os.O_WRONLY), want: `stdout is a regular file ("` + file + `")`},
		{name: "stdout a pipe's read end, stdin a pipe", stdin: readEnd, stdout: readEnd, want: "stdout is a pipe open only for reading"},
		{name: "stdout a listening socket, stdin a pipe", stdin: readEnd, stdout: listeningSocket, want: "stdout is " + unusableSocket},
		{name: "stdout an unconnected UDP socket, stdin a pipe", stdin: readEnd, stdout: udpSocket, want: "stdout is " + unusableSocket},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			if tt.redirect != "" {
				cmd = exec.Command("/bin/sh", "-c", `exec "$0" `+tt.redirect, os.Args[0])
			}
			cmd.Env = append(os.Environ(), childEnv("inetd", "", 1)...)
			want := tt.want
			give := func(newFile func(*testing.T) *os.File) *os.File {
				f := newFile(t)
				if strings.HasPrefix(f.Name(), "/dev/pts/") {
					want = strings.Replace(want, "/dev/pts/N", f.Name(), 1)
				}
				return f
			}
			if tt.stdin != nil {
				cmd.Stdin = give(tt.stdin)
			}
			if tt.stdout != nil {
				cmd.Stdout = give(tt.stdout)
			}
			c := startChild(t, cmd)
			code := c.wait(t)
			if want := "LISTEN ERROR: listen inetd: " + want + right + "\n"; c.stderr.String() != want || code != 3 {
				t.Errorf("child exited %d, stderr:\n%s\nwant exit 3, stderr:\n%s", code, c.stderr, want)
			}
		})
	}
}

// openPTY opens a new pseudo-terminal and returns its terminal side,
// named /dev/pts/N; it skips the test where there is none.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal (%v): mount devpts on /dev/pts to run this test", err)
	}
	t.Cleanup(func() { m.Close() })
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0)
	}
	if err != nil {
		t.Fatal(os.NewSyscallError("ioctl", err))
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
