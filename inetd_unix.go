//go:build unix

package anylisten

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// stdinTaken is set once an inetd Listen has taken stdin and stdout over.
var stdinTaken struct {
	sync.Mutex
	done bool
}

// listenInetd serves what inetd (or systemd's --inetd, or socat) passed
// on stdin and stdout:
//   - a listening socket on stdin (inetd's wait mode): its native
//     listener, serving every connection, as sd-listen does;
//   - a connected socket on stdin (nowait mode): that one connection, the
//     real socket with its real peer address (unless it is one end of an
//     unnamed socketpair and stdout is something else);
//   - otherwise, such as two pipes: one connection that reads stdin and
//     writes stdout, with addresses that say "stdio".
//
// With allow lists (Options.UnixAllowUID, UnixAllowGID), only a UNIX
// socket will do: a listening one, whose connections its listener
// checks, or a connection, whose peer Listen checks; a refused peer's
// connection is shut down, so that nothing more is read from it or
// written to it, and Listen fails.
//
// In the last case stdin must be a pipe or socket open for reading and
// stdout a pipe or socket open for writing; stdout is not looked at when
// the socket on stdin carries the connection by itself. Anything else is
// an error that says which of the two is wrong and what it is: /dev/null
// (which is also what the Go runtime opens in place of a descriptor that
// was closed when the program started), a terminal, another device, a
// regular file or a directory. There is no connection to serve then, or
// its replies would be lost.
//
// The files are taken over: the listener holds duplicates, and stdin,
// plus stdout and stderr where they are the same socket or pipe as the
// connection, are pointed at /dev/null, so that closing the connection
// really closes it and nothing the program prints can corrupt it. If
// Listen fails, the files are left as they were.
func listenInetd(o *Options) (net.Listener, error) {
	stdinTaken.Lock()
	defer stdinTaken.Unlock()
	if stdinTaken.done {
		return nil, errors.New("stdin was already taken by an earlier Listen of inetd")
	}
	var st [3]unix.Stat_t
	var ok [3]bool
	for fd := range st {
		ok[fd] = unix.Fstat(fd, &st[fd]) == nil
	}
	same := func(a, b int) bool {
		return ok[a] && ok[b] && st[a].Dev == st[b].Dev && st[a].Ino == st[b].Ino
	}
	// detach points fd 0, and every other standard fd that shares one of
	// the given files, at /dev/null.
	detach := func(conn ...int) error {
		fds := []int{0}
		for _, fd := range []int{1, 2} {
			for _, c := range conn {
				if same(fd, c) {
					fds = append(fds, fd)
					break
				}
			}
		}
		return toDevNull(fds...)
	}
	if ok[0] && st[0].Mode&unix.S_IFMT == unix.S_IFSOCK {
		info, err := inspectFD(0)
		if err == nil {
			err = info.checkStream()
		}
		if err == nil {
			err = info.checkAllow(o)
		}
		if err != nil {
			return nil, fmt.Errorf("stdin: %w", err)
		}
		if info.listening || same(0, 1) || !unnamedUnix(info.local) {
			ln, err := fdListener(info, o)
			if err != nil {
				return nil, fmt.Errorf("stdin: %w", err)
			}
			if err := detach(0); err != nil {
				ln.Close()
				return nil, err
			}
			stdinTaken.done = true
			return ln, nil
		}
	}
	// stdin is checked first: whether stdout matters depends on it.
	if err := checkStdio(0, ok[0], &st[0]); err != nil {
		return nil, err
	}
	if err := checkStdio(1, ok[1], &st[1]); err != nil {
		return nil, err
	}
	if o.allowing() {
		return nil, fmt.Errorf("stdin and stdout are pipes: %w", o.unenforceable("a peer over pipes has no uid"))
	}
	r, err := stdioFile(0, "stdin")
	if err != nil {
		return nil, err
	}
	w, err := stdioFile(1, "stdout")
	if err != nil {
		r.close()
		return nil, err
	}
	if err := detach(0, 1); err != nil {
		r.close()
		w.close()
		return nil, err
	}
	stdinTaken.done = true
	return newOneConnListener(&stdioConn{r: r, w: w}), nil
}

