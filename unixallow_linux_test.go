package anylisten

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// The allow list tests connect as nobody and as root with socat, as the
// peer credential tests do (peercred_linux_test.go), to listeners with
// UnixAllowUID or UnixAllowGID.

// refusals records what a UnixRefused hook was told. Its methods may be
// called from any goroutine.
type refusals struct {
	mu     sync.Mutex
	peers  []Credentials
	errs   []error
	locals []net.Addr
	more   chan struct{} // closed and replaced on every call
}

func newRefusals() *refusals { return &refusals{more: make(chan struct{})} }

// hook is the UnixRefused hook that records into r.
func (r *refusals) hook(rf Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peers = append(r.peers, rf.Peer)
	r.errs = append(r.errs, rf.Err)
	r.locals = append(r.locals, rf.Local)
	close(r.more)
	r.more = make(chan struct{})
}

// waitN waits until the hook was called n times, for up to 10 s, and
// returns what it was told.
func (r *refusals) waitN(t testing.TB, n int) ([]Credentials, []error) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		peers, errs, more := slices.Clone(r.peers), slices.Clone(r.errs), r.more
		r.mu.Unlock()
		if len(peers) >= n {
			return peers, errs
		}
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("UnixRefused was called %d times within 10 s, want %d: %+v", len(peers), n, peers)
		}
	}
}

