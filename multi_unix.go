//go:build unix

package anylisten

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// readyWaiter watches a listening socket for a queued connection through a
// duplicate of its fd, registered with the runtime's poller as an
// *os.File: a listener's own SyscallConn offers Control only, while a
// file's RawConn can wait for readability.
type readyWaiter struct {
	ln deadliner
	f  *os.File
	rc syscall.RawConn
}

// readinessWaiter returns a readyWaiter for ln, or nil if ln has no
// socket of its own to watch.
func readinessWaiter(ln net.Listener) (waiter, error) {
	sc, ok := ln.(syscall.Conn)
	dl, ok2 := ln.(deadliner)
	if !ok || !ok2 {
		return nil, nil
	}
	nfd, err := dupSocket(sc)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(nfd), "watch "+ln.Addr().String())
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &readyWaiter{ln: dl, f: f, rc: rc}, nil
}

func (w *readyWaiter) wait() error {
	hungUp := false
	err := w.rc.Read(func(fd uintptr) bool {
		ready, hup := readable(fd)
		hungUp = hup
		return ready
	})
	if err == nil && hungUp {
		return errShutDown
	}
	return err
}

// readable reports whether fd has something to read (for a listening
// socket: a connection queued) or an error pending, without blocking, and
// whether it was shut down for reading (a UNIX listening socket that
// another holder shut down stays readable, and Accept finds nothing).
func readable(fd uintptr) (ready, hungUp bool) {
	p := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | pollReadHangup}}
	for {
		n, err := unix.Poll(p[:], 0)
		if err == unix.EINTR {
			continue
		}
		// On an error of poll itself, let Accept say what is wrong.
		return err != nil || n > 0, pollReadHangup != 0 && p[0].Revents&pollReadHangup != 0
	}
}

func (w *readyWaiter) accept() (net.Conn, error) { return acceptReady(w.ln) }

func (w *readyWaiter) stop() { w.f.Close() }
