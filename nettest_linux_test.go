package anylisten

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

// TestNettestConn runs golang.org/x/net/nettest.TestConn, which checks
// that a net.Conn behaves as one (data, ping-pong, deadlines past,
// present and future, Close unblocking Read and Write, concurrent
// methods), on the connections every backend hands out. c1 is always the
// connection the listener returned, the one under test; c2 its peer.
func TestNettestConn(t *testing.T) {
	checkNoFDLeak(t)
	var seq atomic.Int64
	unixPath := func(dir string) string {
		return "unix:" + filepath.Join(dir, fmt.Sprintf("n%d.sock", seq.Add(1)))
	}
	abstract := func() string { return fmt.Sprintf("@anylisten-nettest-%d-%d", os.Getpid(), seq.Add(1)) }

	t.Run("tcp", func(t *testing.T) {
		nettest.TestConn(t, nettestListen(t, "*net.TCPConn", 0, func() []string { return []string{"127.0.0.1:0"} }))
	})
	t.Run("tcp6", func(t *testing.T) {
		if !nettest.SupportsIPv6() {
			t.Skip("no IPv6 loopback on this machine")
		}
		nettest.TestConn(t, nettestListen(t, "*net.TCPConn", 0, func() []string { return []string{"[::1]:0"} }))
	})
	t.Run("unix", func(t *testing.T) {
		dir := testenv.SocketDir(t)
		nettest.TestConn(t, nettestListen(t, "*net.UnixConn", 0, func() []string { return []string{unixPath(dir)} }))
	})
	t.Run("abstract", func(t *testing.T) {
		nettest.TestConn(t, nettestListen(t, "*net.UnixConn", 0, func() []string { return []string{abstract()} }))
	})
	// ListenAll of all three; each run dials one of them through the merge.
	for i, member := range []struct{ name, typ string }{
		{"tcp", "*net.TCPConn"}, {"unix", "*net.UnixConn"}, {"abstract", "*net.UnixConn"},
	} {
		t.Run("listenall-"+member.name, func(t *testing.T) {
			dir := testenv.SocketDir(t)
			nettest.TestConn(t, nettestListen(t, member.typ, i, func() []string {
				return []string{"127.0.0.1:0", unixPath(dir), abstract()}
			}))
		})
	}
	t.Run("inetd-tcp", func(t *testing.T) {
		nettest.TestConn(t, nettestInetdTCP)
	})
	t.Run("inetd-socketpair", func(t *testing.T) {
		nettest.TestConn(t, nettestInetdSocketpair)
	})
	// Pipes allow every one of nettest's checks: the halves are made
	// non-blocking, so Go's poller serves them and deadlines work on each
	// direction alone; Close closes both pipes, so the peer reads EOF and
	// pending Reads and Writes end. What pipes lack (addresses, and
	// CloseWrite being a real half-close of one socket) nettest does not
	// check.
	t.Run("inetd-pipes", func(t *testing.T) {
		nettest.TestConn(t, nettestInetdPipes)
	})
}

// nettestListen returns a nettest.MakePipe that listens on the addresses
// addrs returns (with Listen for one, ListenAll for several), dials the
// nth of them, and checks that the connection accepted is of type typ.
func nettestListen(t *testing.T, typ string, nth int, addrs func() []string) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		var as []Address
		for _, s := range addrs() {
			as = append(as, MustParseAddress(s))
		}
		ln, err := ListenAll(context.Background(), as, nil)
		if err != nil {
			return nil, nil, nil, err
		}
		a := ln.Addr()
		if m, ok := a.(MultiAddr); ok {
			a = m[nth]
		}
		c1, c2, err = nettestAccept(ln, a)
		if err != nil {
			ln.Close()
			return nil, nil, nil, err
		}
		if got := fmt.Sprintf("%T", c1); got != typ {
			t.Errorf("Accept returned %s, want %s", got, typ)
		}
		return c1, c2, func() { c1.Close(); c2.Close(); ln.Close() }, nil
	}
}

