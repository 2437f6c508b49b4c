package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// timeout bounds every wait of these tests.
const timeout = 10 * time.Second

// binPath is the program TestMain builds.
var binPath string

// raceEnabled says that the tests run with -race (set in race_test.go),
// and so the program is built with it too.
var raceEnabled bool

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds the program into a temporary directory (with -race
// when the tests run with it), runs the tests and removes the directory.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pflag-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "pflag")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// go test puts the go command of its own GOROOT first in PATH.
	if out, err := exec.CommandContext(ctx, "go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go %s .: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	return m.Run()
}

// socketDir returns a new directory with a short path (like /tmp/123456),
// so that socket paths in it fit into sun_path (104 to 108 bytes), which
// t.TempDir, holding the test's name, may not. It is removed when the test
// ends.
func socketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return dir
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the test listens on it; see
// startListening.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// buffer collects a child's output while the test reads it.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a running instance of the program.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr buffer
	exited         chan struct{} // closed once Wait has returned
}

// start runs the program with args in dir. When the test ends, it is
// killed if it still runs, and the test fails if it wrote to standard
// output, which it never does.
func start(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binPath, args...), exited: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = timeout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if out := p.stdout.String(); out != "" {
			t.Errorf("pflag %q wrote to standard output: %q", args, out)
		}
	})
	return p
}

// errAddrInUse says that the program exited because its port was taken.
var errAddrInUse = errors.New("address already in use")

// waitListening waits until the program logs "listening on". It returns
// errAddrInUse if the program exited because its address was taken, and
// fails the test if it exited for another reason or did not get there in
// time.
func (p *proc) waitListening(t *testing.T) error {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.stderr.String(), "listening on ") {
		select {
		case <-p.exited:
			if strings.Contains(p.stderr.String(), syscall.EADDRINUSE.Error()) {
				return errAddrInUse
			}
			t.Fatalf("pflag exited with status %d before it listened; stderr:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pflag did not listen within %v; stderr:\n%s", timeout, p.stderr.String())
		}
	}
	return nil
}

// wait waits for the program to exit and returns its exit status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("pflag did not exit within %v; stderr:\n%s", timeout, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop sends sig and returns the exit status.
func (p *proc) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return p.wait(t)
}

// startListening starts the program in a new short directory with the
// arguments args(port) gives for a free TCP port, and waits until it
// listens; a port that another process took in the meantime is replaced by
// a new one. It returns the program, the directory and the port.
func startListening(t *testing.T, args func(port int) []string) (*proc, string, int) {
	t.Helper()
	dir := socketDir(t)
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		p := start(t, dir, args(port)...)
		err := p.waitListening(t)
		if err == nil {
			return p, dir, port
		}
		if attempt == 3 {
			t.Fatalf("port %d: %v, three times; stderr:\n%s", port, err, p.stderr.String())
		}
	}
}
