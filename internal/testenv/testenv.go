// Package testenv holds helpers for tests that run real programs and real
// sockets: finding a tool, a free TCP port, a directory short enough for
// UNIX socket paths.
package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// packages names the Debian package of the tools whose package has
// another name.
var packages = map[string]string{
	"systemd-socket-activate": "systemd",
	"setpriv":                 "util-linux",
}

// NeedTool returns the path of the program name from PATH. If there is
// none, the test is skipped, or, when the environment variable CI is
// "true", it fails: CI must run every test.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	pkg := name
	if p, ok := packages[name]; ok {
		pkg = p
	}
	SkipOrFail(t, "%s not found (%v); install it to run this test (.ci/run does): apt-get install -y %s", name, err, pkg)
	return ""
}

// SkipOrFail skips the test because this machine lacks something it
// needs, which the message names with how to get it; when the environment
// variable CI is "true", it fails the test instead: CI must run every
// test.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("under CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// listens on port 0 and closes the listener again. Another process may
// take the port before the test uses it, so a test that fails to listen on
// it with EADDRINUSE should ask for another port and try again.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	return port
}

// FreeUDPPort is FreePort for UDP: a UDP port on 127.0.0.1 that was free a
// moment ago, with the same caveat.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free UDP port: %v", err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	if err := c.Close(); err != nil {
		t.Fatalf("finding a free UDP port: %v", err)
	}
	return port
}

// SocketDir returns a new directory for UNIX socket files, removed when the
// test ends. Unlike t.TempDir, whose path holds the test's name, its path
// is short (like /tmp/123456789), so that socket paths in it fit into the
// 104 to 108 bytes of sun_path.
func SocketDir(t testing.TB) string {
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

// Buffer is a bytes.Buffer that a child process's output can be copied
// into while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
