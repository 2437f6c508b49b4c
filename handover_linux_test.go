package anylisten

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"golang.org/x/sys/unix"
)

// The hand-over and inherited-socket tests of issue 11, each with real
// processes: the test binary as a child that inherits sockets (handOver,
// activate) or as an Upgrader's successor (upgradeT).

// upgradeT sets u up to start the test binary as a successor listening on
// addrs with extra environment, runs Upgrade, and returns its result and
// what the successor says on stderr (its stderr is this process's while
// Upgrade starts it). The successor is killed at cleanup if it still runs.
func upgradeT(t *testing.T, u *Upgrader, addrs string, conns int, env ...string) (int, *testenv.Buffer, error) {
	t.Helper()
	u.Path = os.Args[0]
	u.Args = []string{}
	u.Env = append(os.Environ(), childEnv(addrs, "", conns)...)
	u.Env = append(u.Env, env...)
	return upgradeWith(t, u, nil)
}

// upgradeWith runs u.Upgrade with the successor's stderr captured, and,
// if during is not nil, runs it meanwhile (it returns before Upgrade's
// result is returned), given what the successor says. The successor is
// killed at cleanup if it still runs.
func upgradeWith(t *testing.T, u *Upgrader, during func(said *testenv.Buffer)) (int, *testenv.Buffer, error) {
	t.Helper()
	stderr := new(testenv.Buffer)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		io.Copy(stderr, r)
		r.Close()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if during != nil {
			during(stderr)
		}
	}()
	saved := os.Stderr
	os.Stderr = w
	pid, err := u.Upgrade(context.Background())
	os.Stderr = saved
	w.Close()
	<-done
	if pid > 0 {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	}
	return pid, stderr, err
}

// waitGone waits until the successor pid has exited (the Upgrader reaps
// it), and fails if it reported an fd leak or an error.
func waitGone(t *testing.T, pid int, stderr *testenv.Buffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the successor did not exit within 10 s; it said:\n%s", stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, bad := range []string{"FD LEAK", "CHILD ERROR", "ACCEPT ERROR", "READY ERROR"} {
		if strings.Contains(stderr.String(), bad) {
			t.Errorf("the successor said %s:\n%s", bad, stderr)
		}
	}
}

// upgraderPair listens through u on the UNIX path and on 127.0.0.1:0, and
// closes both at cleanup.
func upgraderPair(t *testing.T, u *Upgrader, path string) (unixLn, tcpLn net.Listener) {
	t.Helper()
	for _, s := range []string{"unix:" + path, "127.0.0.1:0"} {
		ln, err := u.Listen(context.Background(), MustParseAddress(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		if tcpLn = ln; unixLn == nil {
			unixLn = ln
		}
	}
	return unixLn, tcpLn
}

// retire closes the old process's listeners lns after an Upgrade, asks the
// successor over tcpLn's address for its one connection, and waits until
// it has exited.
func retire(t *testing.T, pid int, said *testenv.Buffer, tcpLn net.Listener, lns ...net.Listener) {
	t.Helper()
	for _, ln := range lns {
		ln.Close()
	}
	ask(t, "tcp", tcpLn.Addr().String())
	waitGone(t, pid, said)
}

// upgradeTakeOrDrop upgrades u to a successor that listens on kept's
// address, and on the UNIX path too if take, then retires the old
// listeners lns and the successor.
func upgradeTakeOrDrop(t *testing.T, u *Upgrader, path string, take bool, kept net.Listener, lns ...net.Listener) {
	t.Helper()
	addrs := kept.Addr().String()
	if take {
		addrs += ",unix:" + path
	}
	pid, said, err := upgradeT(t, u, addrs, 1, "ANYLISTEN_TEST_READY=1")
	if err != nil {
		t.Fatalf("Upgrade: %v; successor said:\n%s", err, said)
	}
	retire(t, pid, said, kept, lns...)
}

// waitSaid waits until the successor's stderr contains s.
func waitSaid(t *testing.T, stderr *testenv.Buffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the successor did not say %q within 10 s; it said:\n%s", s, stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A merged listener over two passed sockets, closed without an Accept,
// takes nothing from the kernel: every queued connection, with the bytes
// its client sent, is still there for the next holder of the sockets.
func TestMergedCloseLeavesQueue(t *testing.T) {
	const perSocket = 20
	f1, p1 := tcpFile(t)
	f2, p2 := tcpFile(t)
	var clients []net.Conn
	for _, p := range []string{p1, p2} {
		for i := range perSocket {
			c, err := net.Dial("tcp", "127.0.0.1:"+p)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "client %s/%d\n", p, i)
			clients = append(clients, c)
		}
	}
	// The child merges both (sd-listen:*), waits a little (a merge that
	// accepts ahead would take connections meanwhile), closes the merge
	// without an Accept and exits.
	c := startChild(t, handOver([]*os.File{f1, f2}, []string{"ANYLISTEN_TEST_LINGER=100ms"}, "sd-listen:*", "", -1))
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "LISTENER *anylisten.multiListener") {
		t.Fatalf("the child did not merge the sockets; stderr:\n%s", c.stderr)
	}
	got := map[string]bool{}
	for _, f := range []*os.File{f1, f2} {
		ln, err := net.FileListener(f)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		tl := ln.(*net.TCPListener)
		for {
			tl.SetDeadline(time.Now().Add(200 * time.Millisecond))
			s, err := tl.Accept()
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal(err)
				}
				break
			}
			s.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(s).ReadString('\n')
			s.Close()
			if err != nil {
				t.Errorf("a queued connection lost its data: read %q, %v", line, err)
				continue
			}
			got[line] = true
		}
	}
	if len(got) != len(clients) {
		t.Errorf("%d of %d queued connections were still queued after the child closed its merge", len(got), len(clients))
	}
}

