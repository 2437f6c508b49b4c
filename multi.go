package anylisten

import (
	"errors"
	"net"
	"strings"
	"sync"
	"time"
)

// multiListener merges several listeners into one: each has an accept
// loop that hands its connections to Accept through one unbuffered
// channel. The first ready connection wins, and blocked senders are served
// in turn, so no listener starves another. Connections pass through
// unwrapped.
type multiListener struct {
	lns   []net.Listener
	addr  MultiAddr
	conns chan acceptResult
	done  chan struct{} // closed by Close, after its grace period
	close sync.Once
	loops sync.WaitGroup

	// dead is closed when every accept loop has stopped by itself, with
	// lastErr the error that stopped the last one.
	dead    chan struct{}
	mu      sync.Mutex
	live    int
	lastErr error
}

type acceptResult struct {
	c   net.Conn
	err error
}

// newMultiListener takes ownership of lns (at least two).
func newMultiListener(lns []net.Listener) *multiListener {
	m := &multiListener{
		lns:   lns,
		conns: make(chan acceptResult),
		done:  make(chan struct{}),
		dead:  make(chan struct{}),
		live:  len(lns),
	}
	for _, ln := range lns {
		m.addr = append(m.addr, ln.Addr())
	}
	m.loops.Add(len(lns))
	for _, ln := range lns {
		go m.acceptLoop(ln)
	}
	return m
}

// acceptLoop passes everything ln.Accept returns to Accept, and stops
// after an error that is not temporary, or when m is closed. A listener
// that ends by itself (net.ErrClosed, as a one-connection listener does
// once its connection is served) just leaves the merge; another error
// stopping a loop is passed on.
func (m *multiListener) acceptLoop(ln net.Listener) {
	defer m.loops.Done()
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil && !isTemporary(err) {
			break
		}
		select {
		case m.conns <- acceptResult{c, err}:
		case <-m.done:
			if c != nil {
				c.Close()
			}
			return
		}
	}
	if !errors.Is(err, net.ErrClosed) {
		select {
		case m.conns <- acceptResult{nil, err}:
		case <-m.done:
			return
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live--; m.live == 0 {
		m.lastErr = err
		close(m.dead)
	}
}

// isTemporary reports whether an Accept error is worth retrying, as
// net/http's Serve decides: a timeout or a temporary condition such as a
// full fd table.
func isTemporary(err error) bool {
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary()
}

// Accept returns the next connection from any of the listeners, with its
// concrete type (*net.TCPConn, *net.UnixConn, ...). After Close, or once
// every listener has stopped, it returns an error that wraps
// net.ErrClosed (or what stopped the last of them).
func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case r := <-m.conns:
		// Even if Close has begun: a connection handed over is the
		// caller's, never dropped.
		return r.c, r.err
	case <-m.done:
	case <-m.dead:
		m.mu.Lock()
		err := m.lastErr
		m.mu.Unlock()
		if !errors.Is(err, net.ErrClosed) {
			return nil, err
		}
	}
	return nil, &net.OpError{Op: "accept", Net: m.addr.Network(), Addr: m.addr, Err: net.ErrClosed}
}

// closeGrace is how long Close lets a concurrent Accept take the
// connections that the accept loops took from the kernel before Close.
const closeGrace = 250 * time.Millisecond

// Close closes every listener and returns once every accept loop has
// stopped. A connection an accept loop already took from the kernel is not
// lost: an Accept running within closeGrace of Close (http.Serve's is)
// still returns it; after that it is closed. Accept then reports
// net.ErrClosed.
func (m *multiListener) Close() error {
	err := error(&net.OpError{Op: "close", Net: m.addr.Network(), Addr: m.addr, Err: net.ErrClosed})
	m.close.Do(func() {
		var errs []error
		for _, ln := range m.lns {
			errs = append(errs, ln.Close())
		}
		stopped := make(chan struct{})
		go func() { m.loops.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(closeGrace):
		}
		close(m.done)
		<-stopped
		err = errors.Join(errs...)
	})
	return err
}

// Addr returns a MultiAddr of every listener's address.
func (m *multiListener) Addr() net.Addr { return m.addr }

// MultiAddr is the Addr of a listener that merges several (ListenAll,
// sd-listen:*): the addresses of all of them, in order.
type MultiAddr []net.Addr

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
