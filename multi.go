package anylisten

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// multiListener merges several listeners into one without taking a
// connection from the kernel before its Accept is called. A watcher
// goroutine per listener waits until that listener's socket has a
// connection queued (it is readable), without accepting it, and offers the
// listener to Accept over one unbuffered channel; Accept then accepts from
// it and lets the watcher wait again. The first ready listener wins, and
// blocked watchers are served in turn, so no listener starves another.
// Connections pass through unwrapped, and a connection that no Accept took
// stays in the kernel's queue when the listener is closed, for whoever
// else holds the socket (a successor the sockets were handed to).
//
// A listener without a socket to watch (the one-connection kind, or any
// listener of the caller's own making) is watched by accepting ahead: its
// watcher accepts, and holds the connection until an Accept takes it.
type multiListener struct {
	members  []*member
	addr     MultiAddr
	ready    chan *member  // a member with a connection waiting, for one Accept
	done     chan struct{} // closed by Close
	close    sync.Once
	watchers sync.WaitGroup

	// dead is closed when every member has left by itself, with lastErr
	// the error that ended the last one.
	dead    chan struct{}
	mu      sync.Mutex
	live    int
	lastErr error
}

// member is one listener of a merge.
type member struct {
	ln net.Listener
	w  waiter
	// next is Accept's word to the watcher after it took from ln: true to
	// wait for the next connection, false when ln has ended.
	next chan bool
}

// waiter waits until a listener has a connection to accept.
type waiter interface {
	// wait blocks until the listener has a connection, or returns an error
	// once stop was called.
	wait() error
	// accept takes the connection. errRace means there was none after all
	// (another process sharing the socket took it first).
	accept() (net.Conn, error)
	// stop ends wait; after the watcher has stopped, it closes anything
	// still held.
	stop()
}

// errRace is a readiness waiter's accept that found the queue empty.
var errRace = errors.New("the connection was taken by another holder of the socket")

// errShutDown is a readiness waiter's wait that found the socket shut down
// (by another holder): it will never give a connection.
var errShutDown = errors.New("the listening socket was shut down")

type acceptResult struct {
	c   net.Conn
	err error
}

// newMultiListener takes ownership of lns (at least two). On an error (no
// fd left to watch a socket with) it closes nothing: lns are still the
// caller's.
func newMultiListener(lns []net.Listener) (*multiListener, error) {
	m := &multiListener{
		ready: make(chan *member),
		done:  make(chan struct{}),
		dead:  make(chan struct{}),
		live:  len(lns),
	}
	for _, ln := range lns {
		w, err := readinessWaiter(ln)
		if err != nil {
			for _, mb := range m.members {
				mb.w.stop()
			}
			return nil, err
		}
		if w == nil {
			w = &aheadWaiter{ln: ln}
		}
		m.members = append(m.members, &member{ln: ln, w: w, next: make(chan bool, 1)})
		m.addr = append(m.addr, ln.Addr())
	}
	m.watchers.Add(len(m.members))
	for _, mb := range m.members {
		go m.watch(mb)
	}
	return m, nil
}

// watch offers mb to Accept whenever its listener has a connection, and
// waits for Accept to take it before it looks again.
func (m *multiListener) watch(mb *member) {
	defer m.watchers.Done()
	for {
		if err := mb.w.wait(); err != nil {
			if err == errShutDown {
				// It leaves the merge as a listener closed by itself.
				m.leave(&net.OpError{Op: "accept", Net: mb.ln.Addr().Network(), Addr: mb.ln.Addr(),
					Err: fmt.Errorf("%w (%v)", net.ErrClosed, err)})
			}
			return
		}
		select {
		case m.ready <- mb:
		case <-m.done:
			return
		}
		select {
		case again := <-mb.next:
			if !again {
				return
			}
		case <-m.done:
			return
		}
	}
}

// Accept returns the next connection from any of the listeners, with its
// concrete type (*net.TCPConn, *net.UnixConn, ...), accepted from the
// kernel only now. A temporary error (a full fd table) is returned as the
// listener's Accept returns it. A listener that ends by itself (as a
// one-connection listener does once its connection is served) leaves the
// merge; another error ending one is returned once. After Close, or once
// every listener has ended, Accept returns an error that wraps
// net.ErrClosed (or what ended the last of them).
func (m *multiListener) Accept() (net.Conn, error) {
	for {
		select {
		case mb := <-m.ready:
			c, err := mb.w.accept()
			if err == nil || err == errRace || isTemporary(err) {
				mb.next <- true
				if err == errRace {
					continue
				}
				// Even if Close has begun: a connection taken is the
				// caller's, never dropped.
				return c, err
			}
			mb.next <- false
			m.leave(err)
			if !errors.Is(err, net.ErrClosed) {
				return nil, err
			}
		case <-m.done:
			return nil, m.closedError("accept")
		case <-m.dead:
			m.mu.Lock()
			err := m.lastErr
			m.mu.Unlock()
			if !errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			return nil, m.closedError("accept")
		}
	}
}

