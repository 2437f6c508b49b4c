// Package httpdrain stops a net/http server without losing a request, for
// restarts that hand the listening sockets to a successor
// (anylisten.Upgrader) and for plain shutdowns.
//
// http.Server.Shutdown alone can lose a request: a connection that is
// sending its first request when Shutdown begins is closed without a
// response once the request is read, and a client does not retry a
// request on a fresh connection; the same happens to a connection that
// Serve has just accepted but not yet counted. A Drainer instead stops
// accepting first and waits until every connection accepted is counted,
// turns keep-alives off so that every response in flight says
// "Connection: close", waits until every HTTP/1 connection has been served
// and closed, and only then shuts the server down, which asks HTTP/2
// connections to finish (a graceful GOAWAY).
//
// The Drainer serves the listener itself (Serve, ServeTLS), or wraps it
// (Listener) for code that calls the server's Serve or ServeTLS itself,
// such as exporter-toolkit's web.Serve.
package httpdrain

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Drainer serves an http.Server and stops it without losing a request.
type Drainer struct {
	srv *http.Server

	mu    sync.Mutex
	conns map[net.Conn]connInfo // not yet closed or hijacked
	lns   map[*listener]struct{}
	// handoff counts the Accept calls in progress and the connections
	// Accept returned before the server came back to Accept: connections
	// the server may not have counted yet.
	handoff  int
	draining bool // Drain has begun
	changed  chan struct{}
	released chan struct{} // closed when Drain is done: Accept returns
	release  sync.Once
}

// connInfo is what the Drainer knows of a connection.
type connInfo struct {
	state http.ConnState // as ConnState last reported it
	since time.Time      // when it was reported
	other bool           // survived a sweep in this state, or h2: not HTTP/1 (HTTP/2)
	h2    bool           // agreed on HTTP/2 by ALPN (TLS)
	seen  bool           // h2 was looked at, on the first state after StateNew
}

// newIdle is how long a connection may stay new, without a request, before
// a pass of SetKeepAlivesEnabled(false) closes it: net/http counts one that
// has sent nothing for more than 5 s, in whole seconds, as idle.
const newIdle = 6 * time.Second

// New returns a Drainer for srv and installs its connection tracking in
// srv.ConnState (calling the hook already there, if any). Call it before
// serving, and serve through the Drainer: its Serve or ServeTLS, or the
// server's own Serve or ServeTLS on a listener from its Listener.
func New(srv *http.Server) *Drainer {
	d := &Drainer{
		srv:      srv,
		conns:    map[net.Conn]connInfo{},
		lns:      map[*listener]struct{}{},
		released: make(chan struct{}),
	}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		d.mu.Lock()
		switch st {
		case http.StateClosed, http.StateHijacked:
			delete(d.conns, c)
		case http.StateNew:
			d.conns[c] = connInfo{state: st, since: time.Now()}
		default:
			// A new state unsettles the connection: Drain looks at it
			// again, unless it is known to speak HTTP/2. Not one the
			// server hijacked: x/net's h2c serves those and reports
			// Active and Idle for them, never Closed.
			if old, ok := d.conns[c]; ok {
				h2 := old.h2
				if !old.seen { // the handshake is done by the first Active or Idle
					h2 = negotiatedH2(c)
				}
				d.conns[c] = connInfo{state: st, since: time.Now(), other: h2, h2: h2, seen: true}
			}
		}
		d.signalLocked()
		d.mu.Unlock()
		if prev != nil {
			prev(c, st)
		}
	}
	return d
}

