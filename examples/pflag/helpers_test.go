package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/anylisten/anylisten/internal/testenv"
)

// binPath is the program TestMain builds.
var binPath string

// TestMain builds the program (with -race when the tests run with it),
// runs the tests and removes the program.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithProgram(m, "pflag", &binPath))
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

// startListening starts the program in a new short directory with the
// arguments args(port) gives for a free TCP port, and waits until it
// listens; a port that another process took in the meantime is replaced by
// a new one. It returns the program, the directory and the port.
func startListening(t *testing.T, args func(port int) []string) (*testenv.Process, string, int) {
	t.Helper()
	dir := testenv.SocketDir(t)
	p, port := testenv.StartListening(t, func(port int) *testenv.Process {
		return start(t, dir, args(port)...)
	})
	return p, dir, port
}
