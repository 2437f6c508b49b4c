//go:build unix

package sockfile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/anylisten/anylisten/internal/holder"
	"golang.org/x/sys/unix"
)

// maxSunPath is the longest path bind takes (sun_path less its NUL).
var maxSunPath = len(unix.RawSockaddrUnix{}.Path) - 1

// Create binds the unbound UNIX socket fd to path so that the file appears
// there only when it is complete (see the package doc): bound in a
// private directory, given the owner and mode of o, made ready by ready
// (called with the name the socket was bound to; for a stream socket it
// calls listen), and moved to path without replacing anything. A stale
// socket at path is replaced only with o.RemoveStale; anything else there
// is an *InUseError that says what it is.
//
// On error nothing is left behind, and fd is the caller's to close. On
// success the File holds the directory open until Close.
func Create(path string, fd int, o Options, ready func(bound string) error) (_ *File, err error) {
	dir, dirPath, base, err := openParent(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			unix.Close(dir)
		}
	}()
	// Fail before making anything when the path is plainly taken.
	if err := checkPath(dir, base, path, o); err != nil {
		return nil, err
	}
	if o.Named {
		if name, ok := inPlaceName(dir, base, o); ok {
			return createInPlace(dir, dirPath, base, path, name, fd, o, ready)
		}
	}
	p, err := makePrivate(dir, dirPath)
	if err != nil {
		return nil, err
	}
	defer p.remove()
	bound, inner, err := p.via(base)
	if err != nil {
		return nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: bound}); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(p.fd, inner, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, fmt.Errorf("the socket was bound to %s, which is not in the private directory %s any more (moved by another process?)", bound, p.path)
	}
	p.ours = append(p.ours, inner)
	if err := setOwnerMode(p.fd, inner, path, o); err != nil {
		return nil, err
	}
	if ready != nil {
		if err := ready(bound); err != nil {
			return nil, err
		}
	}
	if err := place(dir, inner, base, path, p, o); err != nil {
		return nil, err
	}
	p.ours = p.ours[:0]
	return &File{dir: dir, name: base, path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// inPlaceName returns the name to bind a socket with o to at base in dir
// itself (Options.Named), if that is safe: the system sets a socket's
// mode before bind; the mode is known (asked for, or left as bind gives it
// with no owner to set); the name is dir's physical path (the system's
// name for the open directory: no symbolic link, no "..") and base, and
// fits sun_path; and nobody but this process's user and root can create,
// remove or rename entries of dir, or move dir or a directory above it:
// the kernel looks the name up again at bind, and it must lead to dir.
func inPlaceName(dir int, base string, o Options) (string, bool) {
	if !modeBeforeBind || o.Mode == 0 && (o.UID >= 0 || o.GID >= 0) {
		return "", false
	}
	phys, ok := physicalPath(dir)
	if !ok {
		return "", false
	}
	name := strings.TrimSuffix(phys, "/") + "/" + base
	if len(name) > maxSunPath {
		return "", false
	}
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil || !ownedSafe(&st) || st.Mode&0o022 != 0 {
		return "", false
	}
	// Each directory above may not let others move what is in it: no
	// write bit for group and others, or the sticky bit with the entry
	// below it owned by this user or root.
	for child, parent := phys, filepath.Dir(phys); child != parent; child, parent = parent, filepath.Dir(parent) {
		var ps, cs unix.Stat_t
		if unix.Lstat(parent, &ps) != nil || unix.Lstat(child, &cs) != nil ||
			ps.Mode&unix.S_IFMT != unix.S_IFDIR || !ownedSafe(&ps) ||
			ps.Mode&0o022 != 0 && (ps.Mode&unix.S_ISVTX == 0 || !ownedSafe(&cs)) {
			return "", false
		}
	}
	return name, true
}

// ownedSafe reports whether st belongs to this process's user or root.
func ownedSafe(st *unix.Stat_t) bool {
	return int(st.Uid) == os.Geteuid() || st.Uid == 0
}

// createInPlace binds fd to name, path itself in dir (see Options.Named
// and inPlaceName): the socket is given its mode first, born with at most that
// (owner only while an owner is to be set), then its owner and mode; a
// stale socket in the way is removed as place does. Nobody else can
// create an entry in dir, so the socket found at base right after bind is
// this one. On error the file is removed and fd is the caller's to close.
func createInPlace(dir int, dirPath, base, path, name string, fd int, o Options, ready func(bound string) error) (_ *File, err error) {
	if o.Mode != 0 {
		pre := o.Mode
		if o.UID >= 0 || o.GID >= 0 {
			pre &= 0o700 // nobody but this user until the owner is set
		}
		if err := unix.Fchmod(fd, pre); err != nil {
			return nil, os.NewSyscallError("fchmod", err)
		}
	}
	if err := bindInPlace(dir, dirPath, base, path, name, fd, o); err != nil {
		return nil, err
	}
	// The file at base is this socket's: nobody else can put one there.
	// Where the kernel says which file the socket is bound to, that is
	// checked too, against a racer of this user (or root), who could.
	var st unix.Stat_t
	err = unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	dev, ino, known := boundFile(fd)
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK || known && (uint64(st.Dev) != dev || uint64(st.Ino) != ino) {
		// The path led elsewhere (a directory above was moved), or the
		// file was moved away: it is out of reach.
		return nil, fmt.Errorf("the socket was bound to %s, and the file there now is another (moved by another process?)", path)
	}
	f := &File{dir: dir, name: base, path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}
	defer func() {
		if err != nil {
			if serr := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil && uint64(st.Dev) == f.dev && uint64(st.Ino) == f.ino {
				unix.Unlinkat(dir, base, 0)
			}
		}
	}()
	if err := setOwnerMode(dir, base, path, o); err != nil {
		return nil, err
	}
	if ready != nil {
		if err := ready(name); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// bindInPlace binds fd to name, which is path, absolute or as given; a
// stale socket in the way, which o allows to replace, is removed (if it is
// still the one judged) and bind tried again, a few times at most.
func bindInPlace(dir int, dirPath, base, path, name string, fd int, o Options) error {
	bind := func() (bool, error) {
		err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: name})
		if err == syscall.EADDRINUSE {
			return true, nil
		}
		return false, os.NewSyscallError("bind", err)
	}
	aside := func() (*private, func(), error) {
		p, err := makePrivate(dir, dirPath)
		if err != nil {
			return nil, nil, err
		}
		return p, p.remove, nil
	}
	return untilPlaced(dir, base, path, o, bind, aside)
}

// AdoptSame returns the socket file at path, to be removed later by
// Remove, provided it is the one with the identity dev and ino (from ID in
// the process that made it): for a socket this process was handed rather
// than bound. Any other file at path (another server's socket, or what a
// symbolic link on the way leads to) is an error, and is never removed.
func AdoptSame(path string, dev, ino uint64) (*File, error) {
	f, err := Adopt(path)
	if err != nil {
		return nil, err
	}
	if f.dev != dev || f.ino != ino {
		f.Close()
		return nil, fmt.Errorf("%s is another socket file than the one handed over", path)
	}
	return f, nil
}

// Adopt returns the socket file at path, to be removed later by Remove:
// for a socket this process was handed rather than bound. It is an error
// if what is at path is not a socket.
func Adopt(path string) (*File, error) {
	dir, _, base, err := openParent(path)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		unix.Close(dir)
		return nil, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		unix.Close(dir)
		return nil, fmt.Errorf("%s is %s, not a socket", path, fileKind(uint32(st.Mode)))
	}
	return &File{dir: dir, name: base, path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

func (f *File) remove() error {
	dirPath, _ := filepath.Split(f.path)
	p, err := makePrivate(f.dir, dirPath)
	if err != nil {
		return err
	}
	defer p.remove()
	_, err = removeIfSame(f.dir, f.name, f.path, f.dev, f.ino, p)
	return err
}

func (f *File) close() error {
	if f.dir < 0 {
		return nil
	}
	err := unix.Close(f.dir)
	f.dir = -1
	return err
}

// openParent opens the directory of path once, to work relative to it,
// and returns it, its path and the name of path in it.
func openParent(path string) (dir int, dirPath, base string, err error) {
	dirPath, base = filepath.Split(path) // dirPath is "" or ends in "/"
	dir, err = openDir(dirPath)
	return dir, dirPath, base, err
}

// openDir opens the directory path, to work relative to it.
func openDir(path string) (int, error) {
	if path == "" {
		path = "."
	}
	fd, err := unix.Open(path, openDirFlags, 0)
	switch err {
	case nil:
		return fd, nil
	case unix.ENOENT:
		return -1, &dirError{"the directory " + filepath.Clean(path) + " does not exist", err}
	case unix.ENOTDIR:
		return -1, &dirError{filepath.Clean(path) + " is not a directory", err}
	}
	return -1, &dirError{"cannot open the directory " + filepath.Clean(path), err}
}

// dirError is an error about the directory of a socket path: what is
// wrong, and the errno, which it unwraps to (so that errors.Is(err,
// fs.ErrNotExist) and fs.ErrPermission work).
type dirError struct {
	msg string
	err error
}

func (e *dirError) Error() string {
	if e.err == unix.ENOENT || e.err == unix.ENOTDIR {
		return e.msg // says it all
	}
	return e.msg + ": " + e.err.Error()
}

func (e *dirError) Unwrap() error { return e.err }

// occupant is the file at a socket path, pinned where the system allows
// (Linux: an O_PATH fd), so that the file probed and compared is the very
// file looked at, and its inode number cannot be given to another file
// meanwhile.
type occupant struct {
	st unix.Stat_t
	fd int // the pin, or -1
}

// look returns the file at base in dir, or nil if there is none. The
// caller releases it.
func look(dir int, base, path string) (*occupant, error) {
	c := &occupant{fd: -1}
	fd, err := pinFile(dir, base)
	switch {
	case err == nil && fd >= 0:
		c.fd = fd
		err = unix.Fstat(fd, &c.st)
	case err == nil:
		err = unix.Fstatat(dir, base, &c.st, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		c.release()
		if err == unix.ENOENT {
			return nil, nil
		}
		return nil, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return c, nil
}

// release unpins c.
func (c *occupant) release() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// judgeAt is judge of the file c at base in dir.
func judgeAt(dir int, base, path string, c *occupant, o Options) error {
	kind := ""
	if c.st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		kind = fileKind(uint32(c.st.Mode))
	}
	return judge(kind, func() (bool, error) { return probe(dir, base, path, c) }, func() string { return heldBy(path, c) }, o)
}

// heldBy returns " (held by pid 1234 (hello))", the processes that hold the
// listening socket whose file is c at path, where the system shows them
// (see package holder), or "". The kernel names a socket by the path it
// was bound to, which for one that Create made is in a private directory
// since removed (DIR/.anylisten-XXXXXXXX/NAME for DIR/NAME); a name is
// taken to be this socket's if it is the file c, now or in that form.
func heldBy(path string, c *occupant) string {
	base := filepath.Base(path)
	h := holder.Unix(func(name string) bool {
		if public, ok := PublicPath(name); ok {
			name = public
		}
		var st unix.Stat_t
		return filepath.Base(name) == base && unix.Lstat(name, &st) == nil &&
			st.Dev == c.st.Dev && st.Ino == c.st.Ino
	})
	if s := h.String(); s != "" {
		return " (held by " + s + ")"
	}
	return ""
}

// checkPath judges what is at base in dir before anything is made: nil if
// nothing is there, or if it may be replaced, or went meanwhile (place
// looks again), else judge's error.
func checkPath(dir int, base, path string, o Options) error {
	c, err := look(dir, base, path)
	if err != nil || c == nil {
		return err
	}
	defer c.release()
	if err := judgeAt(dir, base, path, c, o); !errors.Is(err, errStale) && !errors.Is(err, errChanged) {
		return err
	}
	return nil
}

// place moves the ready socket inner from the private directory p to base
// in dir without replacing anything (see untilPlaced).
func place(dir int, inner, base, path string, p *private, o Options) error {
	move := func() (bool, error) {
		err := renameNoReplace(p.fd, inner, dir, base)
		switch err {
		case nil:
			return false, nil
		case unix.EEXIST:
			return true, nil
		}
		return false, &os.PathError{Op: "rename into place", Path: path, Err: err}
	}
	return untilPlaced(dir, base, path, o, move, func() (*private, func(), error) { return p, func() {}, nil })
}

// untilPlaced calls put until it has put the socket at base in dir, a few
// times at most. When something is in the way (put says inWay), it is
// judged: a stale socket that o allows to replace is removed (if it is
// still the one judged), moved aside into the private directory aside
// gives (with what to call when done with it), and put tried again;
// anything else is the error that judge gives.
func untilPlaced(dir int, base, path string, o Options, put func() (inWay bool, err error), aside func() (*private, func(), error)) error {
	for range 3 {
		inWay, err := put()
		if err != nil || !inWay {
			return err
		}
		c, err := look(dir, base, path)
		if err != nil {
			return err
		}
		if c == nil {
			continue // gone meanwhile
		}
		err = judgeAt(dir, base, path, c, o)
		if errors.Is(err, errStale) {
			var p *private
			var done func()
			if p, done, err = aside(); err == nil {
				_, err = removeIfSame(dir, base, path, uint64(c.st.Dev), uint64(c.st.Ino), p)
				done()
			}
		}
		c.release()
		if err != nil && !errors.Is(err, errChanged) {
			return err
		}
	}
	return &InUseError{"the file at this path kept changing while it was checked; it is left alone"}
}

// removeIfSame removes the file base in dir if it is the socket dev/ino.
// unlink has no "only if it is this inode", so the file is first moved
// into the private directory p, where nobody else can touch it, then
// checked, and removed only if it is that socket; anything else is moved
// back under its name, which fails rather than replace a file put there
// meanwhile (then the error says where it is).
func removeIfSame(dir int, base, path string, dev, ino uint64, p *private) (removed bool, err error) {
	aside := base + ".aside"
	if err := unix.Renameat(dir, base, p.fd, aside); err != nil {
		if err == unix.ENOENT {
			return false, nil // removed meanwhile
		}
		return false, &os.PathError{Op: "move aside", Path: path, Err: err}
	}
	var st unix.Stat_t
	err = unix.Fstatat(p.fd, aside, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && uint64(st.Dev) == dev && uint64(st.Ino) == ino && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		if err := unix.Unlinkat(p.fd, aside, 0); err != nil {
			return false, &os.PathError{Op: "remove", Path: path, Err: err}
		}
		return true, nil
	}
	if err := renameNoReplace(p.fd, aside, dir, base); err != nil {
		p.kept = true
		return false, &InUseError{"the file at this path changed while it was checked, and another took its place when it was to be put back: it is at " +
			filepath.Join(p.path, aside)}
	}
	return false, nil
}

// private is a private directory: made by this process, mode 0700, in the
// directory of a socket path, so that what is in it is out of everybody
// else's reach.
type private struct {
	parent   int      // the directory it is in
	name     string   // its name there
	path     string   // its path, for errors
	fd       int      // the private directory itself
	dev, ino uint64   // its identity
	ours     []string // names of files of ours in it, removed with it
	kept     bool     // it holds a file not ours: keep it
	shared   bool     // other users can rename what is in the parent
}

// makePrivate makes a new private directory in the directory parent,
// whose path is parentPath ("" or ending in "/"). Its path is parentPath
// and its name, as they are: the kernel's name for a socket bound in it
// maps back to the socket's path by taking the name out.
func makePrivate(parent int, parentPath string) (*private, error) {
	for range 8 {
		// 8 base-36 digits, always 8, so that the name's length is fixed.
		const lo, hi = 36 * 36 * 36 * 36 * 36 * 36 * 36, 36 * 36 * 36 * 36 * 36 * 36 * 36 * 36
		name := PrivatePrefix + strconv.FormatUint(lo+rand.Uint64N(hi-lo), 36)
		path := parentPath + name
		if err := unix.Mkdirat(parent, name, 0o700); err != nil {
			if err == unix.EEXIST {
				continue
			}
			return nil, &dirError{"cannot create files in the directory " + filepath.Clean(parentPath) +
				" (the socket is made in a private directory there first)", err}
		}
		fd, err := unix.Openat(parent, name, openDirFlags|unix.O_NOFOLLOW, 0)
		if err != nil {
			// Out of fds, say: the empty directory goes (rmdir removes
			// neither a file nor a symbolic link put there meanwhile).
			unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR ||
			int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
			unix.Close(fd)
			return nil, fmt.Errorf("the private directory %s was replaced by another process before it was used", path)
		}
		var pst unix.Stat_t
		shared := unix.Fstat(parent, &pst) != nil || othersRename(&pst)
		return &private{parent: parent, name: name, path: path, fd: fd, dev: uint64(st.Dev), ino: uint64(st.Ino), shared: shared}, nil
	}
	return nil, fmt.Errorf("cannot make a private directory in %s: every name tried was taken", filepath.Clean(parentPath))
}

// othersRename reports whether users other than this process's (and
// root) can rename entries of the directory st: it is theirs, or they may
// write it and it has no sticky bit. (ACLs are not looked at.)
func othersRename(st *unix.Stat_t) bool {
	if euid := os.Geteuid(); int(st.Uid) != euid && st.Uid != 0 {
		return true
	}
	return st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0
}

// remove removes the files of ours in p, and p itself if it is still
// where it was made and holds nothing else.
func (p *private) remove() {
	for _, n := range p.ours {
		unix.Unlinkat(p.fd, n, 0)
	}
	var st unix.Stat_t
	if !p.kept && unix.Fstatat(p.parent, p.name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
		uint64(st.Dev) == p.dev && uint64(st.Ino) == p.ino {
		unix.Unlinkat(p.parent, p.name, unix.AT_REMOVEDIR)
	}
	unix.Close(p.fd)
}

// via returns the name to bind a socket in p to, and its name in p: base
// at its path, which is also the name the kernel reports for the socket
// (getsockname, the LocalAddr of accepted connections), unique and
// readable. Where other users can rename what is in the parent directory
// (it is theirs, or writable by them without the sticky bit), one of them
// could swap the private directory for a symbolic link between mkdir and
// bind; there the name is resolved through p's fd instead, if the system
// allows it (Linux: /proc/self/fd/N/NAME). Where a name is too long for
// sun_path, the socket is called "s" in p; where even that is, it is an
// error.
func (p *private) via(base string) (bound, inner string, err error) {
	fdOK := false
	for _, inner := range []string{base, "s"} {
		if !p.shared {
			if name := p.path + "/" + inner; len(name) <= maxSunPath {
				return name, inner, nil
			}
		}
		if name, ok := viaFD(p.fd, inner); ok {
			fdOK = true
			if len(name) <= maxSunPath {
				return name, inner, nil
			}
		}
	}
	if p.shared && !fdOK {
		if name := p.path + "/" + base; len(name) <= maxSunPath {
			return name, base, nil // the window above stays: see SECURITY.md
		}
	}
	return "", "", fmt.Errorf("the socket is bound in a private directory first, %s, and that path is too long for sun_path (%d bytes): "+
		"choose a path %d bytes shorter", p.path, maxSunPath, len(p.path+"/s")-maxSunPath)
}

// setOwnerMode gives the file base in dir (a private directory) the owner
// and mode of o, never following a symbolic link.
func setOwnerMode(dir int, base, path string, o Options) error {
	if o.UID >= 0 || o.GID >= 0 {
		if err := unix.Fchownat(dir, base, o.UID, o.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lchown", Path: path, Err: err}
		}
	}
	if o.Mode != 0 {
		// Nobody else can put a symbolic link into the private
		// directory, and Linux's fchmodat takes no AT_SYMLINK_NOFOLLOW.
		if err := unix.Fchmodat(dir, base, o.Mode, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: path, Err: err}
		}
	}
	return nil
}

// probe reports whether a server accepts connections on the socket file
// c at base in dir. A refused connect means the socket is stale (whatever
// its type: nothing is bound to the file); a connection, a full backlog
// (EAGAIN) or a live socket of another type (EPROTOTYPE) means it is live; no file
// (ENOENT) means it went meanwhile (errChanged). Where c is pinned, the
// connect goes through the pin, so it reaches c whatever is at the name
// now. The probe's connection is closed at once: a live server sees one
// empty connection.
func probe(dir int, base, path string, c *occupant) (bool, error) {
	name, ok := "", false
	if c.fd >= 0 {
		name, ok = procPath(c.fd)
	}
	if !ok {
		if name, ok = viaFD(dir, base); !ok {
			name = path
		}
	}
	conn, err := net.DialTimeout("unix", name, 5*time.Second)
	if err == nil {
		conn.Close()
		return true, nil
	}
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EPROTOTYPE):
		// A full backlog, or a live socket of another type (a datagram or
		// seqpacket socket refuses a stream connect so).
		return true, nil
	case errors.Is(err, unix.ECONNREFUSED):
		return false, nil
	case errors.Is(err, unix.ENOENT):
		return false, errChanged
	}
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
	}
	return false, err
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
