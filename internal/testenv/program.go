package testenv

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Start starts the program a test is about with args, in the test's
// working directory, as a Process of t: what the checks below run. An
// example's tests adapt their own start function to it.
type Start func(t testing.TB, args ...string) *Process

// Result waits until the process exits and returns what it wrote and its
// exit code. The test fails at once if the process does not exit within
// Timeout, or if waiting for it fails otherwise than with an exit status.
func (p *Process) Result(t testing.TB) (stdout, stderr string, code int) {
	t.Helper()
	code = p.WaitExit(t)
	var exitErr *exec.ExitError
	if err := p.Err(); err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("%s: %v", p, err)
	}
	return p.Stdout.String(), p.Stderr.String(), code
}

// CheckExit waits until the process exits (see Result) and fails the test
// unless it exited with status code, said each of want on standard error,
// and wrote nothing to standard output. It returns what it wrote to
// standard error, for further checks.
func (p *Process) CheckExit(t testing.TB, code int, want ...string) string {
	t.Helper()
	stdout, stderr, got := p.Result(t)
	if got != code {
		t.Errorf("%s exited with %d, want %d; stderr:\n%s", p, got, code, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr does not say %q:\n%s", p, w, stderr)
		}
	}
	if stdout != "" {
		t.Errorf("%s wrote to stdout: %q", p, stdout)
	}
	return stderr
}

// UsageError is a command line with a mistake, which CheckUsageErrors
// wants a program to refuse.
type UsageError struct {
	Name string   // the subtest's
	Args []string // the command line
	Want string   // in standard error
}

// CheckUsageErrors runs the program with the arguments of each of tests,
// in parallel subtests, and checks that it refuses them as command-line
// mistakes: exit status 2, the test's Want on standard error, nothing on
// standard output.
func CheckUsageErrors(t *testing.T, start Start, tests []UsageError) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			start(t, tt.Args...).CheckExit(t, 2, tt.Want)
		})
	}
}

// CheckHelp runs the program with -h and with --help, in parallel
// subtests, and checks that it exits with status 0, writes nothing to
// standard output, and on standard error shows usage (its usage line),
// lists each of flags (option names without the dash) as package flag
// does, and names each of texts: its address forms, and whatever else its
// help must say.
func CheckHelp(t *testing.T, start Start, usage string, flags, texts []string) {
	t.Helper()
	for _, arg := range []string{"-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			stderr := start(t, arg).CheckExit(t, 0)
			if !strings.Contains(stderr, usage) {
				t.Errorf("help lacks the usage line %q:\n%s", usage, stderr)
			}
			for _, f := range flags {
				if !strings.Contains(stderr, "\n  -"+f+" ") && !strings.Contains(stderr, "\n  -"+f+"\n") {
					t.Errorf("help does not list the option -%s:\n%s", f, stderr)
				}
			}
			for _, text := range texts {
				if !strings.Contains(stderr, text) {
					t.Errorf("help does not name %s:\n%s", text, stderr)
				}
			}
		})
	}
}

// CheckListenErrors checks, in parallel subtests, that the program fails
// to listen with exit status 1 and the error on standard error, as the
// examples' programs do: on a port of 127.0.0.1 that is in use, of network
// ("tcp" or "udp"), and on a UNIX socket path where a regular file is,
// even with --unix-listen-unlink, which must leave the file alone.
func CheckListenErrors(t *testing.T, start Start, network string) {
	t.Helper()
	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		addr := takenAddress(t, network)
		start(t, addr).CheckExit(t, 1, "listen "+network+" "+addr+": bind: address already in use")
	})
	t.Run("regular file at path", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(SocketDir(t), "file")
		if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		start(t, "--unix-listen-unlink", path).CheckExit(t, 1, "a regular file is at this path")
		if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
			t.Errorf("the regular file was touched: %q, %v", b, err)
		}
	})
}

// takenAddress holds a port of 127.0.0.1 of network ("tcp" or "udp") until
// the test ends and returns its address.
func takenAddress(t testing.TB, network string) string {
	t.Helper()
	var (
		addr    net.Addr
		release func() error
	)
	switch network {
	case "tcp":
		ln, err := net.Listen(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr, release = ln.Addr(), ln.Close
	case "udp":
		c, err := net.ListenPacket(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr, release = c.LocalAddr(), c.Close
	default:
		t.Fatalf("takenAddress: unknown network %q", network)
	}
	t.Cleanup(func() { release() })
	return addr.String()
}

// CheckSignals checks, in a parallel subtest for each of SIGTERM and
// SIGINT, that a server that serve starts and returns, with the path of its
// socket file, exits on the signal with status 0 and removes the file.
// check, if not nil, checks more once the server has exited.
func CheckSignals(t *testing.T, serve func(t testing.TB) (p *Process, socketPath string), check func(t testing.TB, p *Process)) {
	t.Helper()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			p, path := serve(t)
			p.CheckStop(t, sig, path)
			if check != nil {
				check(t, p)
			}
		})
	}
}

// CheckStop sends sig to the process and fails the test unless it exits
// with status 0 and, if socketPath is not "", has removed that socket
// file.
func (p *Process) CheckStop(t testing.TB, sig os.Signal, socketPath string) {
	t.Helper()
	if code := p.Stop(t, sig); code != 0 {
		t.Errorf("%s exited with %d after %v, want 0; stderr:\n%s", p, code, sig, p.Stderr.String())
	}
	if socketPath == "" {
		return
	}
	if _, err := os.Lstat(socketPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file %s is still there after %v (Lstat: %v)", socketPath, sig, err)
	}
}

// ErrorText returns the text of the error that f returns for arg, for a
// test that wants a program to say it (ErrorText(t, anylisten.ParseAddress,
// "x.sock") is what a program says of the address x.sock). The test fails
// at once if f returns no error.
func ErrorText[T any](t testing.TB, f func(string) (T, error), arg string) string {
	t.Helper()
	_, err := f(arg)
	if err == nil {
		t.Fatalf("%q: no error, want one", arg)
	}
	return err.Error()
}
