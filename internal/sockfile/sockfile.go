// Package sockfile makes, takes over and removes the files of UNIX
// sockets bound to a path, so that nobody else who can write the
// directory can redirect, widen or delete anything through them.
//
// A socket file appears at its path only when it is complete. The socket
// is bound in a private directory (mode 0700, made in the directory of the
// path, so on the same file system, and named .anylisten-*), given its
// owner and mode there, where nobody else can reach or swap it, made to
// listen, and only then moved to the path, by a rename that never replaces
// anything. So a connect that finds the file finds a listening socket
// with its final rights, and of two servers starting at once exactly one
// gets the path.
//
// Every later step works through the directory opened once: what is at
// the path is looked at relative to it (on Linux pinned by an O_PATH fd
// and probed through it, so that the file probed and compared is the one
// looked at, and its inode number cannot be reused meanwhile), and a file
// is removed (a stale socket before bind, the socket itself on Close) by
// first moving it into a fresh private directory, where it cannot be
// swapped, then checking that it is the very inode meant, and only then
// unlinking it; anything else is moved back without replacing what took
// its place meanwhile.
// Owner and mode are set relative to the private directory and never
// follow a symbolic link.
//
// The rename that cannot replace is renameat2(RENAME_NOREPLACE) on Linux,
// renameatx_np(RENAME_EXCL) on macOS, and link plus unlink on the BSDs
// and where the others are missing; Solaris, illumos and AIX have none
// of these, and check before a plain rename (a file that appears at the
// path in between is replaced).
package sockfile

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// PrivatePrefix and 8 base-36 digits are the name of every private
// directory, so that a leftover (after a crash in the middle of Create or
// Remove) cannot be mistaken for anything else.
const PrivatePrefix = ".anylisten-"

// PublicPath returns the path DIR/NAME of a socket whose kernel name (the
// name it was bound to, which getsockname and /proc/net/unix report) is
// DIR/.anylisten-XXXXXXXX/NAME, in a private directory of Create; ok is
// false for any other name.
func PublicPath(bound string) (path string, ok bool) {
	slash := strings.LastIndexByte(bound, '/')
	if slash < 0 {
		return "", false
	}
	dir, base := bound[:slash], bound[slash+1:]
	start := strings.LastIndexByte(dir, '/') + 1
	if priv := dir[start:]; len(priv) != len(PrivatePrefix)+8 || !strings.HasPrefix(priv, PrivatePrefix) {
		return "", false
	}
	return dir[:start] + base, true
}

// Options say how Create makes a socket file.
type Options struct {
	// Mode is the file's permission bits; 0 keeps those bind gave it
	// (0777 less the umask).
	Mode uint32
	// UID and GID are its owner and group; -1 keeps them.
	UID, GID int
	// RemoveStale replaces a stale socket at the path (one that nobody
	// accepts on); without it, such a socket is an error.
	RemoveStale bool
	// UnlinkOption names the option that sets RemoveStale, for errors.
	UnlinkOption string
	// Named asks that the socket's kernel name (what getsockname says, and
	// what the peers of a datagram socket see as the address it sends
	// from) be the path itself, not the private directory's name. Where
	// the system gives a socket its mode before bind (Linux), nobody but
	// this process's user and root can create, remove or rename entries of
	// the directory (no group or other write bit) or move it or a
	// directory above it (no group or other write bit, or the sticky bit
	// with the entry below owned by this user or root), Create binds the
	// socket at the path (the directory's physical path, without symbolic
	// links or "..", and the name, where that fits sun_path, so that peers
	// can answer to it from any working directory): nobody else can put
	// anything there or
	// swap it, the file is born with at most the asked rights (owner only
	// until its owner is set), and a failed Create removes it. Elsewhere
	// the socket is made in a private directory as any other, and the
	// kernel keeps that directory's name.
	Named bool
}

// File is a socket file: the directory it is in, opened once, its name
// there, and the inode it is, so that Remove removes it and nothing else.
type File struct {
	dir      int    // the directory, opened once
	name     string // the file's name in dir
	path     string // the path as given, for errors
	dev, ino uint64 // the socket file's identity
}

// Remove removes the socket file if it is still at its path; a file that
// is not this socket is left where it is (or, if another file took its
// place while it was checked, in a private directory the error names).
// It is a no-op on a nil File.
func (f *File) Remove() error {
	if f == nil {
		return nil
	}
	return f.remove()
}

// ID returns the socket file's identity, for AdoptSame in another
// process: its device and inode numbers.
func (f *File) ID() (dev, ino uint64) { return f.dev, f.ino }

// Close releases the directory; the file stays. It is a no-op on a nil
// File.
func (f *File) Close() error {
	if f == nil {
		return nil
	}
	return f.close()
}

// InUseError says why a socket path cannot be bound: something is already
// there. It unwraps to EADDRINUSE, what bind would have said.
type InUseError struct{ Why string }

func (e *InUseError) Error() string { return "bind: address already in use: " + e.Why }
func (e *InUseError) Unwrap() error { return syscall.EADDRINUSE }

var (
	// errStale is what judge says of a stale socket it may replace.
	errStale = errors.New("stale socket")
	// errChanged is what judge says of a file that went while it was
	// looked at: look again.
	errChanged = errors.New("the file at the path changed")
)

// judge says what a file at a socket path is to a new socket: a stale
// socket that o allows to replace (errStale), one that went meanwhile
// (errChanged, as probe reports it), or an *InUseError that says what is
// in the way: a live server's socket, a stale one without RemoveStale, or
// a file that is not a socket. kind names the file if it is not a socket
// ("" for a socket); probe reports whether a server accepts connections
// on the socket, and heldBy names who holds a live one (" (held by ...)"
// or "").
func judge(kind string, probe func() (live bool, err error), heldBy func() string, o Options) error {
	if kind != "" {
		return &InUseError{kind + " is at this path; only a stale socket file is ever removed, so it is left alone: choose another path"}
	}
	live, err := probe()
	switch {
	case errors.Is(err, errChanged):
		return err
	case err != nil:
		return fmt.Errorf("cannot tell whether the socket file at this path is stale: %w", err)
	case live:
		return &InUseError{"a live server has this socket open" + heldBy() + "; it is not taken over"}
	case !o.RemoveStale:
		return &InUseError{"a stale socket file (nobody accepts on it) is in the way; remove it, or set " + o.UnlinkOption + " to have it removed"}
	}
	return errStale
}
