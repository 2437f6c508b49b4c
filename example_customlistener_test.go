package anylisten_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/anylisten/anylisten"
)

// serve is a server written against net.Listener, not against a kind of
// socket: the program passes it anylisten.Listen's listener, a test an
// in-memory one.
func serve(ln net.Listener) error {
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello, %s\n", r.URL.Query().Get("name"))
	}))
}

// pipeListener is a net.Listener without a socket: each DialContext makes
// a net.Pipe and hands its server end to Accept. Its DialContext has the
// signature of net.Dialer's, for an http.Transport.
type pipeListener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		server.Close()
		client.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		server.Close()
		client.Close()
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// get asks the server behind dial for path and prints the body.
func get(dial func(ctx context.Context, network, address string) (net.Conn, error), path string) {
	client := &http.Client{Transport: &http.Transport{DialContext: dial}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://app" + path)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(os.Stdout, resp.Body)
}

// A server that takes a net.Listener can be tested without a socket, by
// passing it a listener of one's own, while the program passes it the one
// anylisten.Listen returns. This is tokio-listener's custom_connection
// example; in Go, net.Listener is the interface already.
func Example_customListener() {
	// In a test: an in-memory listener.
	mem := newPipeListener()
	defer mem.Close()
	go serve(mem)
	get(mem.DialContext, "/?name=test")

	// In the program: whatever address the operator gave.
	dir, err := os.MkdirTemp("", "")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	addr := anylisten.MustParseAddress("unix:" + filepath.Join(dir, "app.sock"))
	ln, err := anylisten.Listen(context.Background(), addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go serve(ln)
	get(addr.DialContext, "/?name=production")

	// Output:
	// Hello, test
	// Hello, production
}