// TestUnixAllowUID refuses nobody, who connects and at once sends a
// request, on each kind of UNIX listener that allows root only: the
// connection is closed unread (nobody reads nothing but its end), the
// hook is told nobody's credentials and pid, and the next Accept returns
// root's connection, with root's request.
func TestUnixAllowUID(t *testing.T) {
	permNeedRoot(t)
	checkNoFDLeak(t)
	for _, a := range peerAddresses(t) {
		t.Run(a.name, func(t *testing.T) {
			r := newRefusals()
			o := &Options{UnixAllowUID: []uint32{0}, UnixRefused: r.hook}
			if !strings.Contains(a.addr, "@") { // an abstract name has no file to chmod
				o.UnixListenChmod = 0o666
			}
			ln := listenT(t, a.addr, o)
			accepted := make(chan acceptResult, 1)
			go func() { c, err := ln.Accept(); accepted <- acceptResult{c, err} }()

			nobody := startSocat(t, setprivNobody, "GET /secret FROM NOBODY\n", "-", a.socat)
			peers, errs := r.waitN(t, 1)
			want := Credentials{UID: 65534, GID: 65534, Groups: []uint32{}, PID: nobody.pid()}
			if diff := cmp.Diff(want, peers[0]); diff != "" || errs[0] != nil {
				t.Errorf("UnixRefused got %v (-want +got):\n%s", errs[0], diff)
			}
			r.mu.Lock()
			local := r.locals[0]
			r.mu.Unlock()
			if local == nil || local.String() != ln.Addr().String() {
				t.Errorf("UnixRefused was told the peer connected to %v, want %v", local, ln.Addr())
			}
			if got := nobody.read(t); got != "" {
				t.Errorf("the refused peer read %q, want nothing", got)
			}
			select {
			case r := <-accepted:
				t.Fatalf("Accept returned the refused peer's connection: %v, %v", r.c, r.err)
			default:
			}

			root := startSocat(t, nil, "ROOT\n", "-", a.socat)
			var res acceptResult
			select {
			case res = <-accepted:
			case <-time.After(10 * time.Second):
				t.Fatal("Accept did not return root's connection within 10 s")
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			defer res.c.Close()
			if _, ok := res.c.(*net.UnixConn); !ok {
				t.Errorf("Accept returned a %T, want *net.UnixConn", res.c)
			}
			if line := readLine(t, res.c); line != "ROOT\n" {
				t.Errorf("Accept's connection sent %q, want root's %q", line, "ROOT\n")
			}
			if cred, err := PeerCredentials(res.c); err != nil || cred.UID != 0 || cred.PID != root.pid() {
				t.Errorf("PeerCredentials of the accepted connection = %+v, %v; want root's, pid %d", cred, err, root.pid())
			}
		})
	}
}

// TestUnixAllowRacingPeers sends requests from nobody that connect, write
// and close at once, before the server has accepted them: none reaches
// the server, which gets root's connection next.
func TestUnixAllowRacingPeers(t *testing.T) {
	permNeedRoot(t)
	checkNoFDLeak(t)
	const racers = 20
	path := filepath.Join(publicSocketDir(t), "race.sock")
	r := newRefusals()
	ln := listenT(t, "unix:"+path, &Options{UnixListenChmod: 0o666, UnixAllowUID: []uint32{0}, UnixRefused: r.hook})
	pids := map[int]bool{}
	for range racers {
		// -u: stdin to the socket only; socat closes it at stdin's end.
		p := startSocat(t, setprivNobody, "GET /secret FROM NOBODY\n", "-u", "-", "UNIX-CONNECT:"+path)
		pids[p.pid()] = true
		p.read(t)
	}
	root := startSocat(t, nil, "ROOT\n", "-", "UNIX-CONNECT:"+path)
	c := acceptWithin(t, ln)
	if line := readLine(t, c); line != "ROOT\n" {
		t.Errorf("Accept's connection sent %q, want root's %q", line, "ROOT\n")
	}
	peers, errs := r.waitN(t, racers)
	for i, p := range peers {
		if p.UID != 65534 || !pids[p.PID] || errs[i] != nil {
			t.Errorf("refused peer %d: %+v, %v; want uid 65534 and the pid of a racer", i, p, errs[i])
		}
	}
	root.read(t)
}

// TestUnixAllowGID admits by the peer's group and by its supplementary
// groups, and refuses a peer in neither.
func TestUnixAllowGID(t *testing.T) {
	permNeedRoot(t)
	checkNoFDLeak(t)
	path := filepath.Join(publicSocketDir(t), "gid.sock")
	r := newRefusals()
	ln := listenT(t, "unix:"+path, &Options{UnixListenChmod: 0o666, UnixAllowGID: []uint32{4242}, UnixRefused: r.hook})
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	refusedSoFar := 0
	for _, tt := range []struct {
		name    string
		setpriv []string
		want    Credentials // with PID filled in
		admit   bool
	}{
		{"supplementary", []string{"--reuid=65534", "--regid=65534", "--groups=100,4242"}, Credentials{UID: 65534, GID: 65534, Groups: []uint32{100, 4242}}, true},
		{"effective", []string{"--reuid=65534", "--regid=4242", "--clear-groups"}, Credentials{UID: 65534, GID: 4242, Groups: []uint32{}}, true},
		{"neither", []string{"--reuid=65534", "--regid=65534", "--groups=100"}, Credentials{UID: 65534, GID: 65534, Groups: []uint32{100}}, false},
		{"root", nil, Credentials{}, false}, // root is not in the list, and not let in for being root
	} {
		t.Run(tt.name, func(t *testing.T) {
			peer := startSocat(t, tt.setpriv, "REQUEST\n", "-", "UNIX-CONNECT:"+path)
			want := tt.want
			want.PID = peer.pid()
			if tt.setpriv == nil {
				want.Groups = nil // root's own, whatever they are
			}
			if !tt.admit {
				refusedSoFar++
				peers, _ := r.waitN(t, refusedSoFar)
				got := peers[len(peers)-1]
				if tt.setpriv == nil {
					got.Groups = nil
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("refused peer (-want +got):\n%s", diff)
				}
				if out := peer.read(t); out != "" {
					t.Errorf("the refused peer read %q", out)
				}
				select {
				case c := <-accepted:
					t.Errorf("Accept returned the refused peer's connection %v", c)
				default:
				}
				return
			}
			var c net.Conn
			select {
			case c = <-accepted:
			case <-time.After(10 * time.Second):
				t.Fatal("Accept returned nothing within 10 s")
			}
			defer c.Close()
			got, err := PeerCredentials(c)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("admitted peer (-want +got):\n%s", diff)
			}
			if line := readLine(t, c); line != "REQUEST\n" {
				t.Errorf("read %q, want the peer's request", line)
			}
		})
	}
}

