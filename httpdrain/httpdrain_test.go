package httpdrain_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/httpdrain"
	"golang.org/x/net/netutil"
)

// drainTimeout is the context every Drain gets: long enough that a Drain
// that returns nil did not run into it.
const drainTimeout = 30 * time.Second

// gate is a handler that holds every request until it is opened, and says
// when one has arrived.
type gate struct {
	arrived chan string // the request's protocol, once it is in the handler
	open    chan struct{}
}

func newGate() *gate {
	return &gate{arrived: make(chan string, 10), open: make(chan struct{})}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.arrived <- r.Proto
	<-g.open
	io.WriteString(w, "done "+r.URL.Path)
}

// waitArrived returns the protocol of the next request the handler holds.
func (g *gate) waitArrived(t testing.TB) string {
	t.Helper()
	select {
	case p := <-g.arrived:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the handler")
		return ""
	}
}

func listenTCP(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// waitRefused dials addr until the connection is refused, which it is once
// Drain has closed the listener.
func waitRefused(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if err == nil {
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections (last dial: %v)", addr, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitOpen waits until d counts n open connections.
func waitOpen(t testing.TB, d *httpdrain.Drainer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Open() = %d, want %d", d.Open(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// drain runs Drain with drainTimeout and returns its result.
func drain(d *httpdrain.Drainer) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		done <- d.Drain(ctx)
	}()
	return done
}

func result(t testing.TB, what string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(2 * drainTimeout):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

func notYet(t testing.TB, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned (%v) while a request was in flight", what, err)
	default:
	}
}

// get sends a GET for path on conn and returns the body of the response.
func get(conn net.Conn, path string) (string, error) {
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// TestListenerDrainsInFlight serves through Listener, calling srv.Serve as
// exporter-toolkit's web.Serve does, and drains with a request in flight
// and a connection that sends its request only after Drain began.
func TestListenerDrainsInFlight(t *testing.T) {
	g := newGate()
	accepted := make(chan net.Conn, 10)
	srv := &http.Server{Handler: g, ConnState: func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			select {
			case accepted <- c:
			default:
			}
		}
	}}
	d := httpdrain.New(srv)
	tcp := listenTCP(t)
	addr := tcp.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(d.Listener(tcp)) }()

	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	type reply struct {
		body string
		err  error
	}
	busyReply := make(chan reply, 1)
	go func() {
		body, err := get(busy, "/busy")
		busyReply <- reply{body, err}
	}()
	g.waitArrived(t)
	late, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	waitOpen(t, d, 2)
	for range 2 {
		if c := <-accepted; fmt.Sprintf("%T", c) != "*net.TCPConn" {
			t.Errorf("the server got a %T, want the listener's own *net.TCPConn", c)
		}
	}

	drained := drain(d)
	waitRefused(t, addr)
	notYet(t, "Drain", drained)
	notYet(t, "srv.Serve", served)

	lateReply := make(chan reply, 1)
	go func() {
		body, err := get(late, "/late")
		lateReply <- reply{body, err}
	}()
	g.waitArrived(t)
	notYet(t, "Drain", drained)
	close(g.open)
	for _, r := range []struct {
		path string
		conn net.Conn
		ch   chan reply
	}{{"/busy", busy, busyReply}, {"/late", late, lateReply}} {
		got := <-r.ch
		if got.err != nil {
			t.Fatalf("GET %s: %v", r.path, got.err)
		}
		if want := "done " + r.path; got.body != want {
			t.Errorf("GET %s: body %q, want %q", r.path, got.body, want)
		}
		// Served, the connection ends: with "Connection: close" if
		// keep-alives were off when the response began, or closed idle.
		r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := r.conn.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("after GET %s, the connection read %d bytes, %v; want EOF", r.path, n, err)
		}
	}
	if err := result(t, "Drain", drained); err != nil {
		t.Errorf("Drain: %v", err)
	}
	if err := result(t, "srv.Serve", served); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("srv.Serve returned %v, want http.ErrServerClosed", err)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key to
// files and returns their names and a pool that trusts it.
func selfSigned(t testing.TB) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "httpdrain test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for name, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(name, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// serveTLS serves handler with Drainer.ServeTLS and returns the Drainer,
// the address and ServeTLS's result.
func serveTLS(t testing.TB, handler http.Handler) (*httpdrain.Drainer, string, *x509.CertPool, <-chan error) {
	t.Helper()
	certFile, keyFile, pool := selfSigned(t)
	// waitRefused's connections end in a handshake error, which the
	// server logs.
	srv := &http.Server{Handler: handler, ErrorLog: log.New(io.Discard, "", 0)}
	d := httpdrain.New(srv)
	ln := listenTCP(t)
	served := make(chan error, 1)
	go func() { served <- d.ServeTLS(ln, certFile, keyFile) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		d.Drain(ctx)
	})
	return d, ln.Addr().String(), pool, served
}