// leave records that a member ended with err.
func (m *multiListener) leave(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live--; m.live == 0 {
		m.lastErr = err
		close(m.dead)
	}
}

func (m *multiListener) closedError(op string) error {
	return &net.OpError{Op: op, Net: m.addr.Network(), Addr: m.addr, Err: net.ErrClosed}
}

// isTemporary reports whether an Accept error is worth retrying, as
// net/http's Serve decides: a timeout or a temporary condition such as a
// full fd table.
func isTemporary(err error) bool {
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary()
}

// Close closes every listener and returns at once, once every watcher has
// stopped (they stop at once). Connections no Accept took stay queued in
// the kernel until the last holder of the socket closes it; a connection
// a one-connection listener held is closed. A concurrent Accept returns
// net.ErrClosed, or a connection it had already taken.
func (m *multiListener) Close() error {
	err := m.closedError("close")
	m.close.Do(func() {
		close(m.done)
		var errs []error
		for _, mb := range m.members {
			errs = append(errs, mb.ln.Close())
			mb.w.stop()
		}
		m.watchers.Wait()
		for _, mb := range m.members {
			mb.w.stop() // closes what an accept-ahead watcher still holds
		}
		err = errors.Join(errs...)
	})
	return err
}

// Addr returns a MultiAddr of every listener's address.
func (m *multiListener) Addr() net.Addr { return m.addr }

// listeners returns the merged listeners, in order.
func (m *multiListener) listeners() []net.Listener {
	lns := make([]net.Listener, len(m.members))
	for i, mb := range m.members {
		lns[i] = mb.ln
	}
	return lns
}

// aheadWaiter watches a listener by accepting from it.
type aheadWaiter struct {
	ln   net.Listener
	held atomic.Pointer[acceptResult]
}

func (w *aheadWaiter) wait() error {
	c, err := w.ln.Accept()
	w.held.Store(&acceptResult{c, err})
	return nil
}

func (w *aheadWaiter) accept() (net.Conn, error) {
	r := w.held.Swap(nil)
	if r == nil {
		return nil, errRace
	}
	return r.c, r.err
}

// stop closes a connection accepted ahead that no Accept took; the
// listener's Close has ended wait.
func (w *aheadWaiter) stop() {
	if r := w.held.Swap(nil); r != nil && r.c != nil {
		r.c.Close()
	}
}

// deadliner is a listener whose Accept takes a deadline.
type deadliner interface {
	net.Listener
	SetDeadline(time.Time) error
}

// raceWait bounds an Accept that a readiness waiter found ready: if
// another process sharing the socket took the connection first, the
// Accept gives up after this long, so that the other listeners are not
// held up behind it.
const raceWait = 50 * time.Millisecond

// testHookReady, if set, runs between a watcher's finding ln ready and
// Accept's accepting from it.
var testHookReady func(ln net.Listener)

// acceptReady accepts from ln, which was readable a moment ago.
func acceptReady(ln deadliner) (net.Conn, error) {
	if testHookReady != nil {
		testHookReady(ln)
	}
	ln.SetDeadline(time.Now().Add(raceWait))
	var c net.Conn
	var err error
	if ul, ok := ln.(*UnixListener); ok && ul.allow != nil {
		// One connection from the kernel, not AcceptUnix's loop: one
		// its allow lists refused ends this Accept as a race does, and
		// the watcher waits for the next. Otherwise Accept would wait
		// raceWait for it here, holding up the other listeners, each
		// time a refused peer connects.
		var uc *net.UnixConn
		if uc, err = ul.acceptOne(); err == nil {
			c = uc
		}
	} else {
		c, err = ln.Accept()
	}
	ln.SetDeadline(time.Time{})
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || isRefused(err)) {
		return nil, errRace
	}
	return c, err
}

// MultiAddr is the Addr of a listener that merges several (ListenAll,
// sd-listen:*): the addresses of all of them, in order.
type MultiAddr []net.Addr

// TCPAddrs returns the TCP addresses a listener is bound to, given its
// Addr: the *net.TCPAddr itself, the TCP ones of a MultiAddr in order, and
// none for other addresses. It tells which port ":0" got, without the
// ln.Addr().(*net.TCPAddr) that panics on a UNIX listener or a merge.
func TCPAddrs(a net.Addr) []*net.TCPAddr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return []*net.TCPAddr{a}
	case MultiAddr:
		var out []*net.TCPAddr
		for _, x := range a {
			out = append(out, TCPAddrs(x)...)
		}
		return out
	}
	return nil
}

// Network returns "multi".
func (a MultiAddr) Network() string { return "multi" }

// String returns the addresses, each as network:address, separated by
// commas, as in "tcp:127.0.0.1:8080,unix:/run/app.sock".
func (a MultiAddr) String() string {
	var b strings.Builder
	for i, x := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x.Network() + ":" + x.String())
	}
	return b.String()
}