// Listener returns ln wrapped so that Drain stops it, for a server whose
// Serve or ServeTLS the program (or a library such as exporter-toolkit's
// web.Serve) calls itself: srv.Serve(d.Listener(ln)). Only the listener is
// wrapped: Accept returns the connections of ln as they are (a
// *net.TCPConn stays one).
//
// Drain closes ln. From then on Accept blocks until Drain is done (every
// connection served and closed, or Drain's context done) and the server
// has closed the listener (Drain's srv.Shutdown does), and then returns
// ln's error, which wraps net.ErrClosed; srv.Serve then returns
// http.ErrServerClosed, so a program that ends when Serve returns ends
// only after the drain. Until Drain, Accept and Close are ln's; Close
// closes ln. A listener made once Drain has begun has ln closed at once.
// The listener must be served by the server given to New, whose accept
// loop calls Accept again after each connection: a connection counts for
// Drain once the server has seen it.
func (d *Drainer) Listener(ln net.Listener) net.Listener {
	l := &listener{Listener: ln, d: d, closed: make(chan struct{})}
	d.mu.Lock()
	draining := d.draining
	if !draining {
		d.lns[l] = struct{}{}
	}
	d.mu.Unlock()
	if draining {
		l.closeLn()
	}
	return l
}

// listener is a listener of Listener's.
type listener struct {
	net.Listener
	d      *Drainer
	out    bool          // Accept returned a connection and was not called again since
	closed chan struct{} // closed by Close

	closeOnce, lnOnce sync.Once
	lnErr             error // of closing ln
}

func (l *listener) Accept() (net.Conn, error) {
	d := l.d
	d.mu.Lock()
	// The server's accept loop is back: it has counted the connection
	// Accept returned last (its ConnState hook ran before this call).
	if l.out {
		l.out = false
		d.handoff--
	}
	// A call in progress counts too: ln may have taken a connection from
	// the kernel just as Drain closes it, and Drain must not shut the
	// server down before the server has seen it (net/http closes a
	// connection that reads its request after Shutdown began, unanswered).
	d.handoff++
	d.signalLocked()
	d.mu.Unlock()
	c, err := l.Listener.Accept()
	d.mu.Lock()
	if err == nil {
		l.out = true
		d.mu.Unlock()
		return c, nil
	}
	d.handoff--
	d.signalLocked()
	draining := d.draining
	d.mu.Unlock()
	if draining {
		// Return once Drain is done and the server has closed this
		// listener: srv.Shutdown (or Close) closes its listeners after
		// it marks itself shut down, so Serve returns ErrServerClosed.
		<-d.released
		<-l.closed
	}
	return nil, err
}

// Close closes ln once; a second Close reports net.ErrClosed, as package
// net's listeners do. A connection Accept returned counts from then on as
// the caller's, seen or not.
func (l *listener) Close() error {
	d := l.d
	d.mu.Lock()
	delete(d.lns, l)
	if l.out {
		l.out = false
		d.handoff--
		d.signalLocked()
	}
	d.mu.Unlock()
	first := false
	l.closeOnce.Do(func() { close(l.closed); first = true })
	if !first {
		return &net.OpError{Op: "close", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
	}
	return l.closeLn()
}

// closeLn closes ln, once.
func (l *listener) closeLn() error {
	l.lnOnce.Do(func() { l.lnErr = l.Listener.Close() })
	return l.lnErr
}

// Serve serves ln with the server, as srv.Serve(ln) does, until Drain or
// an Accept error. It returns http.ErrServerClosed once Drain has begun
// (and returns only after Drain is done), nil when ln ends by itself with
// an error that wraps net.ErrClosed (anylisten's inetd listener after its
// one connection, or a Close of ln by other code), and any other error
// that ended it as it is. Serve owns ln: it is closed when Serve returns,
// and Drain closes it.
func (d *Drainer) Serve(ln net.Listener) error {
	return d.serve(ln, d.srv.Serve)
}

// ServeTLS is Serve over TLS: it serves ln as srv.ServeTLS(ln, certFile,
// keyFile) does, with the certificate and key of those files, or of
// srv.TLSConfig when both names are empty and the config has a certificate.
// HTTP/2 is served as ServeTLS serves it (negotiated by ALPN unless srv
// turns it off), and Drain ends HTTP/2 connections gracefully too. It
// returns what Serve returns, or the error loading the certificate.
func (d *Drainer) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	return d.serve(ln, func(l net.Listener) error { return d.srv.ServeTLS(l, certFile, keyFile) })
}

