//go:build unix

package anylisten

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

	"github.com/anylisten/anylisten/internal/testenv"
	"golang.org/x/sys/unix"
)

// staleSocket leaves a socket file at path that nobody accepts on, as a
// crashed server does.
func staleSocket(t testing.TB, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("stale socket at %s: %v, %v", path, fi, err)
	}
}

func listenPath(path string, o *Options) (net.Listener, error) {
	return Listen(context.Background(), MustParseAddress("unix:"+path), o)
}

func TestListenUnix(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "app.sock")
	ln, err := listenPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ul, ok := ln.(*UnixListener)
	if !ok {
		t.Fatalf("Listen returned %T, want *UnixListener", ln)
	}
	if got := ul.Addr().String(); got != path {
		t.Errorf("Addr() = %q, want %q", got, path)
	}
	if c := roundTrip(t, ln); func() bool { _, ok := c.(*net.UnixConn); return !ok }() {
		t.Fatalf("Accept returned %T, want *net.UnixConn", c)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("socket file: %v, %v", fi, err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it removed", err)
	}
	if err := ln.Close(); err == nil {
		t.Error("second Close returned nil")
	}
}

func TestListenUnixRelativePath(t *testing.T) {
	dir := testenv.SocketDir(t)
	chdir(t, dir)
	ln := listenT(t, "./rel.sock", nil)
	roundTrip(t, ln)
	// Close removes the file even after the working directory changed.
	chdir(t, os.TempDir())
	ln.Close()
	if _, err := os.Lstat(filepath.Join(dir, "rel.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
}

func TestListenUnixChmod(t *testing.T) {
	dir := testenv.SocketDir(t)
	for _, tt := range []struct {
		opt  string
		want fs.FileMode
	}{
		{"owner", 0o600},
		{"group", 0o660},
		{"everybody", 0o666},
		{"0640", 0o640},
		{"0704", 0o704},
	} {
		t.Run(tt.opt, func(t *testing.T) {
			m, err := ParseUnixMode(tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.opt+".sock")
			listenT(t, "unix:"+path, &Options{UnixListenChmod: m})
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.want {
				t.Errorf("mode = %#o, want %#o", got, tt.want)
			}
		})
	}
}

func TestListenUnixChown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root: run the tests as root")
	}
	path := filepath.Join(testenv.SocketDir(t), "own.sock")
	listenT(t, "unix:"+path, &Options{UnixListenUID: ptr[uint32](4321), UnixListenGID: ptr[uint32](8765), UnixListenChmod: 0o660})
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 4321 || st.Gid != 8765 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket file is %d:%d %#o, want 4321:8765 0660", st.Uid, st.Gid, fi.Mode().Perm())
	}

	onlyGID := filepath.Join(filepath.Dir(path), "gid.sock")
	listenT(t, "unix:"+onlyGID, &Options{UnixListenGID: ptr[uint32](8765)})
	fi, err = os.Lstat(onlyGID)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uint32(os.Geteuid()) || st.Gid != 8765 {
		t.Errorf("socket file is %d:%d, want %d:8765", st.Uid, st.Gid, os.Geteuid())
	}
}

func TestListenUnixStale(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "stale.sock")
	staleSocket(t, path)

	ln, err := listenPath(path, nil)
	if ln != nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Listen over a stale socket without the option = %v, %v; want EADDRINUSE", ln, err)
	}
	for _, want := range []string{path, "stale socket file", "--unix-listen-unlink"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the stale socket was removed without the option: %v", err)
	}

	ln = listenT(t, "unix:"+path, &Options{UnixListenUnlink: true})
	roundTrip(t, ln)
}

