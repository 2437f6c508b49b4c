package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
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

func TestFreePorts(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		ports := FreePorts(t, network, 3)
		if len(ports) != 3 || ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
			t.Errorf("FreePorts(%s, 3) = %v, want three different ports", network, ports)
		}
	}
}

func TestNewAddress(t *testing.T) {
	a := NewAddress(t, OnUnixRelative, "", "x.sock")
	if a.Addr != "./x.sock" || a.Dir == "" || a.Path != filepath.Join(a.Dir, "x.sock") {
		t.Errorf("NewAddress(OnUnixRelative) = %+v, want ./x.sock in Dir, and its absolute Path", a)
	}
	a = NewAddress(t, OnUnix, "", "x.sock")
	if a.Addr != a.Path || !filepath.IsAbs(a.Path) || a.Dir != "" {
		t.Errorf("NewAddress(OnUnix) = %+v, want an absolute path, and no Dir", a)
	}
	a = NewAddress(t, OnPort, "udp", "")
	if !strings.HasPrefix(a.Addr, "127.0.0.1:") || a.Path != "" || a.Dir != "" {
		t.Errorf("NewAddress(OnPort) = %+v, want 127.0.0.1:PORT alone", a)
	}
}

func TestLogFile(t *testing.T) {
	l := &LogFile{Path: filepath.Join(t.TempDir(), "log")}
	if err := os.WriteFile(l.Path, []byte("a: listening on x\nb: listening on y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitLines(t, "listening on", 2); err != nil {
		t.Error(err)
	}
	if got := l.Read(t); !strings.HasPrefix(got, "a: listening") {
		t.Errorf("Read = %q", got)
	}
}

func TestWriteExecutable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prog")
	WriteExecutable(t, path, []byte("#!/bin/sh\n"))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("mode %v, want executable", fi.Mode())
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left: %v", err)
	}
}

func TestErrorText(t *testing.T) {
	if got, want := ErrorText(t, strconv.Atoi, "x"), `strconv.Atoi: parsing "x": invalid syntax`; got != want {
		t.Errorf("ErrorText = %q, want %q", got, want)
	}
}