func (d *Drainer) serve(ln net.Listener, serve func(net.Listener) error) error {
	l := d.Listener(ln)
	defer l.Close() // srv.ServeTLS does not when it fails before serving
	err := serve(l)
	d.mu.Lock()
	draining := d.draining
	d.mu.Unlock()
	switch {
	case draining:
		return http.ErrServerClosed
	case errors.Is(err, net.ErrClosed):
		return nil
	}
	return err
}

// Open returns the number of connections not yet closed (hijacked ones
// do not count).
func (d *Drainer) Open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// Drain stops the server without losing a request:
//
//  1. it turns keep-alives off, which closes idle connections and makes
//     every HTTP/1 response in flight end its connection (first, since a
//     wrapper such as netutil.LimitListener may wait for a connection to
//     close before it calls Accept again);
//  2. it closes the listeners given to Serve, ServeTLS and Listener, so
//     that the server accepts no more connections (a socket handed to a
//     successor stays open there, and the connections waiting in its
//     queue go to the successor), and waits until every Accept call in
//     progress has returned (a listener's Accept returns once it is
//     closed) and the server has counted every connection they returned;
//  3. it waits until every HTTP/1 connection is closed, serving the
//     requests of connections that were accepted but had not sent one
//     yet; one still new that sends nothing for about 6 s is closed, as
//     Shutdown does (net/http counts one silent for 5 s, in whole
//     seconds, as idle);
//  4. once only HTTP/2 connections are left (or none), it shuts the server
//     down (http.Server.Shutdown), which sends each HTTP/2 connection a
//     graceful GOAWAY, so that it finishes its streams in flight and
//     closes, runs the functions given to srv.RegisterOnShutdown, and
//     waits until every connection is closed.
//
// Drain returns nil when every connection was served and closed, and the
// errors of closing the listeners otherwise. If ctx is done first, the
// remaining connections are closed at once and Drain returns ctx's error.
// The listeners' Accept returns when the drain is done, so Serve (whoever
// calls it) returns http.ErrServerClosed just before Drain returns.
//
// Drain tells HTTP/2 connections (over TLS, or unencrypted where the server
// serves that itself: http.Protocols with UnencryptedHTTP2) from HTTP/1
// ones by what the server reports of them: an HTTP/2 connection is idle
// between its streams, but turning keep-alives off does not close it. One
// that has not finished its TLS handshake or sent its HTTP/2 preface counts
// as HTTP/1 until it does, or until it is closed for sending nothing (about
// 6 s; a TLS connection that agreed on h2 and sends no preface is held up
// to net/http's 10 s preface timeout). The GOAWAY of step 4 names the last
// stream the server has read: a request that a client sent on a fresh
// HTTP/2 connection in the same moment was not processed, and HTTP/2 lets
// the client retry it (Go's http.Transport does; curl 7.88 reports error
// 16 instead). An HTTP/2 connection that finishes its streams after step 1 also
// ends itself with a GOAWAY. Connections a handler hijacks (WebSocket,
// x/net's h2c.NewHandler) are not waited for: tell them through
// srv.RegisterOnShutdown (for h2c.NewHandler, call
// http2.ConfigureServer(srv, h2s) with the h2s given to it), and wait for
// them yourself.
//
// An idle keep-alive connection that a client reuses just as step 1
// closes it fails on the client's side; Go's http.Transport retries such
// a request when it is idempotent (GET, HEAD, or with an idempotency key).
// Drain may be called more than once; each call returns when the drain is
// done or its ctx is.
func (d *Drainer) Drain(ctx context.Context) error {
	// Keep-alives off first: it closes idle connections, which a wrapper
	// of the listener (netutil.LimitListener) may wait for before it
	// calls Accept again, which step 1 waits for.
	d.srv.SetKeepAlivesEnabled(false)
	d.mu.Lock()
	d.draining = true
	var lns []*listener
	for l := range d.lns {
		lns = append(lns, l)
	}
	d.mu.Unlock()
	var errs []error
	for _, l := range lns {
		if err := l.closeLn(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}

	var shutdown chan error // Shutdown's result, once it runs
	startShutdown := func() {
		shutdown = make(chan error, 1)
		go func() { shutdown <- d.srv.Shutdown(ctx) }()
	}
	abort := func() error {
		d.release.Do(func() { close(d.released) })
		d.srv.Close()
		if shutdown != nil {
			<-shutdown
		}
		return errors.Join(append(errs, ctx.Err())...)
	}

	// Step 2: every connection accepted is counted.
	for {
		d.mu.Lock()
		n, changed := d.handoff, d.changedLocked()
		d.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return abort()
		}
	}

	// Step 3 (keep-alives off again: connections accepted meanwhile).
	d.srv.SetKeepAlivesEnabled(false)
	sweep := time.NewTimer(time.Hour)
	sweep.Stop()
	defer sweep.Stop()
	for {
		now := time.Now()
		d.mu.Lock()
		if len(d.conns) == 0 {
			d.mu.Unlock()
			break
		}
		http1 := false
		var next time.Time // the first time a sweep can settle a connection
		for _, ci := range d.conns {
			if ci.other {
				continue
			}
			http1 = true
			if t, ok := ci.due(); ok && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		changed := d.changedLocked()
		d.mu.Unlock()

		if !http1 && shutdown == nil {
			startShutdown()
		}
		if !next.IsZero() && !next.After(now) {
			// Close idle connections, and new ones that sent nothing
			// for too long, as Shutdown does. One that is still open
			// afterwards is not idle or new to the server: it speaks
			// HTTP/2, whose connections net/http counts as active.
			d.srv.SetKeepAlivesEnabled(false)
			d.mu.Lock()
			for c, ci := range d.conns {
				if t, ok := ci.due(); ok && !t.After(now) {
					ci.other = true
					d.conns[c] = ci
				}
			}
			d.mu.Unlock()
			continue
		}
		if !next.IsZero() {
			sweep.Reset(next.Sub(now))
		}
		select {
		case <-changed:
		case <-sweep.C:
		case <-ctx.Done():
			return abort()
		}
		sweep.Stop()
	}

	// Step 4. Shutdown waits until every Serve has returned: let them.
	d.release.Do(func() { close(d.released) })
	if shutdown == nil {
		startShutdown()
	}
	err := <-shutdown
	shutdown = nil
	switch {
	case err == nil, errors.Is(err, net.ErrClosed): // the listeners Drain closed
	case ctx.Err() != nil:
		return abort()
	default:
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// negotiatedH2 reports whether c is a TLS connection that agreed on
// HTTP/2 by ALPN: it never has to be told idle by a sweep, and one whose
// streams never all end (a busy client) gets its GOAWAY from Shutdown.
func negotiatedH2(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}

// due reports when a pass of SetKeepAlivesEnabled(false) closes the
// connection if it speaks HTTP/1: at once when it is idle (keep-alives
// are off), 6 s after it was accepted when it is new. One that is active
// has a request in flight and is not due.
func (ci connInfo) due() (time.Time, bool) {
	switch ci.state {
	case http.StateIdle:
		return ci.since, true
	case http.StateNew:
		return ci.since.Add(newIdle), true
	}
	return time.Time{}, false
}

// changedLocked returns a channel that is closed at the next change of the
// connections or of the handoff count.
func (d *Drainer) changedLocked() <-chan struct{} {
	if d.changed == nil {
		d.changed = make(chan struct{})
	}
	return d.changed
}

// signalLocked tells the waiters of changedLocked. Nothing is allocated
// when nobody waits.
func (d *Drainer) signalLocked() {
	if d.changed != nil {
		close(d.changed)
		d.changed = nil
	}
}
