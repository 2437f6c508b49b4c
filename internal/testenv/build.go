package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BuildProgram builds the main package in dir into a new temporary
// directory, as a binary called name, and returns its path and a function
// that removes the directory. When the test binary was built with -race,
// so is the program, and a data race in it shows in its exit status and
// standard error. The path has no symbolic links in it, so that a test may
// compare it with what /proc/PID/exe says.
func BuildProgram(dir, name string) (path string, cleanup func(), err error) {
	tmp, err := os.MkdirTemp("", name+"-test-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	resolved, err := filepath.EvalSymlinks(tmp)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	path = filepath.Join(resolved, name)
	args := []string{"build", "-o", path}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, ".")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// go test puts the go command of its own GOROOT first in PATH.
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return path, cleanup, nil
}

// RunWithProgram is for TestMain: it builds the main package of the
// test's own directory with BuildProgram, as a binary called name, stores
// its path in *path, runs the tests and removes the binary again. It
// returns the exit code for os.Exit, 1 if the build fails:
//
//	func TestMain(m *testing.M) {
//		os.Exit(testenv.RunWithProgram(m, "hello", &helloPath))
//	}
func RunWithProgram(m *testing.M, name string, path *string) int {
	p, cleanup, err := BuildProgram(".", name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	*path = p
	return m.Run()
}

// ExitAtOnce returns env (os.Environ() if env is nil) with GORACE set so
// that a program built with -race exits as soon as it is done, as it does
// without -race, instead of a second later: the race detector's
// atexit_sleep_ms, a wait for reports of other goroutines. It is for
// tests that run a program BuildProgram built many times, or that need it
// to have exited before something else happens. Other GORACE options are
// kept.
func ExitAtOnce(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+1)
	var gorace string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GORACE="); ok {
			gorace = v + " "
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GORACE="+gorace+"atexit_sleep_ms=0")
}

// CopyExecutable copies the program at from to the path to, as
// WriteExecutable writes it.
func CopyExecutable(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	WriteExecutable(t, to, b)
}

// WriteExecutable writes content to the path to, executable, by a rename:
// what is at to changes at once, as in a deploy, and a process that runs
// the old file there keeps running it.
func WriteExecutable(t testing.TB, to string, content []byte) {
	t.Helper()
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}