func TestListenUnixLiveServerNotStolen(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "live.sock")
	live := listenT(t, "unix:"+path, nil)
	before, _ := os.Lstat(path)

	// The probe's connection reaches the live server; take it off its queue.
	accepted := make(chan error, 1)
	go func() {
		c, err := live.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	ln, err := listenPath(path, &Options{UnixListenUnlink: true})
	if ln != nil || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "live server") {
		t.Fatalf("Listen over a live socket = %v, %v; want EADDRINUSE naming the live server", ln, err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	after, err := os.Lstat(path)
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("the live server's socket file changed: %v", err)
	}
	roundTrip(t, live)
}

func TestListenUnixNeverRemovesOtherFiles(t *testing.T) {
	dir := testenv.SocketDir(t)
	stale := filepath.Join(dir, "target.sock")
	staleSocket(t, stale)
	regular := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(regular, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, want string
		make       func(path string) error
	}{
		{"file", "a regular file is at this path", func(p string) error { return os.WriteFile(p, []byte("precious"), 0o644) }},
		{"dir", "a directory is at this path", func(p string) error { return os.Mkdir(p, 0o755) }},
		{"link2sock", "a symbolic link is at this path", func(p string) error { return os.Symlink(stale, p) }},
		{"link2file", "a symbolic link is at this path", func(p string) error { return os.Symlink(regular, p) }},
		{"dangling", "a symbolic link is at this path", func(p string) error { return os.Symlink(filepath.Join(dir, "nowhere"), p) }},
		{"fifo", "a named pipe is at this path", func(p string) error { return unix.Mkfifo(p, 0o644) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkNoFDLeak(t)
			path := filepath.Join(dir, tt.name)
			if err := tt.make(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(path)
			ln, err := listenPath(path, &Options{UnixListenUnlink: true})
			if ln != nil || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Listen = %v, %v; want EADDRINUSE saying %q", ln, err, tt.want)
			}
			after, err := os.Lstat(path)
			if err != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
				t.Errorf("%s changed: %v", path, err)
			}
		})
	}
	if b, err := os.ReadFile(regular); err != nil || string(b) != "precious" {
		t.Errorf("symlink target: %q, %v", b, err)
	}
	if fi, err := os.Lstat(stale); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("socket behind the symlink: %v", err)
	}
}

func TestUnixCloseLeavesNewerSocket(t *testing.T) {
	path := filepath.Join(testenv.SocketDir(t), "swap.sock")
	old := listenT(t, "unix:"+path, nil)
	// A newer server takes the path over, as a restart with unlink does.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	newer := listenT(t, "unix:"+path, nil)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("closing the old listener removed the newer socket: %v", err)
	}
	roundTrip(t, newer)
}

func TestUnixSetUnlinkOnClose(t *testing.T) {
	path := filepath.Join(testenv.SocketDir(t), "keep.sock")
	ln := listenT(t, "unix:"+path, nil).(*UnixListener)
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("socket file removed despite SetUnlinkOnClose(false): %v", err)
	}
}

func TestListenUnixErrors(t *testing.T) {
	dir := testenv.SocketDir(t)
	for _, tt := range []struct {
		name string
		path string
		is   error
	}{
		{"missing dir", filepath.Join(dir, "nodir", "x.sock"), fs.ErrNotExist},
		{"not a dir", filepath.Join(dir, "file", "x.sock"), syscall.ENOTDIR},
	} {
		t.Run(tt.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
			checkNoFDLeak(t)
			ln, err := listenPath(tt.path, nil)
			var op *net.OpError
			if ln != nil || !errors.Is(err, tt.is) || !errors.As(err, &op) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("Listen = %v, %v; want a *net.OpError naming the path and wrapping %v", ln, err, tt.is)
			}
		})
	}
}

func TestListenUnixPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may chown to anyone; run as a normal user to test a denied chown")
	}
	path := filepath.Join(testenv.SocketDir(t), "deny.sock")
	checkNoFDLeak(t)
	_, err := listenPath(path, &Options{UnixListenUID: ptr[uint32](0)})
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("err = %v, want a permission error", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed Listen left the socket file behind: %v", err)
	}
}

// chdir changes the working directory until the test ends.
func chdir(t testing.TB, dir string) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(wd) })
}
