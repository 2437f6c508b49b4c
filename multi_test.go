package anylisten

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

func tcpListeners(t *testing.T, n int) []net.Listener {
	t.Helper()
	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	return lns
}

// mustMerge merges lns, which it closes at cleanup if the merge fails.
func mustMerge(t *testing.T, lns []net.Listener) *multiListener {
	t.Helper()
	m, err := newMultiListener(lns)
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		t.Fatal(err)
	}
	return m
}

func TestMultiListenerAcceptsFromAll(t *testing.T) {
	checkNoFDLeak(t)
	lns := tcpListeners(t, 3)
	m := mustMerge(t, lns)
	defer m.Close()
	if got, want := m.Addr().String(), "tcp:"+lns[0].Addr().String()+",tcp:"+lns[1].Addr().String()+",tcp:"+lns[2].Addr().String(); got != want {
		t.Errorf("Addr() = %q, want %q", got, want)
	}
	for _, ln := range lns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := m.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(*net.TCPConn); !ok {
			t.Errorf("Accept returned %T, want *net.TCPConn", s)
		}
		if s.LocalAddr().String() != ln.Addr().String() {
			t.Errorf("connection to %v came from %v", ln.Addr(), s.LocalAddr())
		}
		s.Close()
	}
}

// Every listener's connections are served even while another one is
// flooded: the merge must not let a busy listener starve a quiet one.
func TestMultiListenerFairness(t *testing.T) {
	lns := tcpListeners(t, 2)
	m := mustMerge(t, lns)
	defer m.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	wg.Add(1)
	go func() { // the flood on listener 0, bounded
		defer wg.Done()
		for range 5000 {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.Dial("tcp", lns[0].Addr().String())
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	quiet := false
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !quiet; i++ {
		if i == 20 {
			c, err := net.Dial("tcp", lns[1].Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		s, err := m.Accept()
		if err != nil {
			t.Fatal(err)
		}
		quiet = s.LocalAddr().String() == lns[1].Addr().String()
		s.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the quiet listener's connection did not come in %d accepts", i)
		}
	}
}

func TestMultiListenerClose(t *testing.T) {
	checkNoFDLeak(t)
	lns := tcpListeners(t, 2)
	m := mustMerge(t, lns)
	// A queued connection, for the first Accept.
	c, err := net.Dial("tcp", lns[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 4)
	for range 4 {
		go func() {
			c, err := m.Accept()
			if err == nil {
				c.Close()
			}
			errc <- err
		}()
	}
	// Drain the one pending connection so that the blocked Accepts wait.
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for range 3 {
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock Accept")
		}
	}
	if err := m.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, err := m.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	for _, ln := range lns {
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("listener %v still open after Close: %v", ln.Addr(), err)
		}
	}
}

func TestOneConnListener(t *testing.T) {
	checkNoFDLeak(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	l := newOneConnListener(server)
	if l.Addr().String() != ln.Addr().String() {
		t.Errorf("Addr() = %v, want %v", l.Addr(), ln.Addr())
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(interface{ CloseWrite() error }); !ok {
		t.Errorf("%T lost CloseWrite", c)
	}
	if _, ok := c.(io.ReaderFrom); !ok {
		t.Errorf("%T lost ReadFrom (sendfile)", c)
	}
	if nc, ok := c.(interface{ NetConn() net.Conn }); !ok || nc.NetConn() != server {
		t.Errorf("%T has no NetConn giving the *net.TCPConn inside", c)
	}
	next := make(chan error, 1)
	go func() { _, err := l.Accept(); next <- err }()
	select {
	case err := <-next:
		t.Fatalf("second Accept returned %v while the connection was open", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.Close()
	select {
	case err := <-next:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Accept: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second Accept did not return after the connection was closed")
	}
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Error("the client's connection is still open")
	}
}

func TestOneConnListenerClose(t *testing.T) {
	checkNoFDLeak(t)
	a, b := net.Pipe()
	defer b.Close()
	l := newOneConnListener(a)
	// Close before Accept closes the connection that was never handed out.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Error("the connection was not closed")
	}

	c, d := net.Pipe()
	defer d.Close()
	l = newOneConnListener(c)
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	next := make(chan error, 1)
	go func() { _, err := l.Accept(); next <- err }()
	l.Close()
	select {
	case err := <-next:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept unblocked by Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Accept")
	}
}

// A connection queued when the merge is closed, with no other holder of
// the socket, is refused (the listener's close resets it): nothing leaks.
func TestMultiListenerCloseInFlight(t *testing.T) {
	checkNoFDLeak(t)
	lns := tcpListeners(t, 2)
	m := mustMerge(t, lns)
	c, err := net.Dial("tcp", lns[1].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// The client sees the end of the connection.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client read after Close: %v, want EOF or a reset", err)
	}
}

// Another holder of a socket (a successor the sockets were handed to) may
// take the connection a watcher saw: Accept must then go on to the other
// listeners rather than wait on that one for its next connection.
func TestMultiListenerStolenConnection(t *testing.T) {
	checkNoFDLeak(t)
	lns := tcpListeners(t, 2)
	other, err := lns[0].(*net.TCPListener).File() // the other holder of socket 0
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherLn, err := net.FileListener(other)
	if err != nil {
		t.Fatal(err)
	}
	defer otherLn.Close()
	m := mustMerge(t, lns)
	defer m.Close()
	if _, ahead := m.members[0].w.(*aheadWaiter); ahead {
		t.Skip("listeners are watched by accepting ahead on this platform")
	}
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := func(ln net.Listener) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Error(err)
			return
		}
		clients = append(clients, c)
	}
	stole := make(chan error, 1)
	testHookReady = func(ln net.Listener) {
		testHookReady = nil
		// Before Accept accepts from socket 0, the other holder takes
		// its one connection, and a client comes to socket 1.
		c, err := otherLn.Accept()
		if err == nil {
			c.Close()
		}
		stole <- err
		dial(lns[1])
	}
	defer func() { testHookReady = nil }()
	dial(lns[0])
	res := make(chan acceptResult, 1)
	go func() { c, err := m.Accept(); res <- acceptResult{c, err} }()
	if err := <-stole; err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.c.Close()
		if got := r.c.LocalAddr().String(); got != lns[1].Addr().String() {
			t.Errorf("Accept returned a connection to %s, want the one to %s", got, lns[1].Addr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept waits on the socket whose connection was taken, while another has one")
	}
}

func TestTCPAddrs(t *testing.T) {
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	tcp6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 9090}
	unix := &net.UnixAddr{Name: "/run/app.sock", Net: "unix"}
	for _, tt := range []struct {
		in   net.Addr
		want []*net.TCPAddr
	}{
		{tcp, []*net.TCPAddr{tcp}},
		{unix, nil},
		{MultiAddr{unix, tcp, tcp6}, []*net.TCPAddr{tcp, tcp6}},
		{MultiAddr{unix}, nil},
		{nil, nil},
	} {
		got := TCPAddrs(tt.in)
		if len(got) != len(tt.want) {
			t.Errorf("TCPAddrs(%v) = %v, want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("TCPAddrs(%v) = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}
