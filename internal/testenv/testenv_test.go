package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// program logs that it listens, then exits with status 3 on SIGTERM.
const program = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	fmt.Fprintln(os.Stderr, "prog: listening on nothing")
	<-c
	os.Exit(3)
}
`

// TestBuildProgram builds a program, checks that it was built with -race
// exactly when this test was, and runs it as a Process.
func TestBuildProgram(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the program is stopped with SIGTERM, which Windows lacks")
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"go.mod": "module prog\n", "main.go": program} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path, cleanup, err := BuildProgram(dir, "prog")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if filepath.Base(path) != "prog" {
		t.Errorf("BuildProgram built %s, want a binary called prog", path)
	}

	out, err := exec.Command("go", "version", "-m", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m %s: %v\n%s", path, err, out)
	}
	if race := strings.Contains(string(out), "-race=true"); race != raceEnabled {
		t.Errorf("built with -race: %v; want %v, as this test:\n%s", race, raceEnabled, out)
	}

	p := StartProcess(t, exec.Command(path), nil)
	if err := p.WaitListening(); err != nil {
		t.Fatal(err)
	}
	if code := p.Stop(t, syscall.SIGTERM); code != 3 {
		t.Errorf("exit status %d after SIGTERM, want 3; stderr:\n%s", code, p.Stderr.String())
	}
	if !p.HasExited() {
		t.Error("HasExited is false after Stop")
	}

	cleanup()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after cleanup, Stat(%s): %v; want the binary removed", path, err)
	}
}

func TestExitAtOnce(t *testing.T) {
	tests := []struct {
		env, want []string
	}{
		{[]string{"A=1"}, []string{"A=1", "GORACE=atexit_sleep_ms=0"}},
		{[]string{"GORACE=halt_on_error=1", "A=1"}, []string{"A=1", "GORACE=halt_on_error=1 atexit_sleep_ms=0"}},
	}
	for _, tt := range tests {
		if got := ExitAtOnce(slices.Clone(tt.env)); !slices.Equal(got, tt.want) {
			t.Errorf("ExitAtOnce(%q) = %q, want %q", tt.env, got, tt.want)
		}
	}
}
