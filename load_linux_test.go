package anylisten

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
)

// loadTarget is one address the load test sends requests to, and what
// the server saw on it.
type loadTarget struct {
	name string  // "tcp", "unix", "abstract", "all/tcp", ...
	addr Address // what its clients dial
	key  string  // Network and String of the local address of its accepted connections

	// Planned before the clients start, per kind of client.
	clients  [2]int
	requests [2]int

	// Counted by the server and the clients.
	served, conns atomic.Int64    // requests served and connections accepted on key
	dials         [2]atomic.Int64 // connections made by the clients
	ok            [2]atomic.Int64 // requests that succeeded
	lastDone      [2]atomic.Int64 // nanoseconds from the start to when its last client finished
}

// dialed is the number of connections the clients made to tg.
func (tg *loadTarget) dialed() int64 { return tg.dials[0].Load() + tg.dials[1].Load() }

// The two kinds of clients of the load test: one connection for all of a
// client's requests, or a new connection for each request.
const (
	loadKeepAlive = iota
	loadPerRequest
)

var loadModeName = [2]string{"keep-alive", "conn-per-request"}

// loadFailures counts failed requests by target and error.
type loadFailures struct {
	mu    sync.Mutex
	total int
	byErr map[string]int
}

func (f *loadFailures) add(target, what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total++
	key := target + ": " + what
	if _, ok := f.byErr[key]; ok || len(f.byErr) < 200 {
		f.byErr[key]++
	} else {
		f.byErr[target+": (further distinct errors)"]++
	}
}

