package anylisten

// These tests have been compiled (GOOS=windows go test -c, go vet) but
// never run on the Linux machines where this package is developed: Wine
// has no AF_UNIX. A Windows machine (10 1803 or later) runs them with go
// test.

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/windows"
)

// winSocketPath returns a socket path in a fresh short directory, removed
// at cleanup, and skips t where Windows has no AF_UNIX.
func winSocketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	probe, err := net.Listen("unix", filepath.Join(dir, "probe.sock"))
	if errors.Is(err, windows.WSAEAFNOSUPPORT) {
		t.Skip("this Windows has no AF_UNIX sockets; they came with Windows 10 1803")
	}
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	return filepath.Join(dir, "app.sock")
}

// staleSocket leaves a socket file at path that nobody listens on, as a
// crashed server does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("no stale socket file at %s: %v, %v", path, fi, err)
	}
}

// wantInUse checks that Listen on path with o fails with EADDRINUSE and
// an error that says what is in the way.
func wantInUse(t *testing.T, path string, o *Options, says string) {
	t.Helper()
	ln, err := Listen(context.Background(), MustParseAddress("unix:"+path), o)
	if err == nil {
		ln.Close()
		t.Fatalf("Listen(%s) succeeded, want %q", path, says)
	}
	var oe *net.OpError
	if !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &oe) || !strings.Contains(err.Error(), says) {
		t.Errorf("Listen(%s) = %v; want a *net.OpError wrapping EADDRINUSE that says %q", path, err, says)
	}
}

// A UNIX path gives a *UnixListener whose Addr is the path; the socket
// file is a socket to os.Lstat, and Close removes it.
func TestUnixWindowsListen(t *testing.T) {
	path := winSocketPath(t)
	ln := listenT(t, "unix:"+path, nil)
	ul, ok := ln.(*UnixListener)
	if !ok {
		t.Fatalf("Listen returned a %T, want *UnixListener", ln)
	}
	if ul.Addr().String() != path {
		t.Errorf("Addr() = %s, want %s", ul.Addr(), path)
	}
	server := roundTrip(t, ln)
	if _, ok := server.(*net.UnixConn); !ok {
		t.Errorf("Accept returned a %T, want *net.UnixConn", server)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Errorf("Lstat(%s) = %v, %v; want a socket", path, fi, err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the socket file is still there after Close: %v", err)
	}
}

// A file that is not a socket is never removed, not even with
// unix_listen_unlink; Listen says what it is.
func TestUnixWindowsFileInTheWay(t *testing.T) {
	path := winSocketPath(t)
	if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantInUse(t, path, &Options{UnixListenUnlink: true}, "a regular file is at this path")
	if b, err := os.ReadFile(path); err != nil || string(b) != "data" {
		t.Errorf("the regular file now holds %q, %v", b, err)
	}

	dir := winSocketPath(t)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wantInUse(t, dir, &Options{UnixListenUnlink: true}, "a directory is at this path")

	link := winSocketPath(t)
	if err := os.Symlink(path, link); err != nil {
		t.Logf("no symbolic link test: %v (creating one needs Developer Mode or the SeCreateSymbolicLinkPrivilege)", err)
		return
	}
	wantInUse(t, link, &Options{UnixListenUnlink: true}, "a symbolic link is at this path")
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the symbolic link is gone: %v, %v", fi, err)
	}
}

// A live server's socket is never taken over or removed.
func TestUnixWindowsLiveSocket(t *testing.T) {
	path := winSocketPath(t)
	ln := listenT(t, "unix:"+path, nil)
	wantInUse(t, path, &Options{UnixListenUnlink: true}, "a live server has this socket open")
	roundTrip(t, ln)
}

// A stale socket is an error that names unix_listen_unlink; with it, it
// is replaced.
func TestUnixWindowsStaleSocket(t *testing.T) {
	path := winSocketPath(t)
	staleSocket(t, path)
	wantInUse(t, path, nil, "a stale socket file (nobody accepts on it) is in the way; remove it, or set the unix_listen_unlink option")
	ln := listenT(t, "unix:"+path, &Options{UnixListenUnlink: true})
	roundTrip(t, ln)
}

// Close removes the socket file only while it is the one Listen made: a
// file or another server's socket put at the path since is left alone.
func TestUnixWindowsCloseSparesOthers(t *testing.T) {
	path := winSocketPath(t)
	ln, err := Listen(context.Background(), MustParseAddress("unix:"+path), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "other" {
		t.Errorf("Close removed or changed the file put at the path: %q, %v", b, err)
	}

	path2 := winSocketPath(t)
	first, err := Listen(context.Background(), MustParseAddress("unix:"+path2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path2); err != nil {
		t.Fatal(err)
	}
	second := listenT(t, "unix:"+path2, nil)
	first.Close()
	roundTrip(t, second)
}

// SetUnlinkOnClose(false) leaves the socket file.
func TestUnixWindowsKeepOnClose(t *testing.T) {
	path := winSocketPath(t)
	ln, err := Listen(context.Background(), MustParseAddress("unix:"+path), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Errorf("the socket file is gone: %v, %v", fi, err)
	}
}

// What Windows's AF_UNIX lacks is an error wrapping errors.ErrUnsupported,
// and leaves nothing behind.
func TestUnixWindowsUnsupported(t *testing.T) {
	path := winSocketPath(t)
	for _, tt := range []struct {
		addr string
		o    *Options
	}{
		{"unix:" + path, &Options{UnixListenChmod: 0o600}},
		{"unix:" + path, &Options{UnixListenUID: ptr[uint32](0)}},
		{"unix:" + path, &Options{RecvBufferSize: 4096}},
		{"unixpacket:" + path, nil},
	} {
		ln, err := Listen(context.Background(), MustParseAddress(tt.addr), tt.o)
		if err == nil {
			ln.Close()
			t.Errorf("Listen(%s, %+v) succeeded", tt.addr, tt.o)
		} else if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("Listen(%s, %+v) = %v, want errors.ErrUnsupported", tt.addr, tt.o, err)
		}
	}
	pc, err := ListenPacket(context.Background(), MustParseAddress("unixgram:"+path), nil)
	if err == nil {
		pc.Close()
		t.Error("ListenPacket of a unixgram path succeeded")
	} else if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ListenPacket(unixgram:%s) = %v, want errors.ErrUnsupported", path, err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused Listen left a file at %s: %v", path, err)
	}
}

// A UNIX path that Windows reads as a pipe's is refused with a hint.
func TestUnixWindowsPipePath(t *testing.T) {
	ln, err := Listen(context.Background(), MustParseAddress("//./pipe/anylisten-test"), nil)
	if err == nil {
		ln.Close()
		t.Fatal("Listen of the UNIX path //./pipe/anylisten-test succeeded")
	}
	if want := `write \\.\pipe\anylisten-test or npipe://anylisten-test`; !strings.Contains(err.Error(), want) {
		t.Errorf("Listen = %v, want it to say %q", err, want)
	}
}
