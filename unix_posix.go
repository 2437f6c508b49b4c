//go:build unix

package anylisten

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// testHookBeforeListen, if set by a test, is called with the bound name
// after bind, chown and chmod, and before listen.
var testHookBeforeListen func(path string)

// listenUnix listens on a UNIX socket path: it clears a stale socket file
// if asked to, binds, sets owner and mode, and only then listens.
func listenUnix(_ context.Context, path string, o *Options) (net.Listener, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := clearStale(path, o.UnixListenUnlink); err != nil {
		return nil, err
	}
	return bindUnix(path, o, abs)
}

// bindUnix creates a UNIX stream socket and binds it to name, a path or
// an abstract @name. For a path (abs is its absolute form) it sets the
// owner and mode of the socket file before listen, so no client can
// connect before the file has its final rights, and removes the file again
// on any failure.
func bindUnix(name string, o *Options, abs string) (_ net.Listener, err error) {
	fd, err := socketCloexec(unix.AF_UNIX, unix.SOCK_STREAM)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	defer func() {
		if err != nil && fd >= 0 {
			unix.Close(fd)
		}
	}()
	// package syscall's sockaddr takes an abstract name of the full 107
	// bytes; x/sys/unix's stops one short.
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: name}); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	var bound os.FileInfo
	if abs != "" {
		if bound, err = os.Lstat(abs); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				removeIfSame(abs, bound)
			}
		}()
		if err := setOwnerMode(name, o); err != nil {
			return nil, err
		}
	}
	if testHookBeforeListen != nil {
		testHookBeforeListen(name)
	}
	// The kernel caps the backlog at its maximum (somaxconn), which is
	// what net.Listen asks for.
	if err := unix.Listen(fd, math.MaxInt32); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	f := os.NewFile(uintptr(fd), name)
	fd = -1 // f owns it now
	fl, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return &UnixListener{UnixListener: fl.(*net.UnixListener), path: abs, file: bound, unlink: abs != "", opts: bufferOpts(o)}, nil
}

// setOwnerMode applies the owner, group and mode options to the socket
// file at path.
func setOwnerMode(path string, o *Options) error {
	if o.UnixListenUID != nil || o.UnixListenGID != nil {
		uid, gid := -1, -1
		if o.UnixListenUID != nil {
			uid = int(*o.UnixListenUID)
		}
		if o.UnixListenGID != nil {
			gid = int(*o.UnixListenGID)
		}
		if err := os.Lchown(path, uid, gid); err != nil {
			return err
		}
	}
	if o.UnixListenChmod != 0 {
		if err := os.Chmod(path, fs.FileMode(o.UnixListenChmod)); err != nil {
			return err
		}
	}
	return nil
}

// pathInUseError explains why a socket path cannot be bound: something is
// already there. It unwraps to EADDRINUSE, what bind would have said.
type pathInUseError struct{ why string }

func (e *pathInUseError) Error() string { return "bind: address already in use: " + e.why }
func (e *pathInUseError) Unwrap() error { return syscall.EADDRINUSE }

// clearStale looks at what is at path before bind. Nothing: fine. A socket
// that nobody accepts on: removed if unlink is set, else an error naming
// the option. Anything else (a live server's socket, a regular file, a
// directory, a symlink, ...) is left alone and explained in an error.
//
// The directory is opened once and everything after happens relative to
// it, so that a symlink planted in the path meanwhile cannot redirect the
// removal; and what is removed is first moved aside and checked to be the
// very socket that was probed (see removeProbed).
func clearStale(path string, unlink bool) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	dfd, err := unix.Open(dir, openDirFlags, 0)
	if err != nil {
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return nil // bind reports it
		}
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return &pathInUseError{fileKind(uint32(st.Mode)) + " is at this path; only a stale socket file is ever removed, so it is left alone: choose another path"}
	}
	live, err := probeUnix(path)
	switch {
	case err != nil:
		return fmt.Errorf("cannot tell whether the socket file at this path is stale: %w", err)
	case live:
		return &pathInUseError{"a live server accepts connections on this socket; it is not taken over"}
	case !unlink:
		return &pathInUseError{"a stale socket file (nobody accepts on it) is in the way; remove it, " +
			"or set --unix-listen-unlink (unix_listen_unlink) to have it removed"}
	}
	return removeProbed(dfd, base, path, &st)
}

// removeProbed removes the file base in the directory dfd if it is still
// the socket st describes. unlink has no "only if it is this inode", so
// the file is first renamed aside, atomically, then checked, and removed
// only if it is that socket; anything else is linked back under its name
// (which fails rather than replace a file put there meanwhile).
func removeProbed(dfd int, base, path string, st *unix.Stat_t) error {
	aside := "." + base + ".stale-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(rand.Uint64(), 36)
	if err := unix.Renameat(dfd, base, dfd, aside); err != nil {
		if err == unix.ENOENT {
			return nil // removed meanwhile
		}
		return &os.PathError{Op: "remove stale socket", Path: path, Err: err}
	}
	var moved unix.Stat_t
	err := unix.Fstatat(dfd, aside, &moved, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && moved.Dev == st.Dev && moved.Ino == st.Ino && moved.Mode&unix.S_IFMT == unix.S_IFSOCK {
		if err := unix.Unlinkat(dfd, aside, 0); err != nil {
			return &os.PathError{Op: "remove stale socket", Path: path, Err: err}
		}
		return nil
	}
	if putBack(dfd, aside, base) != nil {
		return &pathInUseError{"the file at this path changed while it was checked; it was moved aside to " +
			aside + " and could not be put back"}
	}
	return &pathInUseError{"the file at this path changed while it was checked; it is left alone"}
}

// fileKind names the type of file mode m describes.
func fileKind(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFIFO:
		return "a named pipe"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	}
	return "a file that is not a socket"
}

// probeUnix reports whether a server accepts connections on the socket
// file at path. A refused connect means the socket is stale; a connection
// or a full backlog (EAGAIN) means it is live. The probe's connection is
// closed at once: a live server sees one empty connection.
func probeUnix(path string) (bool, error) {
	fd, err := socketCloexec(unix.AF_UNIX, unix.SOCK_STREAM)
	if err != nil {
		return false, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	switch err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err {
	case nil, unix.EAGAIN, unix.EINPROGRESS:
		return true, nil
	case unix.ECONNREFUSED, unix.ENOENT:
		return false, nil
	default:
		return false, os.NewSyscallError("connect", err)
	}
}
