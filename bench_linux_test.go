package anylisten

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The benchmarks run every case twice in the same process, on the same
// kind of socket: impl=raw with package net's own listener, impl=anylisten
// with anylisten's (for sd-listen: the listener Listen makes of an
// inherited TCP socket). Compare them with benchstat -col /impl, or with
// internal/bench/compare.sh, which interleaves rounds of both and prints
// the median ratios.

// benchKind is a kind of socket a benchmark listens on.
type benchKind struct {
	name    string
	network string
	address func(tb testing.TB) string // a fresh address, for net.Listen and ParseAddress alike
}

var benchKinds = []benchKind{
	{"sd-listen", "tcp", func(testing.TB) string { return "127.0.0.1:0" }},
	{"tcp", "tcp", func(testing.TB) string { return "127.0.0.1:0" }},
	{"unix", "unix", func(tb testing.TB) string {
		dir, err := os.MkdirTemp("", "")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.RemoveAll(dir) })
		return filepath.Join(dir, "b.sock")
	}},
	{"abstract", "unix", func(testing.TB) string {
		return fmt.Sprintf("@anylisten-bench-%d-%d", os.Getpid(), time.Now().UnixNano())
	}},
}

// listenBoth returns a listener of kind k: package net's for raw, else
// anylisten's.
func listenBoth(tb testing.TB, k benchKind, raw bool) net.Listener {
	tb.Helper()
	address := k.address(tb)
	var ln net.Listener
	var err error
	switch {
	case raw && k.name == "unix":
		// anylisten binds in a private directory (.anylisten- and 8
		// characters) and then moves the socket to its path; the kernel
		// keeps the name it was bound to, and copies it into each
		// accepted connection's LocalAddr. Package net gets a name as
		// long, for the same cost per connection. (README's "UNIX socket
		// safety" says what the longer name costs.)
		dir, base := filepath.Split(address)
		sub := filepath.Join(dir, ".raw-listener-xxxxx")
		if err := os.Mkdir(sub, 0o700); err != nil {
			tb.Fatal(err)
		}
		ln, err = net.Listen(k.network, filepath.Join(sub, base))
	case raw:
		ln, err = net.Listen(k.network, address)
	case k.name == "sd-listen":
		ln, err = inheritedForBench(address)
	default:
		s := address
		if k.name == "unix" {
			s = "unix:" + address
		}
		ln, err = Listen(context.Background(), MustParseAddress(s), nil)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// dialer returns a function that dials ln's address, for http.Transport.
func dialer(ln net.Listener) func(ctx context.Context, _, _ string) (net.Conn, error) {
	network, address := ln.Addr().Network(), ln.Addr().String()
	var d net.Dialer
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, address)
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchHTTP runs 16 concurrent HTTP clients against a trivial handler
// served from ln, and reports the CPU time per request of the whole
// process (client and server) besides the wall time.
func benchHTTP(b *testing.B, ln net.Listener, keepAlive bool) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "Hello, world\n")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	tr := &http.Transport{DialContext: dialer(ln), MaxIdleConnsPerHost: 64, DisableKeepAlives: !keepAlive}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.SetParallelism(8)
	b.ReportAllocs()
	start := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get("http://bench/")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkHTTP measures keep-alive HTTP/1.1 requests, and
// BenchmarkHTTPNoKeepAlive one connection per request (the accept rate).
func BenchmarkHTTP(b *testing.B) {
	benchEachKind(b, func(b *testing.B, ln net.Listener) { benchHTTP(b, ln, true) })
}
func BenchmarkHTTPNoKeepAlive(b *testing.B) {
	benchEachKind(b, func(b *testing.B, ln net.Listener) { benchHTTP(b, ln, false) })
}

func benchEachKind(b *testing.B, f func(*testing.B, net.Listener)) {
	for _, k := range benchKinds {
		b.Run(k.name, func(b *testing.B) {
			b.Run("impl=raw", func(b *testing.B) { f(b, listenBoth(b, k, true)) })
			b.Run("impl=anylisten", func(b *testing.B) { f(b, listenBoth(b, k, false)) })
		})
	}
}

// BenchmarkAccept measures connect, accept and close, with the allocations
// of the whole round.
func BenchmarkAccept(b *testing.B) {
	benchEachKind(b, func(b *testing.B, ln net.Listener) {
		benchDialAccept(b, ln, ln.Addr())
	})
}

// benchDialAccept connects to target, accepts from ln and closes both
// ends, b.N times, one at a time.
func benchDialAccept(b *testing.B, ln net.Listener, target net.Addr) {
	network, address := target.Network(), target.String()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial(network, address)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		c.Close()
	}
}

// benchAcceptLoad has 8 goroutines connect and close as fast as they can,
// spread over targets, while the benchmark accepts from ln: the accept
// rate of one listener, or of a merge.
func benchAcceptLoad(b *testing.B, ln net.Listener, targets []net.Addr) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := targets[i%len(targets)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial(a.Network(), a.String())
				if err != nil {
					continue
				}
				c.Close()
			}
		}()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.StopTimer()
	close(stop)
	ln.Close() // unblocks dialers waiting on a full backlog
	wg.Wait()
}

