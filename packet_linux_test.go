package anylisten

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"golang.org/x/sys/unix"
)

// listenPacketT opens s with ListenPacket and closes it at cleanup.
func listenPacketT(t testing.TB, s string, o *Options) net.PacketConn {
	t.Helper()
	pc, err := ListenPacket(context.Background(), MustParseAddress(s), o)
	if err != nil {
		t.Fatalf("ListenPacket(%q): %v", s, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// echoOnce reads one datagram on pc and sends it back to its sender.
func echoOnce(pc net.PacketConn) <-chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := pc.ReadFrom(buf)
		if err == nil {
			_, err = pc.WriteTo(buf[:n], from)
		}
		done <- err
	}()
	return done
}

// exchangeDatagram sends msg from client to the server pc echoes on, and
// checks the echo.
func exchangeDatagram(t testing.TB, pc net.PacketConn, client net.Conn, msg string) {
	t.Helper()
	done := echoOnce(pc)
	client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := client.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := client.Read(buf)
	if err != nil || string(buf[:n]) != msg {
		t.Fatalf("echo: %q, %v; want %q", buf[:n], err, msg)
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}

func TestListenPacketUDP(t *testing.T) {
	checkNoFDLeak(t)
	for _, s := range []string{"127.0.0.1:0", "udp://127.0.0.1:0", "udp://[::1]:0", "tcp://localhost:0"} {
		t.Run(s, func(t *testing.T) {
			pc := listenPacketT(t, s, nil)
			if _, ok := pc.(*net.UDPConn); !ok {
				t.Fatalf("ListenPacket(%q) = %T, want *net.UDPConn", s, pc)
			}
			c, err := net.Dial("udp", pc.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			exchangeDatagram(t, pc, c, "hello "+s)
		})
	}
}

// TestListenPacketUnixgram: a path gives a *UnixgramConn whose Close
// removes the socket file; @name a bare *net.UnixConn.
func TestListenPacketUnixgram(t *testing.T) {
	checkNoFDLeak(t)
	dir := testenv.SocketDir(t)
	for _, s := range []string{filepath.Join(dir, "a.sock"), "unixgram:" + filepath.Join(dir, "b.sock"), "@anylisten-test-gram-" + filepath.Base(dir)} {
		t.Run(s, func(t *testing.T) {
			a := MustParseAddress(s)
			var o *Options
			if a.Kind() == KindUnix {
				o = &Options{UnixListenChmod: 0o600}
			}
			pc := listenPacketT(t, s, o)
			client := filepath.Join(dir, "client")
			os.Remove(client)
			c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: client, Net: "unixgram"}, &net.UnixAddr{Name: a.Path(), Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer os.Remove(client)
			defer c.Close()
			exchangeDatagram(t, pc, c, "hello "+s)
			if a.kind == KindAbstract {
				if _, ok := pc.(*net.UnixConn); !ok {
					t.Fatalf("ListenPacket(%q) = %T, want *net.UnixConn", s, pc)
				}
				return
			}
			uc, ok := pc.(*UnixgramConn)
			if !ok {
				t.Fatalf("ListenPacket(%q) = %T, want *UnixgramConn", s, pc)
			}
			if got := uc.LocalAddr().String(); got != a.Path() {
				t.Errorf("LocalAddr = %q, want %q", got, a.Path())
			}
			fi, err := os.Lstat(a.Path())
			if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
				t.Fatalf("socket file: %v, %v; want a socket with mode 0600", fi.Mode(), err)
			}
			if err := pc.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(a.Path()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket file after Close: %v", err)
			}
		})
	}
}

// TestListenUnixpacket: unixpacket: gives a listener whose connections
// keep message boundaries.
func TestListenUnixpacket(t *testing.T) {
	checkNoFDLeak(t)
	dir := testenv.SocketDir(t)
	for _, s := range []string{"unixpacket:" + filepath.Join(dir, "p.sock"), "unixpacket:@anylisten-test-packet-" + filepath.Base(dir)} {
		t.Run(s, func(t *testing.T) {
			a := MustParseAddress(s)
			ln := listenT(t, s, nil)
			if got := ln.Addr().Network(); got != "unixpacket" {
				t.Errorf("Addr().Network() = %q, want unixpacket", got)
			}
			c, err := Dial(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			srv, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			if _, ok := srv.(*net.UnixConn); !ok {
				t.Fatalf("Accept = %T, want *net.UnixConn", srv)
			}
			c.Write([]byte("one"))
			c.Write([]byte("two"))
			buf := make([]byte, 100)
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			for _, want := range []string{"one", "two"} {
				n, err := srv.Read(buf)
				if err != nil || string(buf[:n]) != want {
					t.Fatalf("Read = %q, %v; want the message %q alone", buf[:n], err, want)
				}
			}
			ln.Close()
			if a.kind == KindUnix {
				if _, err := os.Lstat(a.Path()); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("socket file after Close: %v", err)
				}
			}
		})
	}
}

// TestPacketStreamRefusals: each call refuses the forms of the other type
// with an error that says which call serves them.
func TestPacketStreamRefusals(t *testing.T) {
	checkNoFDLeak(t)
	dir := testenv.SocketDir(t)
	ctx := context.Background()
	for _, tt := range []struct{ in, want string }{
		{"udp://127.0.0.1:0", "listen udp 127.0.0.1:0: udp://127.0.0.1:0 is a datagram address: serve it with ListenPacket (a net.PacketConn), not Listen"},
		{"unixgram:@x", "listen unixgram @x: unixgram:@x is a datagram address: serve it with ListenPacket"},
	} {
		if ln, err := Listen(ctx, MustParseAddress(tt.in), nil); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("Listen(%q) error %v, want %q", tt.in, err, tt.want)
		}
	}
	for _, tt := range []struct {
		in, want string
		is       error
	}{
		{"unixpacket:" + dir + "/p.sock", "listen unixpacket " + dir + "/p.sock: a seqpacket socket has connections: serve it with Listen, not ListenPacket", nil},
		{"inetd", "listen inetd: inetd passes one stream connection on stdin and stdout, not a datagram socket: serve it with Listen, not ListenPacket", nil},
		{"vsock:any:1234", "listen vsock any:1234: AF_VSOCK datagrams are not supported", errors.ErrUnsupported},
		{"sd-listen:*", "listen systemd sd-listen:*: sd-listen:* merges every socket passed, and ListenPacket serves one", nil},
	} {
		pc, err := ListenPacket(ctx, MustParseAddress(tt.in), &Options{SDAcceptIgnoreEnvironment: true})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			if pc != nil {
				pc.Close()
			}
			t.Errorf("ListenPacket(%q) error %v, want %q", tt.in, err, tt.want)
			continue
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("ListenPacket(%q) error %v does not wrap %v", tt.in, err, tt.is)
		}
	}
	if _, err := os.Lstat(dir + "/p.sock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused ListenPacket left %s/p.sock: %v", dir, err)
	}
}

