package anylisten

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
)

// The datagram and seqpacket tests of issue 13 with real peers: socat as
// the client, systemd-socket-activate -d and --seqpacket, and the test
// binary as a child that inherits sockets or takes them over from an
// Upgrader (the serve child with ANYLISTEN_TEST_PACKETS).

// socatAsk runs socat with "-" and args (its address and options), writes
// msg to it (if not empty), and returns the first line socat prints: what came back.
func socatAsk(t testing.TB, msg string, args ...string) string {
	t.Helper()
	tool := testenv.NeedTool(t, "socat")
	cmd := exec.Command(tool, append([]string{"-"}, args...)...)
	in, out, stderr := testenv.StartPiped(t, cmd)
	defer func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if msg != "" {
		if _, err := in.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s == "" {
			t.Fatalf("socat %q printed nothing; stderr:\n%s", args, stderr)
		}
		return s
	case <-time.After(10 * time.Second):
		t.Fatalf("socat %q got no answer within 10 s; stderr:\n%s", args, stderr)
		return ""
	}
}

// withPackets adds the serve child's ANYLISTEN_TEST_PACKETS to the
// systemd-socket-activate options args.
func withPackets(args []string, packets string) []string {
	return append(args, "-E", "ANYLISTEN_TEST_PACKETS="+packets)
}

// TestSystemdDatagramSockets: ListenPacket of sd-listen takes what
// systemd-socket-activate -d passes, UDP and UNIX datagram sockets, as
// bare *net.UDPConn and *net.UnixConn.
func TestSystemdDatagramSockets(t *testing.T) {
	t.Run("udp", func(t *testing.T) {
		p := freePort(t)
		c := activate(t, 1, withPackets([]string{"-d", "-l", "127.0.0.1:" + p}, "sd-listen"), "", "", 2)
		// The first datagram starts the child, and waits for it.
		matchLine(t, socatAsk(t, "one\n", "UDP:127.0.0.1:"+p), `^ECHO \*net\.UDPConn 127\.0\.0\.1:`+p+` pid=\d+: one\n$`)
		matchLine(t, socatAsk(t, "two\n", "UDP:127.0.0.1:"+p), `^ECHO \*net\.UDPConn 127\.0\.0\.1:`+p+` pid=\d+: two\n$`)
		if code := c.wait(t); code != 0 {
			t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
		}
	})
	t.Run("unixgram", func(t *testing.T) {
		dir := testenv.SocketDir(t)
		path := filepath.Join(dir, "gram.sock")
		c := activate(t, 1, withPackets([]string{"-d", "-l", path}, "sd-listen:unknown"), "", "", 1)
		matchLine(t, socatAsk(t, "one\n", "UNIX-SENDTO:"+path+",bind="+filepath.Join(dir, "client")),
			`^ECHO \*net\.UnixConn `+path+` pid=\d+: one\n$`)
		if code := c.wait(t); code != 0 {
			t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
		}
		// systemd's socket file stays: it is not the child's.
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("the socket file systemd made is gone: %v", err)
		}
	})
}

// TestSystemdSeqpacket: Listen of sd-listen serves what
// systemd-socket-activate --seqpacket passes, with message boundaries.
func TestSystemdSeqpacket(t *testing.T) {
	path := filepath.Join(testenv.SocketDir(t), "packet.sock")
	c := activate(t, 1, []string{"--seqpacket", "-l", path}, "sd-listen", "", 1)
	matchLine(t, socatAsk(t, "", "UNIX-CONNECT:"+path+",type=5"), `^\*net\.UnixConn \*anylisten\.UnixListener `)
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
}

// askUDP sends msg to 127.0.0.1:port and returns the answer.
func askUDP(t testing.TB, port, msg string) string {
	t.Helper()
	c, err := net.Dial("udp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer from 127.0.0.1:%s: %v", port, err)
	}
	return string(buf[:n])
}

// TestSystemdStreamAndDatagramOneName: a unit with ListenStream= and
// ListenDatagram= on one port passes both sockets under one name; Listen
// of the name takes the stream socket and ListenPacket the datagram one.
// The same pair with no names is taken by address, and plain sd-listen
// selects one of each kind too.
func TestSystemdStreamAndDatagramOneName(t *testing.T) {
	tf, tport := tcpFile(t)
	uf, uport := udpFile(t)
	for _, tt := range []struct {
		name, addrs, packets string
		env                  []string
	}{
		{"by name", "sd-listen:dns", "sd-listen:dns", []string{"LISTEN_FDNAMES=dns:dns"}},
		{"plain", "sd-listen", "sd-listen", nil},
		{"by address", "127.0.0.1:" + tport, "127.0.0.1:" + uport, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := handOver([]*os.File{tf, uf}, append(tt.env, "ANYLISTEN_TEST_PACKETS="+tt.packets), tt.addrs, "", 2)
			c := startChild(t, cmd)
			c.waitFor(t, "PACKETCONN")
			matchLine(t, ask(t, "tcp", "127.0.0.1:"+tport), `^\*net\.TCPConn \*net\.TCPListener 127\.0\.0\.1:`+tport+` `)
			matchLine(t, askUDP(t, uport, "query"), `^ECHO \*net\.UDPConn 127\.0\.0\.1:`+uport+` pid=\d+: query$`)
			if code := c.wait(t); code != 0 {
				t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
			}
		})
	}
}