// nettestAccept dials a and returns the connection ln accepts and the
// dialed one.
func nettestAccept(ln net.Listener, a net.Addr) (accepted, dialed net.Conn, err error) {
	res := make(chan acceptResult, 1)
	go func() { c, err := ln.Accept(); res <- acceptResult{c, err} }()
	dialed, err = net.DialTimeout(a.Network(), a.String(), 5*time.Second)
	if err != nil {
		ln.Close()
		if r := <-res; r.c != nil {
			r.c.Close()
		}
		return nil, nil, err
	}
	select {
	case r := <-res:
		if r.err != nil {
			dialed.Close()
			return nil, nil, r.err
		}
		return r.c, dialed, nil
	case <-time.After(10 * time.Second):
		ln.Close()
		if r := <-res; r.c != nil {
			r.c.Close()
		}
		dialed.Close()
		return nil, nil, errors.New("Accept did not return within 10 s")
	}
}

// nettestInherit makes the listener Listen("inetd") makes of a connected
// socket on stdin: inspectFD and fdListener, then Accept; like inetd's
// stdin, fd itself is closed after.
func nettestInherit(fd int, typ string) (net.Conn, error) {
	defer unix.Close(fd)
	info, err := inspectFD(fd)
	if err == nil {
		err = info.checkStream()
	}
	if err != nil {
		return nil, err
	}
	ln, err := fdListener(info, &Options{})
	if err != nil {
		return nil, err
	}
	if _, ok := ln.(*oneConnListener); !ok {
		ln.Close()
		return nil, fmt.Errorf("a connected socket gave %T, want *anylisten.oneConnListener", ln)
	}
	c, err := ln.Accept()
	if err != nil {
		ln.Close()
		return nil, err
	}
	if got := fmt.Sprintf("%T", c); got != typ {
		c.Close()
		ln.Close()
		return nil, fmt.Errorf("Accept returned %s, want %s", got, typ)
	}
	// The one connection is the caller's now; the listener only waits
	// for it to be closed, and closing it does not touch the connection.
	ln.Close()
	return c, nil
}

// nettestInetdTCP: inetd (nowait) passes the TCP connection it accepted.
func nettestInetdTCP() (c1, c2 net.Conn, stop func(), err error) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	defer raw.Close()
	server, c2, err := nettestAccept(raw, raw.Addr())
	if err != nil {
		return nil, nil, nil, err
	}
	// What inetd's child finds on stdin: the socket, blocking.
	fd := -1
	rc, err := server.(*net.TCPConn).SyscallConn()
	if err == nil {
		err = rawControl(rc, func(s uintptr) (err error) {
			fd, err = dupCloexec(int(s))
			return err
		})
	}
	server.Close()
	if err == nil {
		if err = unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
		}
	}
	if err == nil {
		c1, err = nettestInherit(fd, "*anylisten.tcpOneConn")
	}
	if err != nil {
		c2.Close()
		return nil, nil, nil, err
	}
	return c1, c2, func() { c1.Close(); c2.Close() }, nil
}

// nettestInetdSocketpair: socat's EXEC (without pipes) passes one end of
// a socketpair as stdin and stdout.
func nettestInetdSocketpair() (c1, c2 net.Conn, stop func(), err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, nil, os.NewSyscallError("socketpair", err)
	}
	f := os.NewFile(uintptr(fds[1]), "socat")
	c2, err = net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[0])
		return nil, nil, nil, err
	}
	if c1, err = nettestInherit(fds[0], "*anylisten.unixOneConn"); err != nil {
		c2.Close()
		return nil, nil, nil, err
	}
	return c1, c2, func() { c1.Close(); c2.Close() }, nil
}

// nettestStdio makes a stdioConn of the blocking pipe ends r and w as
// listenInetd does with stdin and stdout (stdioFile), and closes r and w
// (listenInetd points stdin and stdout at /dev/null).
func nettestStdio(r, w int, names string) (*stdioConn, error) {
	defer unix.Close(r)
	defer unix.Close(w)
	in, err := stdioFile(r, names+"in")
	if err != nil {
		return nil, err
	}
	out, err := stdioFile(w, names+"out")
	if err != nil {
		in.close()
		return nil, err
	}
	return &stdioConn{r: in, w: out}, nil
}

