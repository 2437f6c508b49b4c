package testenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timeout bounds every wait of a Process: for it to get somewhere, to
// exit, and to die when the test ends.
const Timeout = 10 * time.Second

// Process is a program a test runs in the background, with its standard
// output and standard error collected while the test reads them.
type Process struct {
	Cmd            *exec.Cmd
	Stdout, Stderr Buffer
	exited         chan struct{} // closed once Wait has returned
	waitErr        error         // Wait's result, set before exited is closed
}

// StartProcess starts cmd with its standard output and standard error
// going to the Process's Stdout and Stderr. When the test ends, kill ends
// the process if it still runs (nil kill is (*os.Process).Kill; a caller
// that made cmd a process group's leader may kill the group), and the
// test fails if the process did not exit within Timeout of that or if it
// wrote anything to standard output: a server's standard output may be
// its connection, so the programs these tests run write nothing there.
func StartProcess(t testing.TB, cmd *exec.Cmd, kill func(*os.Process)) *Process {
	t.Helper()
	if kill == nil {
		kill = func(p *os.Process) { p.Kill() }
	}
	p := &Process{Cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout = &p.Stdout
	cmd.Stderr = &p.Stderr
	cmd.WaitDelay = Timeout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		kill(cmd.Process)
		select {
		case <-p.exited:
		case <-time.After(Timeout):
			t.Errorf("%s (pid %d) did not exit within %v of being killed", p, cmd.Process.Pid, Timeout)
			return
		}
		if out := p.Stdout.String(); out != "" {
			t.Errorf("%s wrote to standard output: %q", p, out)
		}
	})
	return p
}

// String names the program and its arguments, for messages.
func (p *Process) String() string {
	var args []string
	if len(p.Cmd.Args) > 0 {
		args = p.Cmd.Args[1:]
	}
	return fmt.Sprintf("%s %q", filepath.Base(p.Cmd.Path), args)
}

// Done is closed once the process has exited and its output is complete.
func (p *Process) Done() <-chan struct{} { return p.exited }

// HasExited reports whether the process has exited and its output is
// complete.
func (p *Process) HasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Err waits until the process has exited and returns what exec.Cmd.Wait
// returned.
func (p *Process) Err() error {
	<-p.exited
	return p.waitErr
}

// WaitFor polls the process's standard error until cond holds. It fails
// if the process exits first (without cond holding on its complete
// output) or Timeout passes; what says what was awaited.
func (p *Process) WaitFor(what string, cond func(stderr string) bool) error {
	deadline := time.Now().Add(Timeout)
	for {
		if cond(p.Stderr.String()) {
			return nil
		}
		if p.HasExited() {
			if cond(p.Stderr.String()) { // Wait has returned: the output is complete.
				return nil
			}
			return fmt.Errorf("%s exited (%v) before %s; stderr:\n%s", filepath.Base(p.Cmd.Path), p.waitErr, what, p.Stderr.String())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not get to %s within %v; stderr:\n%s", filepath.Base(p.Cmd.Path), what, Timeout, p.Stderr.String())
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ErrAddrInUse is WaitListening's error for a process that exited because
// its address was taken.
var ErrAddrInUse = errors.New("address already in use")

// WaitListening waits until the process logs "listening on " on standard
// error, as the example programs do once they listen. It returns
// ErrAddrInUse if the process exited first because its address was taken,
// and another error if it exited for another reason or did not get there
// within Timeout.
func (p *Process) WaitListening() error {
	err := p.WaitFor("listening", func(stderr string) bool { return strings.Contains(stderr, "listening on ") })
	if err != nil && addrInUse(p) {
		return ErrAddrInUse
	}
	return err
}

// addrInUse reports whether the process exited because its address was
// taken, as its standard error says.
func addrInUse(p *Process) bool {
	return p.HasExited() && strings.Contains(p.Stderr.String(), syscall.EADDRINUSE.Error())
}

// StartListening starts a program on a free TCP port and waits until it
// listens (see WaitListening): start starts it for a port FreePort gave.
// A port that another process took in the meantime is replaced by a new
// one, up to three times. It returns the process and its port.
func StartListening(t testing.TB, start func(port int) *Process) (*Process, int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := FreePort(t)
		p := start(port)
		err := p.WaitListening()
		if err == nil {
			return p, port
		}
		if !errors.Is(err, ErrAddrInUse) {
			t.Fatal(err)
		}
		if attempt == 3 {
			t.Fatalf("port %d: %v, three times; stderr:\n%s", port, err, p.Stderr.String())
		}
	}
}

// WaitExit waits until the process exits and returns its exit code. The
// test fails if it does not exit within Timeout.
func (p *Process) WaitExit(t testing.TB) int {
	t.Helper()
	return p.waitExit(t, "")
}

// Stop sends sig to the process, waits until it exits and returns its
// exit code. The test fails if it does not exit within Timeout.
func (p *Process) Stop(t testing.TB, sig os.Signal) int {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return p.waitExit(t, fmt.Sprintf(" of %v", sig))
}

// waitExit is WaitExit; after, if not "", says what the timeout counts
// from.
func (p *Process) waitExit(t testing.TB, after string) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(Timeout):
		t.Fatalf("%s did not exit within %v%s; stderr:\n%s", p, Timeout, after, p.Stderr.String())
	}
	return p.Cmd.ProcessState.ExitCode()
}

// StartPiped starts cmd with a pipe to its standard input and one from
// its standard output, which it returns, and its standard error collected
// in the Buffer it returns. The test fails at once if cmd cannot be
// started. Ending cmd and waiting for it are the caller's.
func StartPiped(t testing.TB, cmd *exec.Cmd) (stdin io.WriteCloser, stdout io.ReadCloser, stderr *Buffer) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err = cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr = new(Buffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdin, stdout, stderr
}