// A Listen that takes no passed socket leaves LISTEN_FDS for the rest of
// the process; one that takes one removes it.
func TestListenLeavesEnvironment(t *testing.T) {
	f, _ := tcpFile(t)
	c := startChild(t, handOver([]*os.File{f}, nil, "127.0.0.1:0", "", 1))
	c.waitFor(t, "LISTENER ")
	addr := regexp.MustCompile(`LISTENER \S+ (\S+)`).FindStringSubmatch(c.stderr.String())[1]
	matchLine(t, ask(t, "tcp", addr), ` LISTEN_FDS=1 `)
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}

	f, port := tcpFile(t)
	c = startChild(t, handOver([]*os.File{f}, nil, "127.0.0.1:"+port, "", 1))
	c.waitFor(t, "LISTENER ")
	matchLine(t, ask(t, "tcp", "127.0.0.1:"+port), ` LISTEN_FDS= `)
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
}

// A program started with passed sockets that starts a child before its
// first Listen does not give the child the sockets.
func TestPassedSocketsCloseOnExecAtStart(t *testing.T) {
	f, _ := tcpFile(t)
	c := startChild(t, handOver([]*os.File{f}, []string{"ANYLISTEN_TEST_SPAWN=1"}, "sd-listen", "", -1))
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "SPAWN fd3=none") {
		t.Errorf("a program started before the first Listen inherited fd 3; stderr:\n%s", c.stderr)
	}
}

// Adoption by address can be turned off: the child binds a port of its
// own next to the passed socket for the same address, which it leaves
// alone.
func TestNoAdopt(t *testing.T) {
	f, port := tcpFile(t)
	c := startChild(t, handOver([]*os.File{f}, nil, "127.0.0.1:"+port, `{"no_adopt":true,"tcp_reuse_port":false}`, 1))
	if code := c.wait(t); code != 3 || !strings.Contains(c.stderr.String(), "address already in use") {
		t.Fatalf("child with no_adopt exited %d, want 3 and a port in use (it must bind anew); stderr:\n%s", code, c.stderr)
	}
}

// A successor that says ready only after the predecessor gave up on it
// (here: once SIGTERM came) is told no, takes nothing over, and leaves the
// predecessor serving on its UNIX path with the file in place.
func TestUpgradeLateReady(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "late.sock")
	u := Upgrader{ReadyTimeout: 300 * time.Millisecond}
	ln, err := u.Listen(context.Background(), MustParseAddress("unix:"+path), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, said, err := upgradeT(t, &u, "unix:"+path, 0, "ANYLISTEN_TEST_LATE_READY=1")
	if err == nil || !strings.Contains(err.Error(), "was stopped: it was not ready within 300ms") {
		t.Fatalf("Upgrade = %v, want the timeout; successor said:\n%s", err, said)
	}
	waitSaid(t, said, "LATE READY: ")
	if !strings.Contains(said.String(), "LATE READY: anylisten: the predecessor did not accept the ready: it closed the ready socket without answering") {
		t.Errorf("the late successor's Ready did not fail; it said:\n%s", said)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the rolled-back successor removed the socket file: %v", err)
	}
	roundTrip(t, ln)
}