// BenchmarkListenAll compares the accept rate of one raw TCP listener with
// ListenAll merging one, two and four.
func BenchmarkListenAll(b *testing.B) {
	b.Run("impl=raw", func(b *testing.B) {
		ln := listenBoth(b, benchKinds[1], true)
		benchAcceptLoad(b, ln, []net.Addr{ln.Addr()})
	})
	for _, n := range []int{1, 2, 4} {
		b.Run("impl=all"+strconv.Itoa(n), func(b *testing.B) {
			addrs := make([]Address, n)
			for i := range addrs {
				addrs[i] = MustParseAddress("127.0.0.1:0")
			}
			ln, err := ListenAll(context.Background(), addrs, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			targets := []net.Addr{ln.Addr()}
			if m, ok := ln.Addr().(MultiAddr); ok {
				targets = m
			}
			benchAcceptLoad(b, ln, targets)
		})
	}
}

// BenchmarkListenAllAccept measures one connect, accept and close at a
// time, through one raw TCP listener and through ListenAll of two (every
// connection to the first): the latency the merge adds to a connection.
func BenchmarkListenAllAccept(b *testing.B) {
	for _, n := range []int{0, 2} {
		name := "impl=raw"
		if n > 0 {
			name = "impl=all" + strconv.Itoa(n)
		}
		b.Run(name, func(b *testing.B) {
			var ln net.Listener
			var target net.Addr
			if n == 0 {
				ln = listenBoth(b, benchKinds[1], true)
				target = ln.Addr()
			} else {
				addrs := make([]Address, n)
				for i := range addrs {
					addrs[i] = MustParseAddress("127.0.0.1:0")
				}
				var err error
				if ln, err = ListenAll(context.Background(), addrs, nil); err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				target = ln.Addr().(MultiAddr)[0]
			}
			benchDialAccept(b, ln, target)
		})
	}
}

// BenchmarkParseAddress parses each form.
func BenchmarkParseAddress(b *testing.B) {
	for _, s := range []string{
		"127.0.0.1:8080", "[::1]:8080", ":8080", "8080", "localhost:8080",
		"/run/app.sock", "./app.sock", "unix:app.sock", "@name",
		"inetd", "sd-listen", "sd-listen:http", "fd://3", "vsock:any:1024",
	} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := ParseAddress(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// inheritedForBench makes the listener sd-listen makes of an inherited
// socket (a TCP socket passed as an fd, inspected and taken over), from a
// socket this process opens: the environment of the benchmark process has
// no LISTEN_FDS.
func inheritedForBench(address string) (net.Listener, error) {
	raw, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	f, err := raw.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := inspectFD(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	return fdListener(info, &Options{})
}

// BenchmarkCopyFile serves a 64 MiB file over each accepted connection
// with io.Copy, as http.ServeContent does: with the kernel's own
// connection that is sendfile, so no byte passes through user space.
func BenchmarkCopyFile(b *testing.B) {
	const size = 64 << 20
	f, err := os.CreateTemp("", "")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	benchEachKind(b, func(b *testing.B, ln net.Listener) {
		network, address := ln.Addr().Network(), ln.Addr().String()
		errc := make(chan error, 1)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					errc <- nil
					return
				}
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					errc <- err
					return
				}
				_, err = io.Copy(c, f)
				c.Close()
				if err != nil {
					errc <- err
					return
				}
			}
		}()
		b.SetBytes(size)
		start := cpuTime()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c, err := net.Dial(network, address)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, c); err != nil || n != size {
				b.Fatalf("read %d bytes, %v", n, err)
			}
			c.Close()
		}
		b.StopTimer()
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		ln.Close()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkParseAddrPortBaseline is what parsing a numeric TCP address
// costs with the standard library alone (net.SplitHostPort,
// netip.ParseAddr, strconv.ParseUint), for comparison with
// BenchmarkParseAddress/127.0.0.1:8080 in the same run.
func BenchmarkParseAddrPortBaseline(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		host, port, err := net.SplitHostPort("127.0.0.1:8080")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			b.Fatal(err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListenUnix measures Listen and Close of a UNIX socket path:
// package net's against anylisten's, which binds in a private directory,
// moves the socket into place and removes it through a private directory
// again (see internal/sockfile).
func BenchmarkListenUnix(b *testing.B) {
	dir, err := os.MkdirTemp("", "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "l.sock")
	addr := MustParseAddress("unix:" + path)
	b.Run("impl=raw", func(b *testing.B) {
		for range b.N {
			ln, err := net.Listen("unix", path)
			if err != nil {
				b.Fatal(err)
			}
			ln.Close()
		}
	})
	b.Run("impl=anylisten", func(b *testing.B) {
		for range b.N {
			ln, err := Listen(context.Background(), addr, nil)
			if err != nil {
				b.Fatal(err)
			}
			ln.Close()
		}
	})
}
