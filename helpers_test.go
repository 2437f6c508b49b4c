package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// listenT listens on s and closes the listener at cleanup.
func listenT(t testing.TB, s string, o *Options) net.Listener {
	t.Helper()
	ln, err := Listen(context.Background(), MustParseAddress(s), o)
	if err != nil {
		t.Fatalf("Listen(%q): %v", s, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// roundTrip dials ln, accepts the connection, sends a byte each way and
// returns the server's end, closed at cleanup.
func roundTrip(t testing.TB, ln net.Listener) net.Conn {
	t.Helper()
	return roundTripDial(t, ln, nil)
}

// roundTripDial is roundTrip with a client that dial connects (nil: dial
// ln's Addr with package net).
func roundTripDial(t testing.TB, ln net.Listener, dial func() (net.Conn, error)) net.Conn {
	t.Helper()
	var client, server net.Conn
	var err error
	if dial == nil {
		client, server, err = exchange(ln)
	} else {
		client, server, err = exchangeWith(ln, dial)
	}
	if client != nil {
		t.Cleanup(func() { client.Close() })
	}
	if server != nil {
		t.Cleanup(func() { server.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	return server
}

// exchange is roundTrip for a child process, which has no testing.TB: it
// returns both ends of the connection, whichever it got to open, for the
// caller to close, and the first error.
func exchange(ln net.Listener) (client, server net.Conn, err error) {
	network, address := ln.Addr().Network(), ln.Addr().String()
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		address = net.JoinHostPort("localhost", strconv.Itoa(ta.Port))
	}
	return exchangeWith(ln, func() (net.Conn, error) {
		c, err := net.DialTimeout(network, address, 5*time.Second)
		if err != nil {
			return nil, fmt.Errorf("dial %s %s: %v", network, address, err)
		}
		return c, nil
	})
}

// exchangeWith is exchange with a client that dial connects, for
// listeners whose Addr package net cannot dial (a Windows named pipe's).
func exchangeWith(ln net.Listener, dial func() (net.Conn, error)) (client, server net.Conn, err error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	client, err = dial()
	if err != nil {
		return nil, nil, err
	}
	var r result
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		return client, nil, errors.New("Accept did not return within 10 s")
	}
	if r.err != nil {
		return client, nil, fmt.Errorf("Accept: %v", r.err)
	}
	server = r.c
	deadline := time.Now().Add(5 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	buf := make([]byte, 1)
	if _, err := client.Write([]byte{'x'}); err != nil {
		return client, server, err
	}
	if _, err := server.Read(buf); err != nil || buf[0] != 'x' {
		return client, server, fmt.Errorf("server read %q, %v", buf, err)
	}
	if _, err := server.Write([]byte{'y'}); err != nil {
		return client, server, err
	}
	if _, err := client.Read(buf); err != nil || buf[0] != 'y' {
		return client, server, fmt.Errorf("client read %q, %v", buf, err)
	}
	return client, server, nil
}

// checkNoFDLeak fails t at cleanup if the process has more open files
// than when it was called (Linux only; elsewhere it checks nothing).
func checkNoFDLeak(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return
	}
	before := openFDs(t)
	t.Cleanup(func() {
		// Let closes that the runtime finishes asynchronously land.
		deadline := time.Now().Add(2 * time.Second)
		for {
			after := openFDs(t)
			if len(after) <= len(before) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("open fds grew from %d to %d: %v", len(before), len(after), after)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func openFDs(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		fds = append(fds, e.Name()+"->"+target)
	}
	return fds
}

// closeEndsAccept closes ln while an Accept waits on it, and checks that
// the Accept ends with an error wrapping net.ErrClosed, as it does on
// package net's listeners.
func closeEndsAccept(t testing.TB, ln net.Listener) {
	t.Helper()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if c != nil {
			c.Close()
		}
		accepted <- err
	}()
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want an error wrapping net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a waiting Accept within 10 s")
	}
}