// TestUnixAllowFlood floods a listener that allows root only with 200
// connections from nobody (a copy of the test binary in mode "perm", run
// as nobody) while root connects again and again: every one of root's
// connections is served, no connection of nobody's gets a byte, and each
// was told to the hook. Through Listen, and through ListenAll's merge of
// a path and an abstract name, whose readiness watchers must neither lose
// a wakeup nor report an error after a refused connection.
func TestUnixAllowFlood(t *testing.T) {
	permNeedRoot(t)
	checkNoFDLeak(t)
	dir, exe := permSocketDir(t)
	const flood, rootConns = 200, 20
	for _, merged := range []bool{false, true} {
		name := "Listen"
		if merged {
			name = "ListenAll"
		}
		t.Run(name, func(t *testing.T) {
			r := newRefusals()
			opts := &Options{UnixListenChmod: 0o666, UnixAllowUID: []uint32{0}, UnixRefused: r.hook}
			path := filepath.Join(dir, name+".sock")
			targets := []string{path}
			var ln net.Listener
			if merged {
				abstract := "@anylisten-flood-" + strconv.Itoa(os.Getpid())
				targets = append(targets, abstract)
				var err error
				// One Options value cannot serve both: the abstract name
				// has no file to chmod. Merge them.
				noFile := *opts
				noFile.UnixListenChmod = 0
				pathLn, err := Listen(context.Background(), MustParseAddress("unix:"+path), opts)
				if err != nil {
					t.Fatal(err)
				}
				absLn, err := Listen(context.Background(), MustParseAddress(abstract), &noFile)
				if err != nil {
					pathLn.Close()
					t.Fatal(err)
				}
				if ln, err = Merge(pathLn, absLn); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
			} else {
				ln = listenT(t, "unix:"+path, opts)
			}
			var served []Credentials // what Accept returned; read once done is
			done := make(chan error, 1)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						done <- err
						return
					}
					cred, _ := PeerCredentials(c)
					served = append(served, cred)
					io.WriteString(c, c.LocalAddr().String()+"\n")
					c.Close()
				}
			}()
			var paths []string
			for i := range flood {
				paths = append(paths, targets[i%len(targets)])
			}
			type floodResult struct {
				outcomes []string
				err      error
			}
			nobody := make(chan floodResult, 1)
			go func() {
				out, err := runPermChild(exe, permNobody, paths)
				nobody <- floodResult{out, err}
			}()
			// Root connects while the flood lasts, and at least rootConns
			// times.
			r.waitN(t, 1)
			var flooded *floodResult
			rootDials, during := 0, 0
			for flooded == nil || rootDials < rootConns {
				target := targets[rootDials%len(targets)]
				c, err := net.DialTimeout("unix", target, 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if line := readLine(t, c); line == "" {
					t.Errorf("root's connection %d to %s got nothing", rootDials, target)
				}
				c.Close()
				rootDials++
				if flooded == nil {
					during++
					select {
					case res := <-nobody:
						flooded = &res
					default:
					}
				}
			}
			if flooded.err != nil {
				t.Fatal(flooded.err)
			}
			outcomes := flooded.outcomes
			t.Logf("root was served %d times during the flood, %d in all", during, rootDials)
			for i, o := range outcomes {
				if o == "in" || !strings.HasPrefix(o, `connected, but read "", `) {
					t.Errorf("nobody's connection %d to %s: %s; want connected, then closed unread", i, paths[i], o)
				}
			}
			peers, errs := r.waitN(t, flood)
			for i, p := range peers {
				if p.UID != 65534 || errs[i] != nil {
					t.Errorf("refused peer %d: %+v, %v; want nobody", i, p, errs[i])
				}
			}
			ln.Close()
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept ended with %v, want net.ErrClosed", err)
			}
			for _, cred := range served {
				if cred.UID != 0 {
					t.Errorf("Accept returned a connection of %+v", cred)
				}
			}
			if len(served) != rootDials {
				t.Errorf("Accept returned %d connections, want root's %d", len(served), rootDials)
			}
		})
	}
}

