//go:build unix

package anylisten

import (
	"errors"
	"fmt"
	"net"
	"os"
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
//   - anything else, such as two pipes: one connection that reads stdin
//     and writes stdout, with addresses that say "stdio".
//
// A terminal or a device such as /dev/null on stdin is an error: there is
// no connection to serve. The files are taken over: the listener holds
// duplicates, and stdin, plus stdout and stderr where they are the same
// socket or pipe as the connection, are pointed at /dev/null, so that
// closing the connection really closes it and nothing the program prints
// can corrupt it. If Listen fails, the files are left as they were.
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
	if !ok[0] {
		return nil, errors.New("stdin is closed: inetd mode serves the connection passed on stdin and stdout")
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
	switch st[0].Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return nil, errors.New("stdin is a terminal or a device such as /dev/null, not a connection: inetd mode " +
			"serves the connection that inetd, systemd (--inetd, StandardInput=socket) or socat passes on stdin and stdout")
	case unix.S_IFSOCK:
		info, err := inspectFD(0)
		if err == nil {
			err = info.checkStream()
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
	if !ok[1] {
		return nil, errors.New("stdout is closed: inetd mode writes the connection's output to stdout")
	}
	r, err := stdioFile(0, uint32(st[0].Mode), "stdin")
	if err != nil {
		return nil, err
	}
	w, err := stdioFile(1, uint32(st[1].Mode), "stdout")
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

// unnamedUnix reports whether sa is the address of a UNIX socket without
// a name, as each end of a socket pair is. x/sys renders the empty name
// as "@" on Linux (as it renders the leading NUL of an abstract name) and
// as "" elsewhere.
func unnamedUnix(sa unix.Sockaddr) bool {
	u, ok := sa.(*unix.SockaddrUnix)
	return ok && (u.Name == "" || u.Name == "@")
}

// stdioFile duplicates fd into a stdioHalf. Pipes and sockets are made
// non-blocking, so that Go's poller serves them and deadlines work; since
// that flag is shared with whoever passed the file (a shell, say), closing
// the half puts it back.
func stdioFile(fd int, mode uint32, name string) (*stdioHalf, error) {
	nfd, err := dupCloexec(fd)
	if err != nil {
		return nil, err
	}
	h := &stdioHalf{}
	if t := mode & unix.S_IFMT; t == unix.S_IFIFO || t == unix.S_IFSOCK {
		flags, err := unix.FcntlInt(uintptr(nfd), unix.F_GETFL, 0)
		if err == nil && flags&unix.O_NONBLOCK == 0 {
			// A second duplicate shares the file's flags and outlives
			// h.f, so that the flag is put back only after h.f's Close
			// has unblocked and waited out every Read and Write.
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
