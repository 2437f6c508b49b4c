package anylisten

import (
	"context"
	"errors"
	"flag"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
)

func parseAll(t testing.TB, ss ...string) []Address {
	t.Helper()
	var l AddressList
	for _, s := range ss {
		if err := l.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestListenAll(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "all.sock")
	abstract := "@anylisten-all-" + strconv.Itoa(os.Getpid())
	ln, err := ListenAll(context.Background(), parseAll(t, "127.0.0.1:0", "unix:"+path, abstract), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	parts := strings.Split(addr, ",")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "tcp:127.0.0.1:") || parts[1] != "unix:"+path || parts[2] != "unix:"+abstract {
		t.Errorf("Addr() = %q, want tcp:127.0.0.1:PORT,unix:%s,unix:%s", addr, path, abstract)
	}
	tcpAddr := strings.TrimPrefix(parts[0], "tcp:")
	for _, d := range []struct{ network, address, conn string }{
		{"tcp", tcpAddr, "*net.TCPConn"},
		{"unix", path, "*net.UnixConn"},
		{"unix", abstract, "*net.UnixConn"},
	} {
		c, err := net.Dial(d.network, d.address)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := typeName(s); got != d.conn {
			t.Errorf("connection to %s: Accept returned %s, want %s", d.address, got, d.conn)
		}
		c.Close()
		s.Close()
	}

	// Close while Accept is blocked.
	errc := make(chan error, 1)
	go func() { _, err := ln.Accept(); errc <- err }()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Accept")
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *net.TCPConn:
		return "*net.TCPConn"
	case *net.UnixConn:
		return "*net.UnixConn"
	}
	return "other"
}

func TestListenAllOneBad(t *testing.T) {
	checkNoFDLeak(t)
	dir := testenv.SocketDir(t)
	good := filepath.Join(dir, "good.sock")
	busy := listenT(t, "127.0.0.1:0", nil)
	ln, err := ListenAll(context.Background(), parseAll(t, "unix:"+good, "@anylisten-bad-"+strconv.Itoa(os.Getpid()), busy.Addr().String()), nil)
	if ln != nil || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("ListenAll with a busy port = %v, %v; want EADDRINUSE naming %v", ln, err, busy.Addr())
	}
	if _, err := os.Lstat(good); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the UNIX listener opened before the failure left its file: %v", err)
	}
	// The abstract name opened before the failure is free again.
	listenT(t, "@anylisten-bad-"+strconv.Itoa(os.Getpid()), nil)
}

func TestListenAllEdgeCases(t *testing.T) {
	if ln, err := ListenAll(context.Background(), nil, nil); ln != nil || err == nil {
		t.Errorf("ListenAll(nil) = %v, %v; want an error", ln, err)
	}
	ln, err := ListenAll(context.Background(), parseAll(t, "127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, ok := ln.(*net.TCPListener); !ok {
		t.Errorf("ListenAll of one TCP address returned %T, want Listen's *net.TCPListener", ln)
	}
}

// Under load on all listeners at once, every listener's connections are
// served.
func TestListenAllLoad(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "load.sock")
	abstract := "@anylisten-load-" + strconv.Itoa(os.Getpid())
	ln, err := ListenAll(context.Background(), parseAll(t, "127.0.0.1:0", "unix:"+path, abstract), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tcpAddr := strings.TrimPrefix(strings.Split(ln.Addr().String(), ",")[0], "tcp:")
	const perListener = 200
	served := map[string]int{}
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			served[SocketPath(c.LocalAddr()).String()]++
			mu.Unlock()
			c.Write([]byte{1})
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	for _, d := range [][2]string{{"tcp", tcpAddr}, {"unix", path}, {"unix", abstract}} {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perListener / 4 {
					c, err := net.DialTimeout(d[0], d[1], 5*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					c.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err := c.Read(make([]byte, 1)); err != nil {
						t.Errorf("%s %s: %v", d[0], d[1], err)
					}
					c.Close()
				}
			}()
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, a := range []string{tcpAddr, path, abstract} {
		if served[a] != perListener {
			t.Errorf("%s: %d connections served, want %d (all: %v)", a, served[a], perListener, served)
		}
	}
}

// An address given twice (a flag set parsed twice repeats every --listen)
// is an error that says so, before anything is opened.
func TestListenAllGivenTwice(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "twice.sock")
	var list AddressList
	flags := flag.NewFlagSet("twice", flag.ContinueOnError)
	flags.Var(&list, "listen", "")
	args := []string{"--listen", "127.0.0.1:0", "--listen", path}
	for range 2 { // as nats-server parses its arguments twice
		if err := flags.Parse(args); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := ListenAll(context.Background(), list, nil)
	if err == nil {
		ln.Close()
		t.Fatal("ListenAll of addresses given twice succeeded")
	}
	want := `listen unix ` + path + `: the address is given twice (addresses 2 and 4 of 4; a flag set parsed twice repeats every --listen): address already in use`
	if err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("ListenAll error:\n got %v\nwant %s (wrapping EADDRINUSE)", err, want)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ListenAll left %s behind: %v", path, err)
	}
	// Port 0 twice is two ports.
	ln, err = ListenAll(context.Background(), []Address{MustParseAddress("127.0.0.1:0"), MustParseAddress("127.0.0.1:0")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := TCPAddrs(ln.Addr()); len(got) != 2 || got[0].Port == got[1].Port {
		t.Errorf("ListenAll of 127.0.0.1:0 twice bound %v, want two ports", got)
	}
	ln.Close()
	// With SO_REUSEPORT, one TCP address twice is two sockets.
	a := MustParseAddress("127.0.0.1:" + freePort(t))
	ln, err = ListenAll(context.Background(), []Address{a, a}, &Options{TCPReusePort: true})
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}
