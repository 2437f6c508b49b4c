package anylisten

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/anylisten/anylisten/internal/testenv"
)

// copyChild is the child of TestSendfileAndSplice, mode "copy": over
// connections accepted from anylisten's TCP listener, it serves a file with
// io.Copy (which should be sendfile) and relays one connection to another
// (which should be splice), 8 MiB each.
func copyChild() int {
	const size = 8 << 20
	fail := func(err error) int { return childFatalf("%v", err) }
	f, err := os.CreateTemp("", "")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fail(err)
	}
	ln, err := Listen(context.Background(), MustParseAddress("127.0.0.1:0"), nil)
	if err != nil {
		return fail(err)
	}
	defer ln.Close()
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	defer sink.Close()
	drained := make(chan int64, 2)
	go func() { // the sink of the relay: count what arrives
		c, err := sink.Accept()
		if err != nil {
			drained <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		drained <- n
	}()
	go func() { // the client: fetch the file, then send 8 MiB for the relay
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			drained <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		drained <- n
		c, err = net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		io.Copy(c, io.LimitReader(zeros{}, size))
		c.Close()
	}()

	c, err := ln.Accept()
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(c, f); err != nil { // sendfile
		return fail(err)
	}
	c.Close()
	if n := <-drained; n != size {
		return fail(fmt.Errorf("client got %d bytes of the file", n))
	}

	in, err := ln.Accept()
	if err != nil {
		return fail(err)
	}
	out, err := net.Dial("tcp", sink.Addr().String())
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(out, in); err != nil { // splice
		return fail(err)
	}
	in.Close()
	out.Close()
	if n := <-drained; n != size {
		return fail(fmt.Errorf("sink got %d bytes of the relay", n))
	}
	return 0
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// TestSendfileAndSplice runs copyChild under strace and checks that the
// kernel did the copying: a connection from Listen keeps package net's
// sendfile and splice paths, which a wrapped connection would lose.
func TestSendfileAndSplice(t *testing.T) {
	// The connection Accept returns must be the kernel's own, with package
	// net's ReadFrom (sendfile, splice) and WriteTo (splice).
	c := roundTrip(t, listenT(t, "127.0.0.1:0", nil))
	if _, ok := c.(*net.TCPConn); !ok {
		t.Fatalf("Accept returned %T, want *net.TCPConn", c)
	}
	if _, ok := c.(io.ReaderFrom); !ok {
		t.Fatalf("%T has no ReadFrom", c)
	}
	if _, ok := c.(io.WriterTo); !ok {
		t.Fatalf("%T has no WriteTo", c)
	}
	strace := testenv.NeedTool(t, "strace")
	out := filepath.Join(t.TempDir(), "strace.txt")
	cmd := exec.Command(strace, "-f", "-c", "-o", out, "-e", "trace=sendfile,splice,read,write", os.Args[0])
	cmd.Env = append(os.Environ(), childModeEnv("copy")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, b)
	}
	summary, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("strace -c:\n%s", summary)
	for _, call := range []string{"sendfile", "splice"} {
		m := regexp.MustCompile(`(?m)^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?` + call + `$`).FindSubmatch(summary)
		if m == nil {
			t.Errorf("no %s calls: the copy did not use the kernel's path", call)
			continue
		}
		if n, _ := strconv.Atoi(string(m[1])); n == 0 {
			t.Errorf("%d %s calls", n, call)
		}
	}
}