// sockoptInt reads an int socket option of pc.
func sockoptInt(t testing.TB, pc net.PacketConn, level, opt int) int {
	t.Helper()
	rc, err := pc.(interface {
		SyscallConn() (syscall.RawConn, error)
	}).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v := -1
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestListenPacketOptions: the options that apply to datagram sockets are
// set on them; a UDP port in use is EADDRINUSE, unless both sockets have
// SO_REUSEPORT.
func TestListenPacketOptions(t *testing.T) {
	checkNoFDLeak(t)
	ctx := context.Background()
	o := &Options{RecvBufferSize: 65536, SendBufferSize: 32768, TCPReusePort: true}
	pc := listenPacketT(t, "127.0.0.1:0", o)
	// Linux doubles the value it is given.
	if got := sockoptInt(t, pc, unix.SOL_SOCKET, unix.SO_RCVBUF); got != 2*65536 {
		t.Errorf("SO_RCVBUF = %d, want %d", got, 2*65536)
	}
	if got := sockoptInt(t, pc, unix.SOL_SOCKET, unix.SO_SNDBUF); got != 2*32768 {
		t.Errorf("SO_SNDBUF = %d, want %d", got, 2*32768)
	}
	if got := sockoptInt(t, pc, unix.SOL_SOCKET, unix.SO_REUSEPORT); got != 1 {
		t.Errorf("SO_REUSEPORT = %d, want 1", got)
	}
	same := MustParseAddress(pc.LocalAddr().String())
	second, err := ListenPacket(ctx, same, o)
	if err != nil {
		t.Errorf("a second ListenPacket with tcp_reuse_port on the same port: %v", err)
	} else {
		second.Close()
	}
	if c, err := ListenPacket(ctx, same, nil); !errors.Is(err, syscall.EADDRINUSE) {
		if c != nil {
			c.Close()
		}
		t.Errorf("ListenPacket of a port in use without reuse-port: %v, want EADDRINUSE", err)
	} else if want := "listen udp " + same.HostPort() + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}

	v6 := listenPacketT(t, "[::]:0", &Options{TCPOnlyV6: true})
	if got := sockoptInt(t, v6, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); got != 1 {
		t.Errorf("IPV6_V6ONLY = %d, want 1", got)
	}
	dual := listenPacketT(t, "[::]:0", nil)
	if got := sockoptInt(t, dual, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); got != 0 {
		t.Errorf("IPV6_V6ONLY = %d without the option, want 0", got)
	}

	gram := listenPacketT(t, filepath.Join(testenv.SocketDir(t), "g.sock"), &Options{RecvBufferSize: 65536})
	if got := sockoptInt(t, gram, unix.SOL_SOCKET, unix.SO_RCVBUF); got != 2*65536 {
		t.Errorf("unixgram SO_RCVBUF = %d, want %d", got, 2*65536)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if c, err := ListenPacket(cctx, MustParseAddress("127.0.0.1:0"), nil); !errors.Is(err, context.Canceled) {
		if c != nil {
			c.Close()
		}
		t.Errorf("ListenPacket with a cancelled context: %v", err)
	}
	if c, err := ListenPacket(ctx, Address{}, nil); err == nil {
		c.Close()
		t.Error("ListenPacket of the zero Address succeeded")
	}
}

// TestUnixgramSendsFromItsPath: a datagram socket ListenPacket binds at a
// path, in a directory only its user writes, is bound there itself, so
// its answers come from the path: socat's UNIX-SENDTO, which drops a
// datagram from anyone but its peer, gets them, and two such sockets
// answer each other. In a directory others may write, it is made in a
// private directory as a stream socket is, and its kernel name says so.
func TestUnixgramSendsFromItsPath(t *testing.T) {
	checkNoFDLeak(t)
	dir := testenv.SocketDir(t)
	path := filepath.Join(dir, "srv.sock")
	pc := listenPacketT(t, path, &Options{UnixListenChmod: 0o600})
	uc := pc.(*UnixgramConn)
	if got := uc.UnixConn.LocalAddr().String(); got != path {
		t.Errorf("the kernel's name for the socket is %q, want %q", got, path)
	}
	done := echoOnce(pc)
	if got := socatAsk(t, "hello\n", "UNIX-SENDTO:"+path+",bind="+filepath.Join(dir, "socat.sock")); got != "hello\n" {
		t.Errorf("socat UNIX-SENDTO got %q", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A second anylisten socket sends from its path, and gets the answer.
	peer := listenPacketT(t, "unixgram:"+filepath.Join(dir, "peer.sock"), nil)
	done = echoOnce(pc)
	peer.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := peer.WriteTo([]byte("ping"), uc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" || from.String() != path {
		t.Errorf("the peer got %q from %v, %v; want ping from %s", buf[:n], from, err, path)
	}
	if err := <-done; err != nil {
		t.Errorf("answering the peer: %v", err)
	}

	// A relative path is bound at its absolute form, which the peers can
	// answer to from anywhere.
	chdir(t, dir)
	rel := listenPacketT(t, "./rel.sock", nil)
	if got, want := rel.(*UnixgramConn).UnixConn.LocalAddr().String(), filepath.Join(dir, "rel.sock"); got != want {
		t.Errorf("the kernel's name for ./rel.sock is %q, want %q", got, want)
	}

	shared := testenv.SocketDir(t)
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	spath := filepath.Join(shared, "s.sock")
	spc := listenPacketT(t, spath, nil)
	// The name it was bound to in its private directory: through the
	// directory's fd (/proc/self/fd/N/s.sock), which nothing can redirect.
	if got := spc.(*UnixgramConn).UnixConn.LocalAddr().String(); got == spath || !strings.HasSuffix(got, "/s.sock") {
		t.Errorf("in a directory others may write, the kernel's name is %q, want the one it was bound to in a private directory", got)
	}
}

// TestUnixgramDotDotThroughSymlink: from a working directory reached
// through a symbolic link (PWD, as a shell sets it, names the link),
// ../app.sock is the parent of the physical directory, as the kernel
// resolves it; ListenPacket binds there, and again after Close, and
// leaves nothing in the directory PWD's text would name.
func TestUnixgramDotDotThroughSymlink(t *testing.T) {
	base := testenv.SocketDir(t)
	data, home := filepath.Join(base, "data"), filepath.Join(base, "home")
	proj := filepath.Join(data, "proj")
	for _, d := range []string{proj, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(home, "link")
	if err := os.Symlink(proj, link); err != nil {
		t.Fatal(err)
	}
	chdir(t, link)
	t.Setenv("PWD", link)
	for i := range 2 {
		pc, err := ListenPacket(context.Background(), MustParseAddress("../app.sock"), nil)
		if err != nil {
			t.Fatalf("ListenPacket(../app.sock) #%d: %v", i+1, err)
		}
		if got, want := pc.(*UnixgramConn).UnixConn.LocalAddr().String(), filepath.Join(data, "app.sock"); got != want {
			t.Errorf("the kernel's name is %q, want %q", got, want)
		}
		pc.Close()
	}
	for _, d := range []string{data, home} {
		if _, err := os.Lstat(filepath.Join(d, "app.sock")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/app.sock after Close: %v", d, err)
		}
	}
}
