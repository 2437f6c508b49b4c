package main

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/anylisten/anylisten"
	"github.com/anylisten/anylisten/internal/testenv"
)

// binPath is the program TestMain builds.
var binPath string

// TestMain builds the program (with -race when the tests run with it),
// runs the tests and removes the program.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithProgram(m, "kingpin", &binPath))
}

// run starts the program with args in a new short directory and returns
// it and the directory.
func run(t *testing.T, args ...string) (*testenv.Process, string) {
	t.Helper()
	dir := testenv.SocketDir(t)
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	return testenv.StartProcess(t, cmd, nil), dir
}

// TestProgram runs the program on a TCP port 0 and a UNIX socket file,
// asks it over the socket file and stops it with SIGTERM, which removes
// the file.
func TestProgram(t *testing.T) {
	p, dir := run(t, "--web.listen-address=127.0.0.1:0", "--web.listen-address", "./x.sock", "--unix-listen-chmod=group")
	if err := p.WaitListening(); err != nil {
		t.Fatalf("%v; stderr:\n%s", err, p.Stderr.String())
	}
	sock := filepath.Join(dir, "x.sock")
	if got, want := get(t, anylisten.MustParseAddress(sock)), "Hello from ./x.sock\n"; got != want {
		t.Errorf("GET over %s: %q; want %q", sock, got, want)
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("Lstat(%s): %v, %v; want mode 0660 (--unix-listen-chmod=group)", sock, fi, err)
	}
	if code := p.Stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit status %d after SIGTERM; want 0; stderr:\n%s", code, p.Stderr.String())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after exit, Lstat(%s): %v; want the socket file removed", sock, err)
	}
}

// TestProgramBadArgs checks that a command-line error, such as a
// separate @NAME that kingpin takes for a file, is one line on standard
// error and exit status 2, and that a failure to listen is status 1.
func TestProgramBadArgs(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--web.listen-address", "@admin"}, 2,
			"kingpin: expected argument for flag '--web.listen-address' (--help for help)\n"},
		{[]string{"--unix-listen-chmod", "wheel"}, 2, `kingpin: anylisten: invalid UNIX socket mode "wheel"`},
		{[]string{"--web.listen-address", "./no/such/dir/x.sock"}, 1, "x.sock"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			p, _ := run(t, tt.args...)
			code := p.WaitExit(t)
			stderr := p.Stderr.String()
			if code != tt.code || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("kingpin %q: exit status %d, stderr:\n%s\nwant status %d and one line with %q", tt.args, code, stderr, tt.code, tt.want)
			}
		})
	}
}