// TestUnixAllowMergeRefusedIsRace merges a UNIX listener whose allow list
// refuses root, the user of every connection here, with a TCP listener:
// a refused connection is a race to the merge (the watcher waits again),
// neither an error nor the end of that listener, and one round of the
// merge's Accept, so that refused peers cannot hold the other listeners
// up; the TCP listener's connection is returned, and so is a connection
// the UNIX listener admits afterwards.
func TestUnixAllowMergeRefusedIsRace(t *testing.T) {
	checkNoFDLeak(t)
	var ul *UnixListener
	refused := 0
	opts := &Options{UnixAllowUID: []uint32{12345}, UnixRefused: func(Refusal) {
		refused++
		if refused == 3 {
			ul.allow = newAllowList(&Options{UnixAllowUID: []uint32{0}}) // admit root from now on
		}
	}}
	ul = listenT(t, "unix:"+filepath.Join(testenv.SocketDir(t), "race.sock"), opts).(*UnixListener)

	// Straight from the readiness logic: each refused connection is one
	// errRace, even with another queued behind it.
	for range 2 {
		c, err := net.Dial("unix", ul.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	for i := 1; i <= 2; i++ {
		if got, err := acceptReady(ul); got != nil || err != errRace || refused != i {
			t.Fatalf("acceptReady of refused connection %d = %v, %v (hook called %d times); want errRace, the hook called once more", i, got, err, refused)
		}
	}

	lns := tcpListeners(t, 1)
	m := mustMerge(t, []net.Listener{ul, lns[0]})
	defer m.Close()
	unixClient, err := net.Dial("unix", ul.Addr().String()) // refused (the third)
	if err != nil {
		t.Fatal(err)
	}
	defer unixClient.Close()
	tcpClient, err := net.Dial("tcp", lns[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tcpClient.Close()
	for _, want := range []string{"*net.TCPConn", "*net.UnixConn"} {
		res := make(chan acceptResult, 1)
		go func() { c, err := m.Accept(); res <- acceptResult{c, err} }()
		if want == "*net.UnixConn" {
			// Only after the refusal, which admits root from then on.
			admitted, err := net.Dial("unix", ul.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer admitted.Close()
		}
		select {
		case r := <-res:
			if r.err != nil {
				t.Fatalf("merged Accept: %v", r.err)
			}
			r.c.Close()
			if got := typeName(r.c); got != want {
				t.Errorf("merged Accept returned a %s, want a %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("merged Accept returned nothing within 10 s, want a %s (hook called %d times)", want, refused)
		}
	}
	if refused != 3 {
		t.Errorf("the hook was called %d times, want 3", refused)
	}
}

// TestUnixAllowUnreadableCredentials checks that a connection whose
// credentials cannot be read is refused too, and the hook told why.
func TestUnixAllowUnreadableCredentials(t *testing.T) {
	checkNoFDLeak(t)
	ln := listenT(t, "unix:"+filepath.Join(testenv.SocketDir(t), "closed.sock"), nil)
	server := roundTrip(t, ln).(*net.UnixConn)
	server.Close() // its fd is gone: nothing can be read of it
	var gotErr error
	called := false
	a := newAllowList(&Options{UnixAllowUID: []uint32{0}, UnixRefused: func(r Refusal) { called, gotErr = true, r.Err }})
	err := a.screen(server, ln.Addr())
	if !called || gotErr == nil || !errors.Is(err, gotErr) || !strings.Contains(err.Error(), "could not be read") {
		t.Errorf("screen of a connection without credentials = %v, hook called %v with %v; want a refusal and the hook told the error", err, called, gotErr)
	}
}

// TestUnixAllowInherited serves a passed listening UNIX socket (handOver)
// in a child with an allow list of root: nobody is refused in the child
// (which prints its credentials) and gets nothing; root is served and
// told its own credentials by PeerCredentials.
func TestUnixAllowInherited(t *testing.T) {
	permNeedRoot(t)
	path := filepath.Join(publicSocketDir(t), "inherited.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := handOver([]*os.File{f}, []string{"ANYLISTEN_TEST_PEERCRED=1"}, "sd-listen", `{"unix_allow_uid":[0]}`, 1)
	c := startChild(t, cmd)
	c.waitFor(t, "LISTENER *anylisten.UnixListener")
	nobody := startSocat(t, setprivNobody, "REQUEST\n", "-", "UNIX-CONNECT:"+path)
	c.waitFor(t, "REFUSED uid=65534 gid=65534 groups=[] pid="+strconv.Itoa(nobody.pid())+" err=<nil>\n")
	if out := nobody.read(t); out != "" {
		t.Errorf("the refused peer read %q", out)
	}
	root := startSocat(t, nil, "", "-", "UNIX-CONNECT:"+path)
	out := root.read(t)
	if want := "PEER uid=0 gid=0 "; !strings.HasPrefix(out, want) || !strings.Contains(out, " pid="+strconv.Itoa(root.pid())+" err=<nil>\n*net.UnixConn ") {
		t.Errorf("root read %q, want %q..., its pid %d and a *net.UnixConn", out, want, root.pid())
	}
	if code := c.wait(t); code != 0 {
		t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
	}
}

// TestUnixAllowOneConnection starts a child for each connection, with
// that connection as fd 3 (systemd's Accept=yes) or as stdin and stdout
// (--inetd), and an allow list of root: for nobody's connection the
// child's Listen fails, naming nobody's uid and the option, after the
// hook; root's is served, PeerCredentials seeing through the
// one-connection wrapper.
func TestUnixAllowOneConnection(t *testing.T) {
	permNeedRoot(t)
	for _, mode := range []struct{ name, addr, failed string }{
		{"accept", "sd-listen", "LISTEN ERROR: listen systemd sd-listen: fd 3 (unknown): "},
		{"inetd", "inetd", "LISTEN ERROR: listen inetd: stdin: "},
	} {
		t.Run(mode.name, func(t *testing.T) {
			path := filepath.Join(publicSocketDir(t), "one.sock")
			args := []string{"-a", "-l", path, "-E", "ANYLISTEN_TEST_PEERCRED=1"}
			if mode.name == "inetd" {
				args = append([]string{"--inetd"}, args...)
			}
			c := activate(t, 1, args, mode.addr, `{"unix_allow_uid":[0]}`, 0)
			if err := os.Chmod(path, 0o666); err != nil {
				t.Fatal(err)
			}
			nobody := startSocat(t, setprivNobody, "REQUEST\n", "-", "UNIX-CONNECT:"+path)
			if out := nobody.read(t); out != "" {
				t.Errorf("the refused peer read %q", out)
			}
			c.waitFor(t, " died with code 3")
			stderr := c.stderr.String()
			for _, want := range []string{
				"REFUSED uid=65534 gid=65534 groups=[] pid=" + strconv.Itoa(nobody.pid()) + " err=<nil>\n",
				mode.failed + "the peer, uid 65534 (gid 65534, groups [], pid " + strconv.Itoa(nobody.pid()) + "), is not allowed by the unix_allow_uid option (--unix-allow-uid): its connection was shut down",
				"LISTEN ERROR IS ErrPeerRefused\n",
			} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if strings.Index(stderr, "REFUSED") > strings.Index(stderr, "LISTEN ERROR") {
				t.Errorf("the hook was called after Listen failed:\n%s", stderr)
			}
			root := startSocat(t, nil, "", "-", "UNIX-CONNECT:"+path)
			want := "PEER uid=0 gid=0 "
			if out := root.read(t); !strings.HasPrefix(out, want) || !strings.Contains(out, " pid="+strconv.Itoa(root.pid())+" err=<nil>\n*anylisten.unixOneConn ") {
				t.Errorf("root read %q, want %q..., its pid %d, and a *anylisten.unixOneConn", out, want, root.pid())
			}
			c.waitFor(t, " died with code 0")
		})
	}
}

// TestUnixAllowFailsClosed gives allow lists to addresses whose peers have
// no credentials: Listen and ListenPacket fail, naming the option and
// saying why, and open nothing.
func TestUnixAllowFailsClosed(t *testing.T) {
	checkNoFDLeak(t)
	uid := &Options{UnixAllowUID: []uint32{0}}
	gid := &Options{UnixAllowGID: []uint32{0}}
	both := &Options{UnixAllowUID: []uint32{0}, UnixAllowGID: []uint32{0}}
	dir := testenv.SocketDir(t)
	const uidOption = "the unix_allow_uid option (--unix-allow-uid): "
	const enforce = ", so the list cannot be enforced: listen on it without the option"
	for _, tt := range []struct {
		name   string
		packet bool
		addr   string
		opts   *Options
		want   string
	}{
		{"tcp", false, "127.0.0.1:0", uid, "listen tcp 127.0.0.1:0: " + uidOption + "a TCP peer has no uid" + enforce},
		{"tcp-gid", false, "tcp://[::1]:0", gid, "the unix_allow_gid option (--unix-allow-gid): a TCP peer has no uid" + enforce},
		{"tcp-both", false, ":0", both, "the unix_allow_uid and unix_allow_gid options (--unix-allow-uid, --unix-allow-gid): " +
			"a TCP peer has no uid, so the lists cannot be enforced: listen on it without the options"},
		{"vsock", false, "vsock:any:1234", uid, uidOption + "a vsock peer has no uid" + enforce},
		{"udp", true, "udp://127.0.0.1:0", uid, "listen udp 127.0.0.1:0: " + uidOption + "a datagram socket has no connection whose peer could be checked" + enforce},
		{"unixgram", true, "unixgram:" + filepath.Join(dir, "gram.sock"), uid, "a datagram socket has no connection"},
		{"unix-as-datagram", true, "unix:" + filepath.Join(dir, "u.sock"), uid, "a datagram socket has no connection"},
		{"abstract-datagram", true, "@anylisten-gram-allow", uid, "a datagram socket has no connection"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := MustParseAddress(tt.addr)
			var got any
			var err error
			if tt.packet {
				got, err = ListenPacket(context.Background(), addr, tt.opts)
			} else {
				got, err = Listen(context.Background(), addr, tt.opts)
			}
			if got != nil || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("= %v, %v; want an error saying %q", got, err, tt.want)
			}
		})
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("the failed calls left %v in %s (%v)", ents, dir, err)
	}
}

// TestUnixAllowFailsClosedInherited gives allow lists to a child that is
// passed sockets whose peers have no credentials: an inherited TCP
// socket, the same adopted by its address, inetd over pipes and over one
// end of a socket pair. Its Listen fails, naming the option.
func TestUnixAllowFailsClosedInherited(t *testing.T) {
	const opts = `{"unix_allow_uid":[0]}`
	const uidOption = "the unix_allow_uid option (--unix-allow-uid): "
	t.Run("sd-listen-tcp", func(t *testing.T) {
		f, port := tcpFile(t)
		c := startChild(t, handOver([]*os.File{f}, nil, "sd-listen", opts, 1))
		if code := c.wait(t); code != 3 {
			t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
		}
		want := "LISTEN ERROR: listen systemd sd-listen: fd 3 (unknown): a listening TCP/IPv4 socket on 127.0.0.1:" + port + ": " + uidOption + "a TCP peer has no uid"
		if !strings.Contains(c.stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, c.stderr)
		}
	})
	t.Run("adopted-tcp", func(t *testing.T) {
		f, port := tcpFile(t)
		c := startChild(t, handOver([]*os.File{f}, nil, "127.0.0.1:"+port, opts, 1))
		if code := c.wait(t); code != 3 {
			t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
		}
		if want := "LISTEN ERROR: listen tcp 127.0.0.1:" + port + ": " + uidOption + "a TCP peer has no uid"; !strings.Contains(c.stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, c.stderr)
		}
	})
	t.Run("inetd-pipes", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childEnv("inetd", opts, 1)...)
		cmd.Stdin, cmd.Stdout = r, w
		c := startChild(t, cmd)
		if code := c.wait(t); code != 3 {
			t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
		}
		if want := "LISTEN ERROR: listen inetd: stdin and stdout are pipes: " + uidOption + "a peer over pipes has no uid"; !strings.Contains(c.stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, c.stderr)
		}
	})
	t.Run("inetd-socketpair", func(t *testing.T) {
		fds, err := unixSocketpair()
		if err != nil {
			t.Fatal(err)
		}
		defer fds[0].Close()
		defer fds[1].Close()
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childEnv("inetd", opts, 1)...)
		cmd.Stdin, cmd.Stdout = fds[0], fds[0]
		c := startChild(t, cmd)
		if code := c.wait(t); code != 3 {
			t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
		}
		if want := "one end of a socket pair: " + uidOption + "its peer is the program that made the pair"; !strings.Contains(c.stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, c.stderr)
		}
	})
}