// A listener the program closed is not handed over, and does not stop the
// others from being handed over.
func TestUpgradeAfterClose(t *testing.T) {
	checkNoFDLeak(t)
	var u Upgrader
	gone, err := u.Listen(context.Background(), MustParseAddress("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := u.Listen(context.Background(), MustParseAddress("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	gone.Close()
	_, said, err := upgradeT(t, &u, "127.0.0.1:0", 1, "ANYLISTEN_TEST_READY=1")
	if err != nil {
		t.Fatalf("Upgrade with one listener closed: %v; successor said:\n%s", err, said)
	}
	kept.Close()
	matchLine(t, ask(t, "tcp", kept.Addr().String()), `^\*net\.TCPConn \*net\.TCPListener `+regexp.QuoteMeta(kept.Addr().String())+` `)

	var none Upgrader
	ln, err := none.Listen(context.Background(), MustParseAddress("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := none.Upgrade(context.Background()); err == nil || !strings.Contains(err.Error(), "every listener closed") {
		t.Errorf("Upgrade with every listener closed: %v", err)
	}
}

// Two listeners on 127.0.0.1:0 go to the successor's two Listens of
// 127.0.0.1:0, in order.
func TestUpgradeTwoPortZero(t *testing.T) {
	checkNoFDLeak(t)
	var u Upgrader
	var lns []net.Listener
	for range 2 {
		ln, err := u.Listen(context.Background(), MustParseAddress("127.0.0.1:0"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		lns = append(lns, ln)
	}
	_, said, err := upgradeT(t, &u, "127.0.0.1:0,127.0.0.1:0", 2, "ANYLISTEN_TEST_READY=1")
	if err != nil {
		t.Fatalf("Upgrade: %v; successor said:\n%s", err, said)
	}
	for _, ln := range lns {
		ln.Close()
	}
	for _, ln := range lns {
		waitSaid(t, said, "LISTENER *net.TCPListener "+ln.Addr().String()+"\n")
		matchLine(t, ask(t, "tcp", ln.Addr().String()), ` `+regexp.QuoteMeta(ln.Addr().String())+` `)
	}
}

// A UNIX address the successor no longer listens on is closed and its
// socket file removed once the successor is ready; the next cold start can
// bind it.
func TestUpgradeDroppedUnixPath(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "dropped.sock")
	var u Upgrader
	dropped, kept := upgraderPair(t, &u, path)
	pid, said, err := upgradeT(t, &u, kept.Addr().String(), 1, "ANYLISTEN_TEST_READY=1")
	if err != nil {
		t.Fatalf("Upgrade: %v; successor said:\n%s", err, said)
	}
	dropped.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Lstat(path)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the socket file of the dropped address is still there (%v); successor said:\n%s", err, said)
		}
		time.Sleep(5 * time.Millisecond)
	}
	retire(t, pid, said, kept, kept)
	listenT(t, "unix:"+path, nil) // a cold start binds it
}

// A UNIX socket file the predecessor does not own (systemd made it, and
// the predecessor adopted the socket) is not the successor's either: it
// stays when the successor drops the address, and when it takes the
// socket over and then stops.
func TestUpgradeKeepsFileItDidNotOwn(t *testing.T) {
	for _, take := range []bool{false, true} {
		t.Run(fmt.Sprintf("taken=%v", take), func(t *testing.T) {
			checkNoFDLeak(t)
			path := filepath.Join(testenv.SocketDir(t), "systemd.sock")
			var u Upgrader
			notOwned, kept := upgraderPair(t, &u, path)
			notOwned.(*UnixListener).SetUnlinkOnClose(false) // as for an adopted socket
			upgradeTakeOrDrop(t, &u, path, take, kept, notOwned, kept)
			if _, err := os.Lstat(path); err != nil {
				t.Errorf("the successor removed a socket file its predecessor did not own: %v", err)
			}
		})
	}
}

// An error that lists the passed sockets lists a few, not 65536.
func TestSystemdManyFDsErrorCapped(t *testing.T) {
	c := startChild(t, handOver(nil, []string{"LISTEN_FDS=65536"}, "sd-listen", "", 1))
	if code := c.wait(t); code != 3 {
		t.Fatalf("child exited %d, want 3; stderr:\n%s", code, c.stderr)
	}
	want := "listen systemd sd-listen: 65536 sockets were passed: fd 3 (unknown), fd 4 (unknown), fd 5 (unknown), fd 6 (unknown), " +
		"fd 7 (unknown), fd 8 (unknown), fd 9 (unknown), fd 10 (unknown) and 65528 more; choose one with fd://N (fd://3 to fd://65538), or take all with sd-listen:*\n"
	if got := strings.TrimPrefix(c.stderr.String(), "LISTEN ERROR: "); got != want {
		t.Errorf("error (%d bytes):\n%.2000s\nwant:\n%s", len(got), got, want)
	}
}

// Ready writes on the ready fd only where the environment is a
// predecessor's: LISTEN_PID names the process, and the fd is the one right
// after the passed sockets. A pipe at another fd, or one meant for another
// process, never hears a word.
func TestReadyFDNotTrusted(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
		pipe int // the pipe's position after the socket (0: fd 4)
	}{
		{"another process", []string{"LISTEN_PID=1", "ANYLISTEN_READY_FD=4"}, 0},
		{"not after the sockets", []string{"ANYLISTEN_READY_FD=5"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := tcpFile(t)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			files := []*os.File{f, w}
			if tt.pipe == 1 {
				other, err := os.Open(os.DevNull)
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				files = []*os.File{f, other, w}
			}
			// One socket passed; the pipe comes after it. (handOver
			// starts over at a LISTEN_PID: it comes first.)
			env := append(append([]string(nil), tt.env...), "LISTEN_FDS=1", "ANYLISTEN_TEST_READY=1")
			cmd := handOver(files, env, "127.0.0.1:0", "", -1)
			c := startChild(t, cmd)
			w.Close()
			code := c.wait(t)
			b, _ := io.ReadAll(r)
			if len(b) != 0 {
				t.Errorf("the child wrote %q on the pipe", b)
			}
			if code != 0 {
				t.Errorf("child exited %d; stderr:\n%s", code, c.stderr)
			}
		})
	}
}

// A predecessor of the earlier protocol waits on a pipe and answers
// nothing: a successor of this version says ready on it without waiting
// for an answer. It cannot tell that predecessor's socket files from ones
// systemd made, so it owns none: the file stays when it stops.
func TestReadyToPipePredecessor(t *testing.T) {
	path := filepath.Join(testenv.SocketDir(t), "old.sock")
	ln := listenT(t, "unix:"+path, nil)
	ln.(*UnixListener).SetUnlinkOnClose(false) // the predecessor handed it over
	sock, err := ln.(*UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	env := []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=" + handoverName(MustParseAddress("unix:"+path), 1),
		"ANYLISTEN_READY_FD=4", "ANYLISTEN_TEST_READY=1"}
	c := startChild(t, handOver([]*os.File{sock, w}, env, "unix:"+path, "", 1))
	w.Close()
	c.waitFor(t, "LISTENER *anylisten.UnixListener "+path+"\n")
	b := make([]byte, 6)
	if _, err := io.ReadFull(r, b); err != nil || string(b) != "ready\n" {
		t.Fatalf("read %q, %v from the ready pipe; stderr:\n%s", b, err, c.stderr)
	}
	ask(t, "unix", path)
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the successor removed a socket file it could not know it owned: %v", err)
	}
}

