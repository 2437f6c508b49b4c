package anylisten

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// Upgrader restarts a server without a refused connection, and without
// losing one that waits in the kernel's queue: it starts a new process of
// the same program (or another executable), hands it every listening
// socket, waits until it says it is serving, and leaves the old process to
// stop accepting, finish its requests and exit. The binary may have
// changed in between; the sockets stay open throughout.
//
// The hand-over speaks systemd's socket activation protocol: the
// successor gets the sockets as fds 3, 4, ... with LISTEN_FDS, LISTEN_PID
// and LISTEN_FDNAMES, each socket named after the address it serves. Its
// ordinary Listen calls for the same addresses take them over, so the
// successor needs no code of its own beyond calling Ready once it serves.
// Under systemd (Type=notify, NotifyAccess=all), Ready also tells systemd
// the successor's pid, so systemd follows it.
//
// Use the Upgrader's Listen, ListenAll and ListenPacket instead of the
// package's, so that it knows the sockets to hand over. The zero Upgrader is ready to use.
// Its fields must not change while Upgrade runs.
type Upgrader struct {
	// Path is the executable to start. Default: the path this program was
	// started as (os.Args[0], looked up in PATH, made absolute when the
	// package initialised; os.Executable's answer then, if that is not
	// the file that runs or names a file per process, as /proc/self/exe
	// does), and whatever is at that path at the time of
	// Upgrade: a new binary a deploy put there, even if it moved the old
	// file away or switched a symbolic link.
	Path string
	// Args are the successor's arguments, without the program name.
	// Default: this process's (os.Args[1:]).
	Args []string
	// Env is the successor's environment. Default: this process's
	// (os.Environ). LISTEN_* variables in it are replaced.
	Env []string
	// ReadyTimeout bounds the wait for the successor's Ready. Default 30 s.
	ReadyTimeout time.Duration

	mu       sync.Mutex
	handed   []handedListener
	upgraded bool
}

// Listen is the package's Listen, and records the listener to hand over on
// Upgrade.
func (u *Upgrader) Listen(ctx context.Context, addr Address, opts *Options) (net.Listener, error) {
	ln, err := Listen(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	u.handed = append(u.handed, handedListener{addr: addr, ln: ln})
	u.mu.Unlock()
	return ln, nil
}

// ListenAll is the package's ListenAll, and records the listeners to hand
// over on Upgrade.
func (u *Upgrader) ListenAll(ctx context.Context, addrs []Address, opts *Options) (net.Listener, error) {
	lns, err := listenEach(ctx, addrs, opts)
	if err != nil {
		return nil, err
	}
	ln, err := merge(lns)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	for i, l := range lns {
		u.handed = append(u.handed, handedListener{addr: addrs[i], ln: l})
	}
	u.mu.Unlock()
	return ln, nil
}

// ListenPacket is the package's ListenPacket, and records the datagram
// socket to hand over on Upgrade: the successor's ListenPacket of the same
// address takes it over, with the datagrams queued in it.
func (u *Upgrader) ListenPacket(ctx context.Context, addr Address, opts *Options) (net.PacketConn, error) {
	pc, err := ListenPacket(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	u.handed = append(u.handed, handedListener{addr: addr, pc: pc})
	u.mu.Unlock()
	return pc, nil
}

// Upgrade starts the successor with the socket of every listener that is
// still open, and returns its process id once it has called Ready. The
// caller then stops accepting and drains (closing its listeners does not
// close the sockets, which the successor holds, and no longer removes UNIX
// socket files), and exits; for net/http servers, package httpdrain does
// that without losing a request. For a datagram socket, the successor and
// the caller read from one queue: the caller stops reading (set a read
// deadline in the past, so that ReadFrom returns), answers what it has
// read, and then closes the socket; a datagram it has not read stays
// queued for the successor. A listener or datagram socket the program
// closed is not handed over.
//
// If the successor exits, or is not ready within ReadyTimeout or before
// ctx is done, it is stopped (SIGTERM, then SIGKILL after 2 s) and Upgrade
// returns an error: the caller keeps serving as before, so a bad deploy
// causes no outage, and a successor that says ready too late is told no,
// so it takes nothing over. Upgrade succeeds once per Upgrader; listeners
// that cannot be handed over (inetd's single connection) make it fail
// before anything is started. Outside Unix (Windows), Upgrade returns an
// error wrapping errors.ErrUnsupported.
func (u *Upgrader) Upgrade(ctx context.Context) (pid int, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.upgraded {
		return 0, errors.New("anylisten: Upgrade already handed the listeners to a successor")
	}
	if len(u.handed) == 0 {
		return 0, errors.New("anylisten: Upgrade with no listeners; listen through the Upgrader's Listen")
	}
	pid, err = u.upgrade(ctx)
	if err != nil {
		return 0, err
	}
	u.upgraded = true
	return pid, nil
}

// forget drops the listeners at the indexes closed (in order) from
// u.handed; u.mu is held.
func (u *Upgrader) forget(closed []int) {
	kept := u.handed[:0]
	for i, h := range u.handed {
		if len(closed) > 0 && closed[0] == i {
			closed = closed[1:]
			continue
		}
		kept = append(kept, h)
	}
	clear(u.handed[len(kept):])
	u.handed = kept
}
