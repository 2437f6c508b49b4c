package anylisten

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"
)

// oneConnListener serves exactly one connection, as inetd's nowait mode
// and systemd's Accept=yes hand it over. The first Accept returns it; the
// next blocks until it is closed and then reports net.ErrClosed, so that
// http.Serve returns only after the connection was served in full.
type oneConnListener struct {
	addr   net.Addr
	mu     sync.Mutex
	conn   net.Conn      // nil once handed out
	closed chan struct{} // closed by Close
	done   chan struct{} // closed when the connection is closed
	close  sync.Once
}

// newOneConnListener makes a listener that hands out c once.
func newOneConnListener(c net.Conn) *oneConnListener {
	c, done := wrapOneConn(c)
	return &oneConnListener{addr: c.LocalAddr(), conn: c, closed: make(chan struct{}), done: done}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		select {
		case <-l.closed:
			c.Close()
		default:
			return c, nil
		}
	}
	select {
	case <-l.done:
	case <-l.closed:
	}
	return nil, &net.OpError{Op: "accept", Net: l.addr.Network(), Addr: l.addr, Err: net.ErrClosed}
}

// Close unblocks a waiting Accept. A connection that Accept has not
// returned yet is closed; one it returned belongs to the caller. Closing
// twice reports net.ErrClosed, as package net's listeners do.
func (l *oneConnListener) Close() error {
	first := false
	l.close.Do(func() { close(l.closed); first = true })
	if !first {
		return &net.OpError{Op: "close", Net: l.addr.Network(), Addr: l.addr, Err: net.ErrClosed}
	}
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }

// wrapOneConn gives c a Close that closes the returned channel, keeping
// every method of the concrete connection type (ReadFrom for sendfile,
// CloseWrite, SyscallConn) by embedding it. This is the one place a
// connection is wrapped: a single inetd connection must say when it is
// finished, and it is one connection, not a hot path.
func wrapOneConn(c net.Conn) (net.Conn, chan struct{}) {
	n := &closeNotify{done: make(chan struct{})}
	switch c := c.(type) {
	case *net.TCPConn:
		return &tcpOneConn{c, n}, n.done
	case *net.UnixConn:
		return &unixOneConn{c, n}, n.done
	case *stdioConn:
		c.n = n
		return c, n.done
	}
	return &anyOneConn{c, n}, n.done
}

type closeNotify struct {
	once sync.Once
	done chan struct{}
}

func (n *closeNotify) notify() { n.once.Do(func() { close(n.done) }) }

type tcpOneConn struct {
	*net.TCPConn
	n *closeNotify
}

func (c *tcpOneConn) Close() error { defer c.n.notify(); return c.TCPConn.Close() }

// NetConn returns the *net.TCPConn inside, as tls.Conn's NetConn does, for
// a type switch on *net.TCPConn. Closing it directly is not seen by the
// listener; close c.
func (c *tcpOneConn) NetConn() net.Conn { return c.TCPConn }

type unixOneConn struct {
	*net.UnixConn
	n *closeNotify
}

func (c *unixOneConn) Close() error { defer c.n.notify(); return c.UnixConn.Close() }

// NetConn returns the *net.UnixConn inside (see tcpOneConn.NetConn).
func (c *unixOneConn) NetConn() net.Conn { return c.UnixConn }

type anyOneConn struct {
	net.Conn
	n *closeNotify
}

func (c *anyOneConn) Close() error { defer c.n.notify(); return c.Conn.Close() }

// NetConn returns the connection inside (see tcpOneConn.NetConn).
func (c *anyOneConn) NetConn() net.Conn { return c.Conn }

// stdioConn is a connection over two files, a reader and a writer, as
// inetd gives a program pipes on stdin and stdout. Deadlines work where
// the files are pollable (pipes and sockets).
type stdioConn struct {
	r, w *stdioHalf
	n    *closeNotify // set by wrapOneConn
	once sync.Once
	err  error
}

// stdioHalf is one file of a stdioConn, closed once; restore, if not nil,
// runs just after (to undo what was done to a file shared with others).
type stdioHalf struct {
	f       *os.File
	restore func()
	once    sync.Once
	err     error
}

func (h *stdioHalf) close() error {
	h.once.Do(func() {
		// Close first: it unblocks pending I/O and waits for it to
		// return, which works only while the file is non-blocking.
		h.err = h.f.Close()
		if h.restore != nil {
			h.restore()
		}
	})
	return h.err
}

var stdioAddr = addrString{"stdio", "stdio"}

func (c *stdioConn) Read(b []byte) (int, error) {
	n, err := c.r.f.Read(b)
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

func (c *stdioConn) Write(b []byte) (int, error) {
	n, err := c.w.f.Write(b)
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// opError gives an error of the files the form package net's connections
// use: a *net.OpError (a net.Error, whose Timeout net/http relies on) that
// wraps os.ErrDeadlineExceeded for a deadline and net.ErrClosed once closed.
func (c *stdioConn) opError(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, os.ErrClosed) {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: stdioAddr.net, Source: stdioAddr, Addr: stdioAddr, Err: err}
}

// CloseWrite closes the writing file, so the peer reads EOF.
func (c *stdioConn) CloseWrite() error { return c.w.close() }

// CloseRead closes the reading file.
func (c *stdioConn) CloseRead() error { return c.r.close() }

// Close closes both files.
func (c *stdioConn) Close() error {
	c.once.Do(func() {
		c.err = errors.Join(c.r.close(), c.w.close())
		if c.n != nil {
			c.n.notify()
		}
	})
	return c.err
}

func (c *stdioConn) LocalAddr() net.Addr  { return stdioAddr }
func (c *stdioConn) RemoteAddr() net.Addr { return stdioAddr }

func (c *stdioConn) SetDeadline(t time.Time) error {
	return errors.Join(c.r.f.SetReadDeadline(t), c.w.f.SetWriteDeadline(t))
}
func (c *stdioConn) SetReadDeadline(t time.Time) error  { return c.r.f.SetReadDeadline(t) }
func (c *stdioConn) SetWriteDeadline(t time.Time) error { return c.w.f.SetWriteDeadline(t) }