// TestLoad sends 100,000 HTTP requests from 200 concurrent clients (with
// -short: 5,000 from 50) to four servers: Listen on TCP, on a UNIX path
// and on an abstract name, and ListenAll of one of each. Half of the
// clients keep one connection for all their requests, the others open a
// new connection for each. Every request must succeed and reach the
// address it was sent to, every listener must accept exactly the
// connections that the clients made to it, and afterwards no fd, goroutine or
// socket file may be left.
//
// It is bounded, but not timed: the clients give up, and the test fails,
// once no request has finished for 30 s (a hang), or 15 s before go
// test's -timeout would kill the test, so that it fails with a report.
// However long the requests take, they must all succeed. (An idle 2-core
// machine needs about 5 s, 20 to 40 s with -race.)
func TestLoad(t *testing.T) {
	requests, clients := 100_000, 200
	if testing.Short() {
		requests, clients = 5_000, 50
	}
	const stall = 30 * time.Second
	var limit time.Duration // none without -timeout
	if d, ok := t.Deadline(); ok {
		limit = time.Until(d) - 15*time.Second
		if limit < 5*time.Second {
			t.Fatalf("-timeout leaves %v; the load test needs more", time.Until(d).Round(time.Second))
		}
	}
	perClient := requests / clients

	checkNoFDLeak(t)
	goroutines := runtime.NumGoroutine()

	// The servers: four listeners, six addresses.
	dir := testenv.SocketDir(t)
	abstract := fmt.Sprintf("@anylisten-load-%d-%d", os.Getpid(), time.Now().UnixNano())
	var lns []net.Listener
	for _, addrs := range [][]string{
		{"127.0.0.1:0"},
		{"unix:" + filepath.Join(dir, "load.sock")},
		{abstract},
		{"127.0.0.1:0", "unix:" + filepath.Join(dir, "all.sock"), abstract + "-all"},
	} {
		var ln net.Listener
		var err error
		if len(addrs) == 1 {
			ln, err = Listen(context.Background(), MustParseAddress(addrs[0]), nil)
		} else {
			ln, err = ListenAll(context.Background(), parseAll(t, addrs...), nil)
		}
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	var targets []*loadTarget
	for i, ln := range lns {
		members := []net.Addr{ln.Addr()}
		prefix := ""
		if m, ok := ln.Addr().(MultiAddr); ok {
			members, prefix = m, "all/"
		}
		if i == 3 && prefix == "" {
			t.Fatalf("ListenAll of three addresses has Addr %T %v, want a MultiAddr", ln.Addr(), ln.Addr())
		}
		for _, a := range members {
			name := "tcp"
			s := a.String()
			switch {
			case a.Network() != "unix":
			case strings.HasPrefix(s, "@"):
				name = "abstract"
			default:
				name, s = "unix", "unix:"+s
			}
			targets = append(targets, &loadTarget{name: prefix + name, addr: MustParseAddress(s), key: a.Network() + " " + a.String()})
		}
	}
	byKey := map[string]*loadTarget{}
	for _, tg := range targets {
		byKey[tg.key] = tg
	}
	var strays atomic.Int64 // requests or connections on an address no target has
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg := byKey[loadAddrKey(r.Context().Value(http.LocalAddrContextKey))]
		if tg == nil {
			strays.Add(1)
			http.Error(w, "unknown local address", http.StatusInternalServerError)
			return
		}
		tg.served.Add(1)
		io.WriteString(w, tg.name+" "+r.URL.Path)
	})
	connState := func(c net.Conn, s http.ConnState) {
		if s != http.StateNew {
			return
		}
		if tg := byKey[loadAddrKey(c.LocalAddr())]; tg != nil {
			tg.conns.Add(1)
		} else {
			strays.Add(1)
		}
	}
	type server struct {
		srv    *http.Server
		served chan error
	}
	var servers []server
	for _, ln := range lns {
		s := server{&http.Server{Handler: handler, ConnState: connState}, make(chan error, 1)}
		go func() { s.served <- s.srv.Serve(ln) }()
		servers = append(servers, s)
	}
	shutdown := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range servers {
			if err := s.srv.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
				s.srv.Close()
			}
			if err := <-s.served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		}
	}

	// The clients: client i sends to target i%6, keeping its connection
	// if i/6 is even; so every target gets clients of both kinds.
	type client struct {
		target *loadTarget
		mode   int
		id     int
	}
	var cs []client
	for i := range clients {
		tg, mode := targets[i%len(targets)], (i/len(targets))%2
		tg.clients[mode]++
		tg.requests[mode] += perClient
		cs = append(cs, client{tg, mode, i})
	}

	failures := &loadFailures{byErr: map[string]int{}}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var hardC <-chan time.Time // when to stop waiting for the clients
	if limit > 0 {
		stop := time.AfterFunc(limit, func() { cancel(fmt.Errorf("-timeout is near: the clients stop after %v", limit)) })
		defer stop.Stop()
		hard := time.NewTimer(limit + 10*time.Second) // the requests end once ctx is done
		defer hard.Stop()
		hardC = hard.C
	}
	var progress atomic.Int64 // requests finished, well or not
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dial := func(ctx context.Context, network, address string) (net.Conn, error) {
				conn, err := c.target.addr.DialContext(ctx, network, address)
				if err == nil {
					c.target.dials[c.mode].Add(1)
				}
				return conn, err
			}
			tr := &http.Transport{
				DialContext:         dial,
				DisableKeepAlives:   c.mode == loadPerRequest,
				MaxIdleConnsPerHost: 1,
				DisableCompression:  true,
			}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			for i := range perClient {
				if ctx.Err() != nil {
					for range perClient - i {
						failures.add(c.target.name, fmt.Sprintf("not sent: %v", context.Cause(ctx)))
					}
					break
				}
				path := fmt.Sprintf("/%d/%d", c.id, i)
				err := loadGet(ctx, hc, path, c.target.name+" "+path)
				progress.Add(1)
				if err != nil {
					failures.add(c.target.name, loadModeName[c.mode]+": "+err.Error())
					continue
				}
				c.target.ok[c.mode].Add(1)
			}
			d := int64(time.Since(start))
			for last := &c.target.lastDone[c.mode]; ; {
				if v := last.Load(); v >= d || last.CompareAndSwap(v, d) {
					break
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	watchdog := time.NewTicker(time.Second)
	defer watchdog.Stop()
wait:
	for last, since := int64(0), time.Now(); ; {
		select {
		case <-finished:
			break wait
		case <-watchdog.C:
			if n := progress.Load(); n != last {
				last, since = n, time.Now()
			} else if time.Since(since) > stall {
				cancel(fmt.Errorf("no request finished for %v: stalled after %d", stall, n))
			}
		case <-hardC:
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			for _, s := range servers {
				s.srv.Close()
			}
			t.Fatalf("the clients did not finish within %v (%v); goroutines:\n%s", limit+10*time.Second, context.Cause(ctx), buf)
		}
	}
	elapsed := time.Since(start)
	// Every connection made is accepted, the last ones maybe only now:
	// a client may dial a connection it then does not use.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		all := true
		for _, tg := range targets {
			all = all && tg.conns.Load() >= tg.dialed()
		}
		if all {
			break
		}
	}
	shutdown()

	// The report: throughput per address and kind of client (all run at
	// once on the same CPUs, so these are shares, not maxima).
	t.Logf("%d requests from %d clients (%d each) in %v: %.0f requests/s; %d failed",
		requests, clients, perClient, elapsed.Round(time.Millisecond), float64(requests)/elapsed.Seconds(), failures.total)
	for _, tg := range targets {
		for mode := range 2 {
			if tg.requests[mode] == 0 {
				continue
			}
			d := time.Duration(tg.lastDone[mode].Load())
			t.Logf("  %-12s %-16s %3d clients %6d requests over %6d connections in %7v: %5.0f requests/s",
				tg.name, loadModeName[mode], tg.clients[mode], tg.requests[mode], tg.dials[mode].Load(), d.Round(time.Millisecond), float64(tg.ok[mode].Load())/d.Seconds())
		}
	}

	if failures.total > 0 {
		t.Errorf("%d of %d requests failed:", failures.total, requests)
		keys := make([]string, 0, len(failures.byErr))
		for k := range failures.byErr {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.Errorf("  %d× %s", failures.byErr[k], k)
		}
	}
	if n := strays.Load(); n > 0 {
		t.Errorf("%d requests or connections arrived on a local address that is none of %v", n, byKey)
	}
	for _, tg := range targets {
		want := tg.requests[loadKeepAlive] + tg.requests[loadPerRequest]
		if got := tg.served.Load(); got != int64(want) {
			t.Errorf("%s (%s): the server served %d requests, want %d", tg.name, tg.addr, got, want)
		}
		if got, want := tg.conns.Load(), tg.dialed(); got != want {
			t.Errorf("%s (%s): %d connections accepted, want the %d the clients made", tg.name, tg.addr, got, want)
		}
		// The clients did what they are meant to: one connection per
		// request, or (mostly) one for all of them. net/http gives up a
		// connection whose request it has not finished writing 50 ms
		// after the response came (a loaded machine), so a keep-alive
		// client may open a few more.
		if got, want := tg.dials[loadPerRequest].Load(), int64(tg.requests[loadPerRequest]); got != want {
			t.Errorf("%s: the conn-per-request clients made %d connections for %d requests", tg.name, got, want)
		}
		if got, limit := tg.dials[loadKeepAlive].Load(), int64(tg.requests[loadKeepAlive]/10); got > limit {
			t.Errorf("%s: the keep-alive clients made %d connections for %d requests; want at most %d", tg.name, got, tg.requests[loadKeepAlive], limit)
		}
	}

	// Nothing left behind: socket files (Close removes them), goroutines
	// (waited for here, as the runtime ends them asynchronously), and fds
	// (checkNoFDLeak, at cleanup).
	if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
		t.Errorf("socket directory after Close: %v, %v; want it empty", ents, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutines grew from %d to %d:\n%s", goroutines, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// loadGet fetches path and checks that the body is want.
func loadGet(ctx context.Context, hc *http.Client, path, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://load"+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // without the URL, so that the same errors count together
		}
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("reading the body: %w", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %s: %q", resp.Status, body)
	case string(body) != want:
		return fmt.Errorf("body %q, want %q", body, want)
	}
	return nil
}

// loadAddrKey is the Network and String of a net.Addr, as a map key.
func loadAddrKey(v any) string {
	a, ok := v.(net.Addr)
	if !ok || a == nil {
		return ""
	}
	a = SocketPath(a)
	return a.Network() + " " + a.String()
}
