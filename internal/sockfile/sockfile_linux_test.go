package sockfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// create makes a listening socket file at path with o and returns it and
// the name it was bound to.
func create(t *testing.T, path string, o Options) (*File, string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	var bound string
	f, err := Create(path, fd, o, func(b string) error { bound = b; return unix.Listen(fd, 8) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, bound
}

// tempDir is a new directory with a short path, for socket files.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

var keep = Options{UID: -1, GID: -1}

// Remove removes its own socket, and leaves a file that took its name.
func TestRemoveOnlyOwnSocket(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "s.sock")
	f, _ := create(t, path, keep)
	// The swap: the socket goes, a precious file takes its name.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(); err != nil {
		t.Errorf("Remove with another file at the path: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Errorf("the file at the path after Remove: %q, %v", b, err)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Errorf("the directory holds %v, want only s.sock", got)
	}

	os.Remove(path)
	f, _ = create(t, path, keep)
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("after Remove of its own socket, the directory holds %v", got)
	}
}

// A stale socket is replaced only with RemoveStale; a live one never.
func TestCreateOverStaleAndLive(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "s.sock")
	stale, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(stale, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(stale)

	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(fd)
	_, err = Create(path, fd, Options{UID: -1, GID: -1, UnlinkOption: "the unlink option"}, func(string) error { return unix.Listen(fd, 8) })
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "stale socket file") ||
		!strings.Contains(err.Error(), "the unlink option") {
		t.Errorf("Create over a stale socket without RemoveStale: %v", err)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Errorf("after a failed Create, the directory holds %v, want the stale socket only", got)
	}

	live, _ := create(t, path, Options{UID: -1, GID: -1, RemoveStale: true})
	fd2, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(fd2)
	_, err = Create(path, fd2, Options{UID: -1, GID: -1, RemoveStale: true}, func(string) error { return unix.Listen(fd2, 8) })
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "live server") {
		t.Errorf("Create over a live socket: %v", err)
	}
	if err := live.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("the directory holds %v", got)
	}
}

// linkNoReplace, the move of the BSDs (and the fallback elsewhere), never
// replaces a file, and moves one where the name is free.
func TestLinkNoReplace(t *testing.T) {
	dir := tempDir(t)
	dfd, err := unix.Open(dir, openDirFlags, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	for _, n := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := linkNoReplace(dfd, "a", dfd, "b"); err != unix.EEXIST {
		t.Errorf("linkNoReplace onto a file = %v, want EEXIST", err)
	}
	if err := linkNoReplace(dfd, "a", dfd, "c"); err != nil {
		t.Fatal(err)
	}
	got := entries(t, dir)
	if strings.Join(got, ",") != "b,c" {
		t.Errorf("after the moves the directory holds %v, want b, c", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b")); string(b) != "b" {
		t.Errorf("b holds %q", b)
	}
}

// Where other users can rename what is in the directory (writable by them,
// no sticky bit), the socket is bound through the private directory's fd,
// not by a path they could redirect; and a name too long for sun_path in
// the private directory is bound as "s".
func TestCreateBoundNames(t *testing.T) {
	dir := tempDir(t)
	f, bound := create(t, filepath.Join(dir, "s.sock"), keep)
	if want := filepath.Join(dir, ".anylisten-"); !strings.HasPrefix(bound, want) || len(bound) != len(want)+8+len("/s.sock") {
		t.Errorf("in a private directory, bound to %s, want %sXXXXXXXX/s.sock", bound, want)
	}
	f.Remove()

	shared := tempDir(t)
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	f, bound = create(t, filepath.Join(shared, "s.sock"), keep)
	if !strings.HasPrefix(bound, "/proc/self/fd/") || !strings.HasSuffix(bound, "/s.sock") {
		t.Errorf("in a directory others may write, bound to %s, want /proc/self/fd/N/s.sock", bound)
	}
	f.Remove()

	long := filepath.Join(dir, strings.Repeat("l", maxSunPath-len(dir)-1))
	f, bound = create(t, long, keep)
	if !strings.HasPrefix(bound, filepath.Join(dir, ".anylisten-")) || !strings.HasSuffix(bound, "/s") {
		t.Errorf("with a path of %d bytes, bound to %s, want %s/.anylisten-XXXXXXXX/s", len(long), bound, dir)
	}
	if fi, err := os.Lstat(long); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("the socket at %s: %v, %v", long, fi, err)
	}
	f.Remove()
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("the directory holds %v", got)
	}
}
