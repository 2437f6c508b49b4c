package anylisten

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// The peer credential tests connect as another user with socat, run by
// setpriv as nobody (uid and gid 65534, no supplementary groups) or as
// root: socat's pid, which setpriv keeps when it execs socat, is the pid
// the server must see.

// setprivNobody are setpriv's arguments that run a program as nobody.
var setprivNobody = []string{"--reuid=65534", "--regid=65534", "--clear-groups"}

// peerLine formats a peer's credentials, or the error of reading them, as
// the serving child writes them: "uid=U gid=G groups=[...] pid=P err=E".
func peerLine(c Credentials, err error) string {
	return fmt.Sprintf("uid=%d gid=%d groups=%v pid=%d err=%v", c.UID, c.GID, c.Groups, c.PID, err)
}

// socatPeer is a socat process that is a client of a server under test.
type socatPeer struct {
	*child
	stdout testenv.Buffer // what it read from the server
}

// startSocat runs socat with args, as the user the setpriv arguments make
// it (nil: as root, without setpriv), with send on its standard input. It
// is killed, if it still runs, when the test ends.
func startSocat(t testing.TB, setpriv []string, send string, args ...string) *socatPeer {
	t.Helper()
	socat := testenv.NeedTool(t, "socat")
	cmd := exec.Command(socat, args...)
	if setpriv != nil {
		cmd = exec.Command(testenv.NeedTool(t, "setpriv"), append(append(slices.Clip(setpriv), "--", socat), args...)...)
	}
	p := &socatPeer{}
	cmd.Stdin, cmd.Stdout, cmd.Dir = strings.NewReader(send), &p.stdout, "/"
	p.child = startChild(t, cmd)
	return p
}

func (p *socatPeer) pid() int { return p.cmd.Process.Pid }

// read waits until socat has exited and returns what it read from the
// server.
func (p *socatPeer) read(t testing.TB) string {
	t.Helper()
	p.wait(t)
	return p.stdout.String()
}

// acceptWithin accepts from ln, failing the test if nothing comes within
// 10 s. The connection is closed at cleanup.
func acceptWithin(t testing.TB, ln net.Listener) net.Conn {
	t.Helper()
	res := make(chan acceptResult, 1)
	go func() { c, err := ln.Accept(); res <- acceptResult{c, err} }()
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(10 * time.Second):
		ln.Close() // ends the Accept
		t.Fatal("Accept returned nothing within 10 s")
	}
	return nil
}

// readLine reads one line from c, within 10 s.
func readLine(t testing.TB, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line from the peer: %q, %v", line, err)
	}
	return line
}

// peerAddresses lists an address of each kind that has peer credentials,
// with the socat address that connects to it.
func peerAddresses(t testing.TB) []struct{ name, addr, socat string } {
	dir := publicSocketDir(t)
	abstract := "anylisten-peer-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	return []struct{ name, addr, socat string }{
		{"path", "unix:" + filepath.Join(dir, "peer.sock"), "UNIX-CONNECT:" + filepath.Join(dir, "peer.sock")},
		{"abstract", "@" + abstract, "ABSTRACT-CONNECT:" + abstract},
		{"seqpacket", "unixpacket:" + filepath.Join(dir, "seq.sock"), "UNIX-CONNECT:" + filepath.Join(dir, "seq.sock") + ",type=5"},
		{"seqpacket-abstract", "unixpacket:@" + abstract + "-seq", "ABSTRACT-CONNECT:" + abstract + "-seq,type=5"},
	}
}

// TestPeerCredentialsOtherUser connects as nobody to each kind of UNIX
// listener and checks the credentials the server sees: nobody's, and the
// pid of the process that connected.
func TestPeerCredentialsOtherUser(t *testing.T) {
	permNeedRoot(t)
	checkNoFDLeak(t)
	for _, a := range peerAddresses(t) {
		t.Run(a.name, func(t *testing.T) {
			var o *Options
			if !strings.Contains(a.addr, "@") { // an abstract name has no file to chmod
				o = &Options{UnixListenChmod: 0o666}
			}
			ln := listenT(t, a.addr, o)
			peer := startSocat(t, setprivNobody, "hello\n", "-", a.socat)
			c := acceptWithin(t, ln)
			if _, ok := c.(*net.UnixConn); !ok {
				t.Errorf("Accept returned a %T, want *net.UnixConn", c)
			}
			got, err := PeerCredentials(c)
			if err != nil {
				t.Fatal(err)
			}
			want := Credentials{UID: 65534, GID: 65534, Groups: []uint32{}, PID: peer.pid()}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("PeerCredentials of nobody's connection (-want +got):\n%s", diff)
			}
			if line := readLine(t, c); line != "hello\n" {
				t.Errorf("read %q from the peer, want %q", line, "hello\n")
			}
		})
	}
}