// checkStdio returns an error unless fd, 0 or 1, whose Fstat gave st if
// ok, can be the reading (stdin) or writing (stdout) half of a
// connection: a pipe or a connected stream socket, open in that direction.
func checkStdio(fd int, ok bool, st *unix.Stat_t) error {
	name, wrongMode, what := "stdin", unix.O_WRONLY, "a pipe open only for writing"
	if fd == 1 {
		name, wrongMode, what = "stdout", unix.O_RDONLY, "a pipe open only for reading"
	}
	switch t := st.Mode & unix.S_IFMT; {
	case !ok:
		what = "closed"
	case t == unix.S_IFSOCK && !connectedStream(fd):
		what = "a socket that is not a connected stream socket (listening, datagram or unconnected)"
	case t == unix.S_IFIFO || t == unix.S_IFSOCK:
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || flags&unix.O_ACCMODE != wrongMode {
			return nil
		}
	default:
		what = describeFile(fd, st)
	}
	return fmt.Errorf("%s is %s, not a connection: inetd mode serves the socket, or the two pipes, "+
		"that inetd, systemd (--inetd, StandardInput=socket) or socat passes on stdin and stdout", name, what)
}

// connectedStream reports whether the socket fd is a connected stream
// socket, which can carry one half of a connection.
func connectedStream(fd int) bool {
	info, err := inspectFD(fd)
	if err != nil || info.typ != unix.SOCK_STREAM || info.listening {
		return false
	}
	_, err = unix.Getpeername(fd)
	return err == nil
}

// describeFile says what fd is, for an error, given its Fstat st, when it
// is neither a pipe nor a socket: "/dev/null (...)", or a kind such as "a
// regular file" followed by the quoted path where /proc/self/fd tells it
// (Linux).
func describeFile(fd int, st *unix.Stat_t) string {
	var kind string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		var null unix.Stat_t
		if unix.Stat("/dev/null", &null) == nil && null.Mode&unix.S_IFMT == unix.S_IFCHR && null.Rdev == st.Rdev {
			return "/dev/null (closed when the program started, or redirected there)"
		}
		kind = "a character device"
		// Terminals answer TIOCGWINSZ, whose name, unlike those of the
		// termios requests, is the same on every unix. A terminal that
		// does not is called a character device, and refused all the
		// same.
		if _, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil {
			kind = "a terminal"
		}
	case unix.S_IFBLK:
		kind = "a block device"
	case unix.S_IFREG:
		kind = "a regular file"
	case unix.S_IFDIR:
		kind = "a directory"
	default:
		kind = "neither a pipe nor a socket"
	}
	if path, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil {
		return fmt.Sprintf("%s (%q)", kind, path)
	}
	return kind
}

// unnamedUnix reports whether sa is the address of a UNIX socket without
// a name, as each end of a socket pair is. x/sys renders the empty name
// as "@" on Linux (as it renders the leading NUL of an abstract name) and
// as "" elsewhere.
func unnamedUnix(sa unix.Sockaddr) bool {
	u, ok := sa.(*unix.SockaddrUnix)
	return ok && (u.Name == "" || u.Name == "@")
}

// stdioFile duplicates fd, a pipe or a socket, into a stdioHalf. The file
// is made non-blocking, so that Go's poller serves it and deadlines work;
// since that flag is shared with whoever passed the file (a shell, say),
// closing the half puts it back.
func stdioFile(fd int, name string) (*stdioHalf, error) {
	nfd, err := dupCloexec(fd)
	if err != nil {
		return nil, err
	}
	h := &stdioHalf{}
	flags, err := unix.FcntlInt(uintptr(nfd), unix.F_GETFL, 0)
	if err == nil && flags&unix.O_NONBLOCK == 0 {
		// A second duplicate shares the file's flags and outlives h.f,
		// so that the flag is put back only after h.f's Close has
		// unblocked and waited out every Read and Write.
		keep, err := dupCloexec(nfd)
		if err != nil {
			unix.Close(nfd)
			return nil, err
		}
		if err := unix.SetNonblock(nfd, true); err != nil {
			unix.Close(keep)
			unix.Close(nfd)
			return nil, os.NewSyscallError("fcntl O_NONBLOCK", err)
		}
		h.restore = func() { unix.SetNonblock(keep, false); unix.Close(keep) }
	}
	h.f = os.NewFile(uintptr(nfd), name)
	return h, nil
}

// toDevNull points each fd at /dev/null.
func toDevNull(fds ...int) error {
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/dev/null", Err: err}
	}
	defer unix.Close(null)
	for _, fd := range fds {
		if err := unix.Dup2(null, fd); err != nil {
			return os.NewSyscallError("dup2", err)
		}
	}
	return nil
}
