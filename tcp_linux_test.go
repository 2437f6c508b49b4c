package anylisten

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anylisten/anylisten/internal/testenv"
)

// sockopt reads an int socket option of c.
func sockopt(t testing.TB, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	err = rawControl(rc, func(fd uintptr) error {
		var err error
		v, err = unix.GetsockoptInt(int(fd), level, opt)
		return err
	})
	if err != nil {
		t.Fatalf("getsockopt(%d, %d): %v", level, opt, err)
	}
	return v
}

func readSysctl(t testing.TB, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		t.Skipf("cannot read sysctl %s: %v", name, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestListenTCP(t *testing.T) {
	checkNoFDLeak(t)
	for _, s := range []string{"127.0.0.1:0", "[::1]:0", ":0", "localhost:0", "tcp://127.0.0.1:0"} {
		t.Run(s, func(t *testing.T) {
			ln := listenT(t, s, nil)
			if _, ok := ln.(*net.TCPListener); !ok {
				t.Fatalf("Listen returned %T, want *net.TCPListener", ln)
			}
			if c := roundTrip(t, ln); func() bool { _, ok := c.(*net.TCPConn); return !ok }() {
				t.Fatalf("Accept returned %T, want *net.TCPConn", c)
			}
		})
	}
}

func TestListenTCPDefaultsAreNetListen(t *testing.T) {
	ln := listenT(t, "127.0.0.1:0", nil)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ours, theirs := roundTrip(t, ln).(*net.TCPConn), roundTrip(t, raw).(*net.TCPConn)
	for _, o := range []struct {
		name       string
		level, opt int
	}{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
		{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY},
	} {
		if a, b := sockopt(t, ours, o.level, o.opt), sockopt(t, theirs, o.level, o.opt); a != b {
			t.Errorf("%s: %d with anylisten, %d with net.Listen", o.name, a, b)
		}
	}
	if a, b := listenBacklog(t, ln), listenBacklog(t, raw); a != b {
		t.Errorf("backlog: %d with anylisten, %d with net.Listen", a, b)
	}
}

func TestListenTCPAddrInUse(t *testing.T) {
	checkNoFDLeak(t)
	ln := listenT(t, "127.0.0.1:0", nil)
	_, err := Listen(context.Background(), MustParseAddress(ln.Addr().String()), nil)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Listen on %v: err = %v, want EADDRINUSE", ln.Addr(), err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "listen" {
		t.Errorf("err = %#v, want a *net.OpError with Op listen", err)
	}
}

func TestListenTCPReusePort(t *testing.T) {
	o := &Options{TCPReusePort: true}
	a := listenT(t, "127.0.0.1:0", o)
	b := listenT(t, a.Addr().String(), o)
	if a.Addr().String() != b.Addr().String() {
		t.Fatalf("listeners on %v and %v", a.Addr(), b.Addr())
	}
	if v := sockopt(t, b.(*net.TCPListener), unix.SOL_SOCKET, unix.SO_REUSEPORT); v != 1 {
		t.Errorf("SO_REUSEPORT = %d", v)
	}
	if v := sockopt(t, listenT(t, "127.0.0.1:0", nil).(*net.TCPListener), unix.SOL_SOCKET, unix.SO_REUSEPORT); v != 0 {
		t.Errorf("SO_REUSEPORT = %d without the option", v)
	}
}

// listenBacklog reads the backlog of a listening TCP socket: Linux
// reports it in tcpi_sacked, as ss -l shows it in Send-Q.
func listenBacklog(t testing.TB, ln net.Listener) int {
	t.Helper()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	if err := rawControl(rc, func(fd uintptr) error {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return int(info.Sacked)
}

func TestListenTCPBacklog(t *testing.T) {
	if got := listenBacklog(t, listenT(t, "127.0.0.1:0", &Options{TCPListenBacklog: 7})); got != 7 {
		t.Errorf("backlog = %d, want 7", got)
	}
	max := readSysctl(t, "net.core.somaxconn")
	if got := listenBacklog(t, listenT(t, "127.0.0.1:0", nil)); got != max {
		t.Errorf("default backlog = %d, want somaxconn %d", got, max)
	}
	if got := listenBacklog(t, listenT(t, "127.0.0.1:0", &Options{TCPListenBacklog: max + 1000})); got != max {
		t.Errorf("backlog over somaxconn = %d, want it capped at %d", got, max)
	}
}

func TestListenTCPKeepalive(t *testing.T) {
	for _, tt := range []struct {
		opt                    string
		idle, count, intvl, on int // -1: the OS default
	}{
		{"60000:3:5000", 60, 3, 5, 1},
		{"1500", 2, -1, -1, 1},
		{":4:", -1, 4, -1, 1},
		{"", -1, -1, -1, 1},
		{"off", -1, -1, -1, 0}, // as net.ListenConfig{KeepAlive: -1}
	} {
		t.Run(tt.opt, func(t *testing.T) {
			k, err := ParseTCPKeepalive(tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			c := roundTrip(t, listenT(t, "127.0.0.1:0", &Options{TCPKeepalive: &k})).(*net.TCPConn)
			want := func(v int, sysctl string) int {
				if v < 0 {
					return readSysctl(t, sysctl)
				}
				return v
			}
			for _, o := range []struct {
				name       string
				level, opt int
				want       int
			}{
				{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, tt.on},
				{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, want(tt.idle, "net.ipv4.tcp_keepalive_time")},
				{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, want(tt.count, "net.ipv4.tcp_keepalive_probes")},
				{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, want(tt.intvl, "net.ipv4.tcp_keepalive_intvl")},
			} {
				if got := sockopt(t, c, o.level, o.opt); got != o.want {
					t.Errorf("%s = %d, want %d", o.name, got, o.want)
				}
			}
		})
	}
}

// kernelBufSize is what the kernel reports for SO_RCVBUF or SO_SNDBUF after
// setting it to n on a fresh socket.
func kernelBufSize(t testing.TB, opt, n int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, n); err != nil {
		t.Fatal(err)
	}
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestListenBufferSizes(t *testing.T) {
	const rcv, snd = 48 * 1024, 80 * 1024
	wantRcv, wantSnd := kernelBufSize(t, unix.SO_RCVBUF, rcv), kernelBufSize(t, unix.SO_SNDBUF, snd)
	o := &Options{RecvBufferSize: rcv, SendBufferSize: snd}
	for _, s := range []string{"127.0.0.1:0", "./buf.sock", "@anylisten-buf-" + strconv.Itoa(os.Getpid())} {
		t.Run(s, func(t *testing.T) {
			if strings.HasPrefix(s, "./") {
				s = "unix:" + testenv.SocketDir(t) + "/buf.sock"
			}
			c := roundTrip(t, listenT(t, s, o)).(syscall.Conn)
			if got := sockopt(t, c, unix.SOL_SOCKET, unix.SO_RCVBUF); got != wantRcv {
				t.Errorf("accepted SO_RCVBUF = %d, want %d", got, wantRcv)
			}
			if got := sockopt(t, c, unix.SOL_SOCKET, unix.SO_SNDBUF); got != wantSnd {
				t.Errorf("accepted SO_SNDBUF = %d, want %d", got, wantSnd)
			}
		})
	}
}

func TestListenTCPOnlyV6(t *testing.T) {
	ln := listenT(t, "[::]:0", &Options{TCPOnlyV6: true})
	if v := sockopt(t, ln.(*net.TCPListener), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != 1 {
		t.Errorf("IPV6_V6ONLY = %d, want 1", v)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if c, err := net.DialTimeout("tcp4", "127.0.0.1:"+port, time.Second); err == nil {
		c.Close()
		t.Error("an IPv4 client reached the IPv6-only listener")
	}
	if c, err := net.DialTimeout("tcp6", "[::1]:"+port, time.Second); err != nil {
		t.Errorf("IPv6 client: %v", err)
	} else {
		c.Close()
	}

	dual := listenT(t, ":0", nil)
	if v := sockopt(t, dual.(*net.TCPListener), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != 0 {
		t.Errorf("IPV6_V6ONLY = %d on :0 without the option, want dual stack", v)
	}
	c, err := net.DialTimeout("tcp4", "127.0.0.1:"+strconv.Itoa(dual.Addr().(*net.TCPAddr).Port), time.Second)
	if err != nil {
		t.Errorf("IPv4 client of the dual-stack listener: %v", err)
	} else {
		c.Close()
	}

	// The option is ignored for an IPv4 address.
	roundTrip(t, listenT(t, "127.0.0.1:0", &Options{TCPOnlyV6: true}))
}

func TestListenCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ln, err := Listen(ctx, MustParseAddress("127.0.0.1:0"), nil)
	if !errors.Is(err, context.Canceled) || ln != nil {
		t.Errorf("Listen with a canceled context = %v, %v", ln, err)
	}
}

func TestListenRejectsBadOptions(t *testing.T) {
	checkNoFDLeak(t)
	ln, err := Listen(context.Background(), MustParseAddress("127.0.0.1:0"), &Options{TCPListenBacklog: -1})
	if err == nil || ln != nil || !strings.Contains(err.Error(), "tcp_listen_backlog is -1") {
		t.Errorf("Listen with a negative backlog = %v, %v", ln, err)
	}
	ln, err = Listen(context.Background(), Address{}, nil)
	if err == nil || ln != nil || !strings.Contains(err.Error(), "zero Address") {
		t.Errorf("Listen(Address{}) = %v, %v", ln, err)
	}
}

func TestListenDoesNotModifyOptions(t *testing.T) {
	o := &Options{TCPKeepalive: &TCPKeepalive{Count: 3}, RecvBufferSize: 65536}
	before := *o
	before.TCPKeepalive = &TCPKeepalive{Count: 3}
	listenT(t, "127.0.0.1:0", o)
	if *o.TCPKeepalive != *before.TCPKeepalive || o.RecvBufferSize != before.RecvBufferSize {
		t.Errorf("Listen changed the Options to %+v", o)
	}
}

// A service name is a port, as for net.Listen: Listen binds the port it
// names, and Dial reaches it. (A service whose port is free here is
// picked, since a service name stands for a fixed port.)
func TestListenServiceName(t *testing.T) {
	var name string
	var port int
	for _, s := range []string{"http-alt", "webcache", "tproxy", "gopher", "finger", "http", "https", "ftp"} {
		p, err := net.LookupPort("tcp", s)
		if err != nil {
			continue
		}
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			ln.Close()
			name, port = s, p
			break
		}
	}
	if name == "" {
		t.Skip("no service of /etc/services or Go's table has a free port here")
	}
	a := MustParseAddress("127.0.0.1:" + name)
	ln := listenT(t, a.String(), nil)
	if got := ln.Addr().(*net.TCPAddr).Port; got != port {
		t.Errorf("Listen(%s) bound port %d, want %d", a, got, port)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := Dial(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-done
}