// nettestInetdPipes: inetd, or socat's EXEC with pipes, passes two pipes
// as stdin and stdout. c1 is the connection inetd's listener hands out;
// c2, the other ends, is made the same way.
func nettestInetdPipes() (c1, c2 net.Conn, stop func(), err error) {
	var in, out [2]int // blocking, as inetd passes them
	if err := unix.Pipe2(in[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, nil, os.NewSyscallError("pipe2", err)
	}
	if err := unix.Pipe2(out[:], unix.O_CLOEXEC); err != nil {
		unix.Close(in[0])
		unix.Close(in[1])
		return nil, nil, nil, os.NewSyscallError("pipe2", err)
	}
	server, err := nettestStdio(in[0], out[1], "std")
	if err != nil {
		unix.Close(in[1])
		unix.Close(out[0])
		return nil, nil, nil, err
	}
	peer, err := nettestStdio(out[0], in[1], "peer-")
	if err != nil {
		server.Close()
		return nil, nil, nil, err
	}
	ln := newOneConnListener(server)
	if c1, err = ln.Accept(); err != nil {
		ln.Close()
		peer.Close()
		return nil, nil, nil, err
	}
	ln.Close()
	return c1, peer, func() { c1.Close(); peer.Close() }, nil
}

// TestStdioConnHTTPTimeout serves HTTP over inetd's pipes with a header
// timeout, and a client that sends one request and then stalls in the
// middle of the next: the server must close the connection silently, as
// over a socket, where the timeout is a net.Error. (If the pipe's timeout
// is not a net.Error, net/http takes it for a malformed request and
// writes an unsolicited "400 Bad Request".)
func TestStdioConnHTTPTimeout(t *testing.T) {
	checkNoFDLeak(t)
	var in, out [2]int
	if err := unix.Pipe2(in[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := unix.Pipe2(out[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	c, err := nettestStdio(in[0], out[1], "std")
	if err != nil {
		t.Fatal(err)
	}
	client, err := nettestStdio(out[0], in[1], "client-")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv := &http.Server{
		ReadHeaderTimeout: 200 * time.Millisecond,
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(newOneConnListener(c)) }()
	defer func() {
		srv.Close()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return within 5 s of Close")
		}
	}()
	io.WriteString(client, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n")
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("reading the responses: %v; got so far:\n%s", err, got)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first response: %v, %v; got:\n%s", resp, err, got)
	}
	if rest := got[bytes.Index(got, []byte("ok\n"))+3:]; len(rest) > 0 {
		t.Errorf("after the header timeout the server wrote %q, want it to close silently", rest)
	}
}

// TestStdioConnCloseUnblocksRead: Close must end a Read that runs
// concurrently, as net.Conn promises, even when inetd passed blocking
// pipes, whose flag stdioConn sets back on Close. A reader calls Read
// over and over with deadlines a few microseconds ahead, so that it keeps
// entering read(2). If Close cleared O_NONBLOCK before closing the file,
// a read(2) that starts in between blocks in the kernel, which neither
// the deadline nor Close can interrupt, and Close waits for it: both hang
// until the peer writes. Bounded to 2000 rounds or 20 s.
func TestStdioConnCloseUnblocksRead(t *testing.T) {
	checkNoFDLeak(t)
	deadline := time.Now().Add(20 * time.Second)
	round := 0
	for ; round < 2000 && time.Now().Before(deadline); round++ {
		var in, out [2]int
		if err := unix.Pipe2(in[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		if err := unix.Pipe2(out[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		c, err := nettestStdio(in[0], out[1], "std")
		if err != nil {
			t.Fatal(err)
		}
		var reads atomic.Int64
		readerDone := make(chan error, 1)
		go func() {
			b := make([]byte, 1)
			for i := 0; ; i++ {
				c.SetReadDeadline(time.Now().Add(time.Duration(i%8) * time.Microsecond))
				_, err := c.Read(b)
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					readerDone <- err
					return
				}
				reads.Add(1)
			}
		}()
		for reads.Load() < int64(round%16)+1 { // vary where Close lands
			time.Sleep(time.Microsecond)
		}
		closed := make(chan error, 1)
		go func() { closed <- c.Close() }()
		hung := false
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("round %d: Close: %v", round, err)
			}
		case <-time.After(2 * time.Second):
			hung = true
			t.Errorf("round %d: Close hangs: the concurrent Read is stuck in read(2) on the pipe that Close made blocking", round)
			unix.Write(in[1], []byte("x")) // let the Read, then Close, return
			<-closed
		}
		select {
		case err := <-readerDone:
			if err == nil && !hung {
				t.Errorf("round %d: Read after Close succeeded", round)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Read still blocked 5 s after Close", round)
		}
		unix.Close(in[1])
		unix.Close(out[0])
		if t.Failed() {
			return
		}
	}
	t.Logf("%d rounds", round)
}