func client(t testing.TB, pool *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// fetch GETs url and returns the protocol and the body of the response.
func fetch(c *http.Client, url string) (proto, body string, err error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Proto, string(b), err
}

func TestServeTLS(t *testing.T) {
	g := newGate()
	close(g.open)
	d, addr, pool, served := serveTLS(t, g)
	proto, body, err := fetch(client(t, pool, false), "https://"+addr+"/tls")
	if err != nil {
		t.Fatal(err)
	}
	if proto != "HTTP/1.1" || body != "done /tls" {
		t.Errorf("got %s %q, want HTTP/1.1 %q", proto, body, "done /tls")
	}
	if err := result(t, "Drain", drain(d)); err != nil {
		t.Errorf("Drain: %v", err)
	}
	if err := result(t, "ServeTLS", served); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("ServeTLS returned %v, want http.ErrServerClosed", err)
	}
}

func TestServeTLSBadCertificate(t *testing.T) {
	d := httpdrain.New(&http.Server{})
	ln := listenTCP(t)
	err := d.ServeTLS(ln, filepath.Join(t.TempDir(), "missing.pem"), filepath.Join(t.TempDir(), "missing.key"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ServeTLS with missing files returned %v, want an error wrapping os.ErrNotExist", err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after ServeTLS failed, Accept returned %v, want net.ErrClosed (ServeTLS owns the listener)", err)
	}
}

// TestDrainHTTP2 drains HTTP/2 connections over TLS, one idle and one with
// a request in flight: both must end before Drain's context does (without
// a GOAWAY, Drain waits for that context and returns its error).
func TestDrainHTTP2(t *testing.T) {
	testDrainHTTP2(t, func(t *testing.T, h http.Handler) (*httpdrain.Drainer, string, *http.Client, <-chan error) {
		d, addr, pool, served := serveTLS(t, h)
		return d, "https://" + addr, client(t, pool, true), served
	})
}

// server starts a server of h, served by the Drainer it returns, and
// returns its URL, a client for it and what serving returns.
type server func(t *testing.T, h http.Handler) (d *httpdrain.Drainer, url string, c *http.Client, served <-chan error)

func testDrainHTTP2(t *testing.T, start server) {
	for _, inFlight := range []bool{false, true} {
		t.Run(fmt.Sprintf("inFlight=%v", inFlight), func(t *testing.T) {
			g := newGate()
			if !inFlight {
				close(g.open)
			}
			d, url, c, served := start(t, g)
			type reply struct {
				proto, body string
				err         error
			}
			replied := make(chan reply, 1)
			go func() {
				proto, body, err := fetch(c, url+"/h2")
				replied <- reply{proto, body, err}
			}()
			if p := g.waitArrived(t); p != "HTTP/2.0" {
				t.Fatalf("the request came over %s, want HTTP/2.0", p)
			}
			var r reply
			if !inFlight {
				r = <-replied // the connection is idle now
			}
			waitOpen(t, d, 1)
			drained := drain(d)
			waitRefused(t, strings.TrimPrefix(strings.TrimPrefix(url, "https://"), "http://"))
			if inFlight {
				notYet(t, "Drain", drained)
				close(g.open)
				r = <-replied
			}
			if r.err != nil || r.proto != "HTTP/2.0" || r.body != "done /h2" {
				t.Errorf("GET: %s %q %v; want HTTP/2.0 %q", r.proto, r.body, r.err, "done /h2")
			}
			if err := result(t, "Drain", drained); err != nil {
				t.Errorf("Drain: %v", err)
			}
			if err := result(t, "serving", served); !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serving returned %v, want http.ErrServerClosed", err)
			}
		})
	}
}

// oneConnListener hands out one connection and then, once it is closed,
// reports net.ErrClosed, as anylisten's inetd listener does.
type oneConnListener struct {
	conns chan net.Conn // holds the one connection until Accept takes it
	done  chan struct{} // closed when that connection is closed
}

type notifyConn struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *notifyConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	default:
	}
	<-l.done
	return nil, &net.OpError{Op: "accept", Net: "stdio", Err: net.ErrClosed}
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return &net.UnixAddr{Name: "stdio", Net: "stdio"} }

func TestServeOneConnectionReturnsNil(t *testing.T) {
	server, peer := net.Pipe()
	done := make(chan struct{})
	ln := &oneConnListener{conns: make(chan net.Conn, 1), done: done}
	ln.conns <- &notifyConn{Conn: server, done: done}
	d := httpdrain.New(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "inetd")
	})})
	served := make(chan error, 1)
	go func() { served <- d.Serve(ln) }()
	_, err := io.WriteString(peer, "GET / HTTP/1.0\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	if want := "\r\n\r\ninetd"; len(reply) < len(want) || string(reply[len(reply)-len(want):]) != want {
		t.Errorf("reply %q does not end in %q", reply, want)
	}
	if err := result(t, "Serve", served); err != nil {
		t.Errorf("Serve returned %v after the one connection, want nil", err)
	}
}

