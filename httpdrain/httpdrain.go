// Package httpdrain stops a net/http server without losing a request, for
// restarts that hand the listening sockets to a successor
// (anylisten.Upgrader) and for plain shutdowns.
//
// http.Server.Shutdown alone can lose a request: a connection that is
// sending its first request when Shutdown begins is closed without a
// response once the request is read, and a client does not retry a
// request on a fresh connection; the same happens to a connection that
// Serve has just accepted but not yet counted. A Drainer instead stops
// accepting first and waits until Serve has returned, turns keep-alives
// off so that every response in flight says "Connection: close", waits
// until every connection has been served and closed, and only then shuts
// the server down.
package httpdrain

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Drainer serves an http.Server and stops it without losing a request.
type Drainer struct {
	srv *http.Server

	mu       sync.Mutex
	conns    map[net.Conn]struct{} // not yet closed or hijacked
	lns      []net.Listener        // given to Serve
	draining bool
	serving  sync.WaitGroup // Serve calls that have not returned
}

// New returns a Drainer for srv and installs its connection tracking in
// srv.ConnState (calling the hook already there, if any). Call it before
// serving, and serve through the Drainer's Serve.
func New(srv *http.Server) *Drainer {
	d := &Drainer{srv: srv, conns: map[net.Conn]struct{}{}}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		d.mu.Lock()
		switch st {
		case http.StateNew:
			d.conns[c] = struct{}{}
		case http.StateClosed, http.StateHijacked:
			delete(d.conns, c)
		}
		d.mu.Unlock()
		if prev != nil {
			prev(c, st)
		}
	}
	return d
}

// Serve serves ln with the server, as srv.Serve(ln) does, until Drain (or
// an Accept error). It returns http.ErrServerClosed after Drain, and the
// error that ended it otherwise. Serve owns ln: Drain closes it.
func (d *Drainer) Serve(ln net.Listener) error {
	d.mu.Lock()
	if d.draining {
		d.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	d.lns = append(d.lns, ln)
	d.serving.Add(1)
	d.mu.Unlock()
	err := d.srv.Serve(ln)
	d.serving.Done()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining {
		return http.ErrServerClosed
	}
	return err
}

// Open returns the number of connections not yet closed.
func (d *Drainer) Open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// Drain stops the server without losing a request:
//
//  1. it closes the listeners given to Serve, so that the server accepts
//     no more connections (a socket handed to a successor stays open
//     there, and the connections waiting in its queue go to the
//     successor), and waits until every Serve has returned, so that each
//     connection accepted is counted;
//  2. it turns keep-alives off, which closes idle connections and makes
//     every response in flight end its connection;
//  3. it waits until every connection is closed, serving the requests of
//     connections that were accepted but had not sent one yet;
//  4. it shuts the server down.
//
// If ctx is done first, the remaining connections are closed at once and
// Drain returns ctx's error. HTTP/2 connections are not closed by turning
// keep-alives off (golang/go#26303): with them, Drain waits until ctx is
// done; give it a short one, or rely on Shutdown's GOAWAY. An idle keep-alive connection that a client
// reuses just as step 2 closes it fails on the client's side; Go's
// http.Transport retries such a request when it is idempotent (GET, HEAD,
// or with an idempotency key).
func (d *Drainer) Drain(ctx context.Context) error {
	d.mu.Lock()
	d.draining = true
	lns := d.lns
	d.mu.Unlock()
	var errs []error
	for _, ln := range lns {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	served := make(chan struct{})
	go func() { d.serving.Wait(); close(served) }()
	select {
	case <-served:
	case <-ctx.Done():
		d.srv.Close()
		return errors.Join(append(errs, ctx.Err())...)
	}
	d.srv.SetKeepAlivesEnabled(false)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for d.Open() > 0 {
		select {
		case <-ctx.Done():
			d.srv.Close()
			return errors.Join(append(errs, ctx.Err())...)
		case <-tick.C:
			// Again, as Shutdown does: a connection that has sent nothing
			// for 5 s counts as idle now, and is closed.
			d.srv.SetKeepAlivesEnabled(false)
		}
	}
	errs = append(errs, d.srv.Shutdown(ctx))
	return errors.Join(errs...)
}
