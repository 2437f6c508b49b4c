package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/anylisten/anylisten/internal/testenv"
)

// timeout bounds every wait of these tests.
const timeout = testenv.Timeout

// binPath is the program TestMain builds.
var binPath string

// TestMain builds the program (with -race when the tests run with it),
// runs the tests and removes the program.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithProgram(m, "config", &binPath))
}

// start runs the program with args in dir. When the test ends, it is
// killed if it still runs, and the test fails if it wrote to standard
// output, which it never does.
func start(t *testing.T, dir string, args ...string) *testenv.Process {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	return testenv.StartProcess(t, cmd, nil)
}

// startListening writes the config file name into a new short directory
// (config(port) gives its content for a free TCP port), starts the
// program there, and waits until it listens; a port that another process
// took in the meantime is replaced by a new one. It returns the program,
// the directory and the port.
func startListening(t *testing.T, name string, config func(port int) string) (*testenv.Process, string, int) {
	t.Helper()
	dir := testenv.SocketDir(t)
	p, port := testenv.StartListening(t, func(port int) *testenv.Process {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(config(port)), 0o644); err != nil {
			t.Fatal(err)
		}
		return start(t, dir, name)
	})
	return p, dir, port
}