// TestDrainContextDone gives Drain a context that ends while a request is
// held: Drain returns the context's error, the connection is closed, and
// Serve returns.
func TestDrainContextDone(t *testing.T) {
	g := newGate()
	defer close(g.open)
	srv := &http.Server{Handler: g}
	d := httpdrain.New(srv)
	tcp := listenTCP(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(d.Listener(tcp)) }()
	conn, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	replied := make(chan error, 1)
	go func() {
		_, err := get(conn, "/held")
		replied <- err
	}()
	g.waitArrived(t)
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan error, 1)
	go func() { drained <- d.Drain(ctx) }()
	waitRefused(t, tcp.Addr().String())
	cancel()
	if err := result(t, "Drain", drained); !errors.Is(err, context.Canceled) {
		t.Errorf("Drain returned %v, want context.Canceled", err)
	}
	if err := result(t, "the held request", replied); err == nil {
		t.Error("the held request got a response; want its connection closed")
	}
	if err := result(t, "srv.Serve", served); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("srv.Serve returned %v, want http.ErrServerClosed", err)
	}
	// A listener made after Drain is closed at once.
	late := listenTCP(t)
	d.Listener(late)
	late.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := late.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a listener given to Listener after Drain returned %v, want net.ErrClosed", err)
	}
}

// From review: a listener wrapper that stops calling Accept until a
// connection closes (netutil.LimitListener, as Prometheus wraps
// exporter-toolkit's listener) must not hold Drain: keep-alives go off
// first, which closes the idle connection that holds the limit.
func TestDrainLimitListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	d := httpdrain.New(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(netutil.LimitListener(d.Listener(ln), 1)) }()
	c := &http.Client{} // keep-alive: its connection is idle after the response
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Drain(ctx); err != nil {
		t.Errorf("Drain: %v (open connections: %d)", err, d.Open())
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v, want http.ErrServerClosed", err)
	}
}

// From review: an HTTP/2 connection that always has a stream open never
// looks idle, and keep-alives off sends it no GOAWAY; Drain must send one
// (Shutdown) rather than wait until its context ends.
func TestDrainBusyHTTP2(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(40 * time.Millisecond)
		io.WriteString(w, "ok")
	})
	d, addr, pool, _ := serveTLS(t, h)
	c := client(t, pool, true)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	for i := range 2 { // two requests in flight at all times, overlapping
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if p, _, err := fetch(c, "https://"+addr+"/"); err == nil && p == "HTTP/2.0" {
					served.Add(1)
				}
			}
		}()
	}
	for served.Load() < 4 {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := d.Drain(ctx)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Errorf("Drain of a busy HTTP/2 connection: %v", err)
	}
}

// slowAccept is a listener whose Accept, once its listener gave it a
// connection, waits until release is closed before it returns it: the
// moment between the kernel's accept and the server's counting the
// connection, made long.
type slowAccept struct {
	net.Listener
	got     chan struct{} // a connection was accepted
	release chan struct{}
}

func (l *slowAccept) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.got <- struct{}{}
		<-l.release
	}
	return c, err
}

// TestDrainAcceptInFlight: a connection whose Accept is still returning
// when Drain closes the listener is served, not closed by a Shutdown that
// began meanwhile (net/http closes a connection that reads its request
// after Shutdown began, with no response). Drain must wait for Accept
// calls in flight before it counts the connections.
func TestDrainAcceptInFlight(t *testing.T) {
	inner := listenTCP(t)
	ln := &slowAccept{Listener: inner, got: make(chan struct{}, 1), release: make(chan struct{})}
	shutdownBegan := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "done "+r.URL.Path)
	})}
	srv.RegisterOnShutdown(func() { close(shutdownBegan) })
	d := httpdrain.New(srv)
	served := make(chan error, 1)
	go func() { served <- d.Serve(ln) }()

	conn, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	<-ln.got // accepted from the kernel; the server has not seen it
	drained := drain(d)
	// Let Accept return once Shutdown has begun (a broken Drain gets
	// there), or after a while (a correct one waits for Accept).
	select {
	case <-shutdownBegan:
	case <-time.After(200 * time.Millisecond):
	}
	close(ln.release)
	body, err := get(conn, "/late")
	if err != nil || body != "done /late" {
		t.Errorf("request on the connection accepted as Drain began: %q, %v", body, err)
	}
	if err := result(t, "Drain", drained); err != nil {
		t.Errorf("Drain: %v", err)
	}
	if err := result(t, "Serve", served); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v, want http.ErrServerClosed", err)
	}
}