// TestSystemdWrongKind: each call refuses a passed socket of the other
// kind that fd://N names, and says which call serves it; sd-listen:*
// leaves datagram sockets to ListenPacket.
func TestSystemdWrongKind(t *testing.T) {
	tf, _ := tcpFile(t)
	uf, uport := udpFile(t)
	for _, tt := range []struct {
		name, addrs, packets, want string
	}{
		{"Listen of a datagram fd", "fd://4", "", "fd 4 (unknown): a datagram UDP/IPv4 socket on 127.0.0.1:" + uport +
			": Listen serves stream and seqpacket sockets; serve a datagram socket with ListenPacket; the fd is left open"},
		{"ListenPacket of a stream fd", "", "fd://3", "fd 3 (unknown): a listening TCP/IPv4 socket on 127.0.0.1:"},
		{"ListenPacket of sd-listen:*", "", "sd-listen:*", "sd-listen:* merges every socket passed, and ListenPacket serves one"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startChild(t, handOver([]*os.File{tf, uf}, []string{"ANYLISTEN_TEST_PACKETS=" + tt.packets}, tt.addrs, "", 1))
			if code := c.wait(t); code != 3 {
				t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
			}
			if !strings.Contains(c.stderr.String(), tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, c.stderr)
			}
		})
	}
	t.Run("sd-listen:* skips datagram sockets", func(t *testing.T) {
		c := startChild(t, handOver([]*os.File{tf, uf}, []string{"ANYLISTEN_TEST_INHERITED=1"}, "sd-listen:*", "", -1))
		if code := c.wait(t); code != 0 {
			t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
		}
		for _, want := range []string{"LISTENER *net.TCPListener 127.0.0.1:", "INHERITED 4 unknown 127.0.0.1:" + uport + " taken= closed=false"} {
			if !strings.Contains(c.stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, c.stderr)
			}
		}
	})
}

// TestUpgradeDatagram hands a UDP socket and a UNIX datagram socket over
// to the test binary as a successor: a datagram sent before the Upgrade,
// which the old process never read, is answered by the successor, and the
// successor owns the socket file once it said ready.
func TestUpgradeDatagram(t *testing.T) {
	checkNoFDLeak(t)
	dir := testenv.SocketDir(t)
	path := filepath.Join(dir, "gram.sock")
	var u Upgrader
	ctx := context.Background()
	udp, err := u.ListenPacket(ctx, MustParseAddress("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	gram, err := u.ListenPacket(ctx, MustParseAddress(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gram.Close()
	// A query queued in each socket before the hand-over.
	client, err := net.Dial("udp", udp.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.Write([]byte("queued"))
	gclient := filepath.Join(dir, "client")
	gc, err := net.DialUnix("unixgram", &net.UnixAddr{Name: gclient, Net: "unixgram"}, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	gc.Write([]byte("queued gram"))

	u.Path = os.Args[0]
	u.Args = []string{}
	u.Env = append(os.Environ(), childEnv("", "", 3)...)
	u.Env = append(u.Env, "ANYLISTEN_TEST_PACKETS="+udp.LocalAddr().String()+","+path, "ANYLISTEN_TEST_READY=1")
	pid, said, err := upgradeWith(t, &u, nil)
	if err != nil {
		t.Fatalf("Upgrade: %v; successor said:\n%s", err, said)
	}
	udp.Close()
	gram.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the handed-over socket file was removed by the old process: %v", err)
	}
	buf := make([]byte, 2048)
	for _, tt := range []struct {
		c    net.Conn
		want string
	}{
		{client, `^ECHO \*net\.UDPConn ` + udp.LocalAddr().String() + ` pid=\d+: queued$`},
		{gc, `^ECHO \*anylisten\.UnixgramConn ` + path + ` pid=\d+: queued gram$`},
	} {
		tt.c.SetDeadline(time.Now().Add(10 * time.Second))
		n, err := tt.c.Read(buf)
		if err != nil {
			t.Fatalf("the queued datagram got no answer: %v; successor said:\n%s", err, said)
		}
		matchLine(t, string(buf[:n]), tt.want)
	}
	matchLine(t, askUDP(t, strings.TrimPrefix(udp.LocalAddr().String(), "127.0.0.1:"), "after"), `^ECHO \*net\.UDPConn .* pid=\d+: after$`)
	waitGone(t, pid, said)
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the successor did not remove the socket file it took over: %v", err)
	}
	if !strings.Contains(said.String(), "PACKETCONN *anylisten.UnixgramConn "+path) {
		t.Errorf("the successor did not take the UNIX datagram socket as a *UnixgramConn at its path:\n%s", said)
	}
}