// unixSocketpair returns the two ends of a new UNIX stream socket pair.
func unixSocketpair() ([2]*os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return [2]*os.File{}, os.NewSyscallError("socketpair", err)
	}
	return [2]*os.File{os.NewFile(uintptr(fds[0]), "socketpair"), os.NewFile(uintptr(fds[1]), "socketpair")}, nil
}

// A list that is set but empty (a config file's "unix_allow_uid": [])
// admits nobody, root included, rather than everybody: a template that
// left it empty must not open the socket. It is still a list, and so an
// error where it cannot be enforced.
func TestUnixAllowEmptyListAdmitsNobody(t *testing.T) {
	refused := make(chan Credentials, 1)
	o := &Options{UnixAllowUID: []uint32{}, UnixRefused: func(r Refusal) { refused <- r.Peer }}
	ln := listenT(t, "@anylisten-test-empty-"+strconv.Itoa(os.Getpid()), o)
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
			err = errors.New("Accept returned a connection")
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("root's connection was served (read %d bytes)", n)
	}
	select {
	case cr := <-refused:
		if cr.UID != uint32(os.Geteuid()) {
			t.Errorf("the hook got uid %d, want %d", cr.UID, os.Geteuid())
		}
	case <-time.After(10 * time.Second):
		t.Error("the hook was not told of the refused peer")
	}
	ln.Close()
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept: %v, want net.ErrClosed after Close", err)
	}
	if l, err := Listen(context.Background(), MustParseAddress("127.0.0.1:0"), &Options{UnixAllowGID: []uint32{}}); err == nil {
		l.Close()
		t.Error("an empty allow list on a TCP address was not refused")
	}
}
