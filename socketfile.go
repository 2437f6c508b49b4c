package anylisten

import (
	"sync"

	"github.com/anylisten/anylisten/internal/sockfile"
)

// socketFile is the socket file of a UNIX socket bound to a path (a
// listener's or a datagram socket's), and whether its Close removes it:
// only while it is the file this process bound or took over, and never
// while an Upgrader hands the socket over.
type socketFile struct {
	mu     sync.Mutex
	file   *sockfile.File // nil for abstract and inherited sockets
	unlink bool           // remove the socket file on close
	closed bool
	// handing is set while an Upgrader hands the socket over: close then
	// leaves the file to endHandover, which knows who owns it.
	handing bool
}

// own makes f the socket's file, removed on close.
func (s *socketFile) own(f *sockfile.File) {
	s.mu.Lock()
	s.file, s.unlink = f, true
	s.mu.Unlock()
}

// close marks the socket closed and removes its file if it owns it and no
// hand-over is under way. Only the first call does anything.
func (s *socketFile) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.handing {
		return nil
	}
	return s.releaseLocked()
}

// releaseLocked removes the socket file if the socket owns it, and lets
// go of it; s.mu is held.
func (s *socketFile) releaseLocked() error {
	var err error
	if s.unlink {
		err = s.file.Remove()
	}
	s.file.Close()
	s.file, s.unlink = nil, false
	return err
}

// setUnlink sets whether close removes the file (if there is one).
func (s *socketFile) setUnlink(unlink bool) {
	s.mu.Lock()
	s.unlink = unlink && s.file != nil
	s.mu.Unlock()
}

// startHandover marks the socket as being handed over, so that a close
// meanwhile leaves the socket file, and returns whether the socket is
// open, and the identity of the socket file it owns, if it owns one.
func (s *socketFile) startHandover() (open, owned bool, dev, ino uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, false, 0, 0
	}
	s.handing = true
	if s.unlink {
		dev, ino = s.file.ID()
	}
	return true, s.unlink, dev, ino
}

// endHandover ends what startHandover began. If the successor took over,
// the socket file is no longer this process's to remove; if not, a close
// that came meanwhile removes it now.
func (s *socketFile) endHandover(handed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handing = false
	if handed {
		s.unlink = false
	}
	if s.closed {
		return s.releaseLocked()
	}
	return nil
}

// takeFile makes f, the socket file of a socket taken over from a
// predecessor, the socket's own, to be removed on close; if the socket
// was closed already, it is removed now.
func (s *socketFile) takeFile(f *sockfile.File) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.file.Close()
	s.file, s.unlink = f, true
	if s.closed {
		return s.releaseLocked()
	}
	return nil
}

// fileOwner is a socket that may own a socket file: *UnixListener and
// *UnixgramConn.
type fileOwner interface {
	socketFile() *socketFile
}