// TestPeerCredentialsInProcess checks PeerCredentials on both ends of a
// connection within the test process, through the wrappers that unwrap to
// a *net.UnixConn, and its errors for connections that have no peer
// credentials.
func TestPeerCredentialsInProcess(t *testing.T) {
	checkNoFDLeak(t)
	groups, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	self := Credentials{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid()), Groups: []uint32{}, PID: os.Getpid()}
	for _, g := range groups {
		self.Groups = append(self.Groups, uint32(g))
	}
	slices.Sort(self.Groups)
	sorted := cmp.Transformer("sort", func(c Credentials) Credentials {
		c.Groups = slices.Clone(c.Groups)
		slices.Sort(c.Groups)
		return c
	})

	ln := listenT(t, "unix:"+filepath.Join(testenv.SocketDir(t), "self.sock"), nil)
	server := roundTrip(t, ln)
	client, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	one, err := newOneConnListener(server).Accept() // inetd's and Accept=yes's wrapper
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		c    net.Conn
	}{
		{"server", server},
		{"client", client}, // the server's credentials, from listen()
		{"tls", tls.Server(server, &tls.Config{})},
		{"tls-client", tls.Client(client, &tls.Config{})},
		{"one-connection", one},
		{"tls-one-connection", tls.Server(one, &tls.Config{})},
	} {
		got, err := PeerCredentials(tt.c)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(self, got, sorted); diff != "" {
			t.Errorf("%s: PeerCredentials (-want +got):\n%s", tt.name, diff)
		}
	}

	tcpLn := listenT(t, "127.0.0.1:0", nil)
	tcp := roundTrip(t, tcpLn)
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	gram, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(testenv.SocketDir(t), "gram.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer gram.Close()
	var nilUnix *net.UnixConn
	for _, tt := range []struct {
		name string
		c    net.Conn
		want string
	}{
		{"tcp", tcp, "peercred tcp 127.0.0.1:"},
		{"tcp", tcp, "a *net.TCPConn has no peer credentials: the kernel records them for UNIX socket connections only"},
		{"tls-over-tcp", tls.Server(tcp, &tls.Config{}), "a *net.TCPConn has no peer credentials"},
		{"pipe", p1, "a *net.pipe has no peer credentials"},
		{"unixgram", gram, "a datagram socket has no peer"},
		{"nil", nil, "peercred: a nil connection has no peer"},
		{"nil-unix", nilUnix, "a nil *net.UnixConn has no peer"},
		{"nil-unixgram", (*UnixgramConn)(nil), "a nil *anylisten.UnixgramConn has no peer"},
		{"wrapped-unix", struct{ net.Conn }{client}, "wraps a UNIX connection with no NetConn method to reach it"},
	} {
		got, err := PeerCredentials(tt.c)
		var oe *net.OpError
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.As(err, &oe) || oe.Op != "peercred" {
			t.Errorf("%s: PeerCredentials = %+v, %v; want a *net.OpError saying %q", tt.name, got, err, tt.want)
		}
	}
}

// TestPeerCredentialsConnectTime connects as root with socat, which then
// execs setpriv to become nobody, keeping the connection: the credentials
// stay root's, those of connect time, while the process is nobody's. So
// is an allow list of root alone passed.
func TestPeerCredentialsConnectTime(t *testing.T) {
	permNeedRoot(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	dir := publicSocketDir(t)
	path := filepath.Join(dir, "exec.sock")
	var refused []Credentials
	ln := listenT(t, "unix:"+path, &Options{UnixAllowUID: []uint32{0}, UnixRefused: func(r Refusal) { refused = append(refused, r.Peer) }})
	// socat connects, then (nofork) execs setpriv in its own process,
	// which becomes nobody and runs a script that reports it over the
	// connection.
	script := filepath.Join(dir, "whoami.sh")
	if err := os.WriteFile(script, []byte("id -u\nexec sleep 10\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	peer := startSocat(t, nil, "", "UNIX-CONNECT:"+path,
		"EXEC:"+setpriv+" "+strings.Join(setprivNobody, " ")+" -- /bin/sh "+script+",nofork")
	c := acceptWithin(t, ln)
	if line := readLine(t, c); line != "65534\n" {
		t.Fatalf("the peer says its uid is %q, want 65534: it did not become nobody; socat's stderr:\n%s", line, peer.stderr.String())
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(peer.pid()) + "/status")
	if err != nil || !strings.Contains(string(status), "\nUid:\t65534\t65534\t65534\t65534\n") {
		t.Fatalf("pid %d is not nobody's now: %v\n%s", peer.pid(), err, status)
	}
	got, err := PeerCredentials(c)
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != 0 || got.GID != 0 || got.PID != peer.pid() {
		t.Errorf("PeerCredentials = %+v; want uid 0, gid 0 and pid %d: the credentials of connect time", got, peer.pid())
	}
	if len(refused) != 0 {
		t.Errorf("the hook was told of refused peers %+v", refused)
	}
}

// TestPeerCredentialsInherited serves a passed listening UNIX socket in a
// child without allow lists: the child sees nobody's credentials.
func TestPeerCredentialsInherited(t *testing.T) {
	permNeedRoot(t)
	path := filepath.Join(publicSocketDir(t), "sd.sock")
	c := activate(t, 1, []string{"-l", path, "-E", "ANYLISTEN_TEST_PEERCRED=1"}, "sd-listen", "", 1)
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	nobody := startSocat(t, setprivNobody, "", "-", "UNIX-CONNECT:"+path)
	want := "PEER uid=65534 gid=65534 groups=[] pid=" + strconv.Itoa(nobody.pid()) + " err=<nil>\n*net.UnixConn *anylisten.UnixListener "
	if out := nobody.read(t); !strings.HasPrefix(out, want) {
		t.Errorf("nobody read %q, want %q...", out, want)
	}
	if code := c.wait(t); code != 0 {
		t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
	}
}