// Inherited lists the passed sockets, what each is bound to, and which
// Listen took it, so that a passed socket nobody listens on is a message,
// not a hang.
func TestInheritedReportsUnclaimed(t *testing.T) {
	f1, p1 := tcpFile(t)
	f2, p2 := tcpFile(t)
	c := startChild(t, handOver([]*os.File{f1, f2}, []string{"LISTEN_FDNAMES=web:admin", "ANYLISTEN_TEST_INHERITED=1"},
		"127.0.0.1:"+p1, "", -1))
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
	for _, want := range []string{
		"INHERITED 3 web 127.0.0.1:" + p1 + " taken=127.0.0.1:" + p1 + " closed=false\n",
		"INHERITED 4 admin 127.0.0.1:" + p2 + " taken= closed=false\n",
	} {
		if !strings.Contains(c.stderr.String(), want) {
			t.Errorf("the child did not say %q; stderr:\n%s", want, c.stderr)
		}
	}
}

// The ready socket is written to only while its fd is the file it was at
// start: a fresh-eyes review had a successor that had closed the fd (and
// got the number back for a TCP connection) write "ready" into that
// connection, and close it.
func TestReadyFDReused(t *testing.T) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[1])
	const slot = 201
	if err := unix.Dup3(pair[0], slot, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Close(pair[0])
	t.Cleanup(func() { unix.Close(slot) })
	var st unix.Stat_t
	if err := unix.Fstat(slot, &st); err != nil {
		t.Fatal(err)
	}
	saved := readyAtStart
	t.Cleanup(func() { readyAtStart = saved })
	readyAtStart = readyFile{slot, fileID{uint64(st.Dev), uint64(st.Ino)}}
	if got := readyStill(); got != slot {
		t.Fatalf("readyStill() = %d with the ready socket in place, want %d", got, slot)
	}
	// The program closes it, and the number goes to a file of its own.
	other, err := os.CreateTemp(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := unix.Dup3(int(other.Fd()), slot, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if got := readyStill(); got != -1 {
		t.Errorf("readyStill() = %d with another file at the number, want -1", got)
	}
}
