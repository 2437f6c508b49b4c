package anylisten

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// The attacks on socket files (issue 10). Each runs the service's side,
// Listen and Close of a UNIX socket path, many times while an attacker
// works on the same directory: in another goroutine of this process (fast,
// so it hits narrow windows often) and as another user (uid 65534) in a
// child process, the way a real local attacker would. Every attack made
// the code before the atomic placement fail within the cycles below (the
// counts are in SECURITY.md); now each must hit zero times.
//
// The attacker child is the test binary in mode "attack" (see childModes),
// with ANYLISTEN_TEST_ATTACK set to one of
//
//	exchange A B   swap the files A and B (renameat2 RENAME_EXCHANGE) in a loop
//	swapin A B     whenever a socket appears at A, swap B in for a moment
//	connect P      connect to the socket path P in a loop, counting successes
//
// It stops when its stdin is closed (or after a minute) and prints
// "HITS N", the number of successful connects.

// fileKind is a kind of socket that lives at a path: each attack runs on
// every kind, since each places, chmods, chowns and removes its file.
type fileKind struct {
	name string
	// cycles is how many cycles each attack runs: attackCycles for stream
	// sockets, on which every attack was shown to catch the old code, and
	// fewer for the others, which share the code that defeats them.
	cycles int
	// listen makes a socket of this kind at path.
	listen func(path string, o *Options) (io.Closer, error)
	// reach reports whether a client reaches the socket s at path.
	reach func(s io.Closer, path string) bool
}

var fileKinds = []fileKind{
	{"stream", attackCycles, func(p string, o *Options) (io.Closer, error) { return listenPath(p, o) },
		func(s io.Closer, p string) bool { return reachable(s.(net.Listener), p) }},
	{"seqpacket", attackCycles / 3, func(p string, o *Options) (io.Closer, error) {
		return Listen(context.Background(), MustParseAddress("unixpacket:"+p), o)
	}, func(s io.Closer, p string) bool { return reachable(s.(net.Listener), p) }},
	{"datagram", attackCycles / 3, func(p string, o *Options) (io.Closer, error) {
		return ListenPacket(context.Background(), MustParseAddress("unixgram:"+p), o)
	}, func(s io.Closer, p string) bool { return reachableGram(s.(net.PacketConn), p) }},
}

// forKinds runs f as a subtest for every fileKind.
func forKinds(t *testing.T, f func(t *testing.T, k fileKind)) {
	for _, k := range fileKinds {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

// attackCycles is how many Listen/Close cycles each attack runs. The
// old code was caught well within it (the fewest hits of any attack in
// 3000 cycles were 12); the whole file runs in a few seconds.
const attackCycles = 3000

// attackChild is the attacker side, mode "attack".
func attackChild() int {
	args := strings.Fields(os.Getenv("ANYLISTEN_TEST_ATTACK"))
	var stop atomic.Bool
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stop.Store(true)
	}()
	deadline := time.Now().Add(time.Minute)
	hits := 0
	switch {
	case len(args) == 3 && (args[0] == "exchange" || args[0] == "swapin"):
		for !stop.Load() && time.Now().Before(deadline) {
			attackStep(args)
		}
	case len(args) == 2 && args[0] == "connect":
		for !stop.Load() && time.Now().Before(deadline) {
			if connectOnce(args[1]) {
				hits++
			}
		}
	default:
		return childBadEnv("ANYLISTEN_TEST_ATTACK is %q", os.Getenv("ANYLISTEN_TEST_ATTACK"))
	}
	fmt.Printf("HITS %d\n", hits)
	return 0
}

// attackStep swaps the files args[1] and args[2] once ("exchange"), or,
// if a socket is at args[1], swaps args[2] in for about 20 µs and back
// ("swapin"), so that the service's next Listen finds the path as it was.
func attackStep(args []string) {
	a, b := args[1], args[2]
	if args[0] == "exchange" {
		unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
		return
	}
	var st unix.Stat_t
	if unix.Lstat(a, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return
	}
	if unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE) != nil {
		return
	}
	for t := time.Now(); time.Since(t) < 20*time.Microsecond; {
	}
	if unix.Lstat(b, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	}
}

// connectOnce connects to the UNIX socket path, with a stream, a
// seqpacket and a datagram socket in turn (only the one of the socket's
// own type can connect), and reports whether a connect succeeded.
func connectOnce(path string) bool {
	for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_SEQPACKET, unix.SOCK_DGRAM} {
		fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			continue
		}
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		unix.Close(fd)
		if err == nil || err == unix.EAGAIN {
			return true
		}
	}
	return false
}

// attacker is a running attack; stop ends it and returns its hits.
type attacker struct {
	stop func(t testing.TB) int
}

// startAttack starts the attack args (see above) as uid 65534 in a child
// process if asNobody, else in a goroutine of this process.
func startAttack(t testing.TB, asNobody bool, exe string, args ...string) *attacker {
	t.Helper()
	if !asNobody {
		var stop atomic.Bool
		var hits atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for !stop.Load() {
				if args[0] == "connect" {
					if connectOnce(args[1]) {
						hits.Add(1)
					}
					continue
				}
				attackStep(args)
			}
		}()
		a := &attacker{stop: func(testing.TB) int { stop.Store(true); <-done; return int(hits.Load()) }}
		t.Cleanup(func() { a.stop(t) })
		return a
	}
	cmd := exec.Command(exe)
	cmd.Env = childModeEnv("attack", "ANYLISTEN_TEST_ATTACK="+strings.Join(args, " "))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	stdin, stdout, stderr := testenv.StartPiped(t, cmd)
	var once sync.Once
	hits := -1
	stop := func(t testing.TB) int {
		once.Do(func() {
			stdin.Close()
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			err := cmd.Wait()
			if _, serr := fmt.Sscanf(line, "HITS %d", &hits); serr != nil || err != nil {
				t.Errorf("attacker %q as uid 65534: %v, printed %q; stderr: %s", args, err, line, stderr.String())
			}
		})
		return hits
	}
	t.Cleanup(func() { stop(t) })
	return &attacker{stop: stop}
}

// attackDir is a directory the attacker (uid 65534) may write, without the
// sticky bit, and the test binary copied into a place it can run.
func attackDir(t *testing.T) (dir, exe string) {
	t.Helper()
	permNeedRoot(t)
	dir, exe = permSocketDir(t)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir, exe
}

// victimFile is a root-owned 0600 file outside dir that the attacker links
// into dir, as a symbolic and as a hard link: what a service must never
// chmod or chown.
func victimFile(t *testing.T) string {
	t.Helper()
	v := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(v, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return v
}

// Attack 1: chmod and chown follow a symbolic or hard link that the
// attacker swaps in at the socket's name after bind.
func TestAttackOwnerModeFollowsSwap(t *testing.T) {
	forKinds(t, func(t *testing.T, k fileKind) {
		for _, link := range []string{"symlink", "hardlink"} {
			for _, asNobody := range []bool{false, true} {
				if link == "hardlink" && asNobody {
					continue // fs.protected_hardlinks keeps uid 65534 from linking root's file; root is the attacker here
				}
				t.Run(fmt.Sprintf("%s/nobody=%v", link, asNobody), func(t *testing.T) {
					dir, exe := attackDir(t)
					victim := victimFile(t)
					sock, lnk := filepath.Join(dir, "s.sock"), filepath.Join(dir, "link")
					// reset puts the link back where the attacker keeps it,
					// and removes what a swap left at the socket's name.
					reset := func() {
						os.Remove(sock)
						os.Remove(lnk)
						if link == "symlink" {
							symlink(t, victim, lnk)
						} else if err := os.Link(victim, lnk); err != nil {
							t.Fatal(err)
						}
					}
					reset()
					uid := uint32(65534)
					opts := &Options{UnixListenChmod: 0o666, UnixListenUID: &uid, UnixListenUnlink: true}
					a := startAttack(t, asNobody, exe, "swapin", sock, lnk)
					hits, failed := 0, 0
					for range k.cycles {
						ln, err := k.listen(sock, opts)
						if err == nil {
							ln.Close()
						} else {
							failed++
						}
						var st unix.Stat_t
						if err := unix.Stat(victim, &st); err != nil {
							t.Fatal(err)
						}
						if st.Mode&0o7777 != 0o600 || st.Uid != 0 {
							hits++
							os.Chown(victim, 0, 0)
							os.Chmod(victim, 0o600)
						}
						reset()
					}
					a.stop(t)
					t.Logf("%d cycles, %d Listen calls failed (the attacker swapped the path), %d hits", k.cycles, failed, hits)
					if hits > 0 {
						t.Errorf("the victim file got the socket's mode or owner %d times in %d cycles", hits, k.cycles)
					}
				})
			}
		}
	})
}

// Attack 2: with a umask wider than the mode option, a client with fewer
// rights connects in the moment between the file's creation and its chmod.
// In a directory others may write, every kind is made in a private
// directory; in one only root writes, a datagram socket is bound at its
// path (sockfile's Named) and born with the mode asked for.
func TestAttackConnectBeforeMode(t *testing.T) {
	forKinds(t, func(t *testing.T, k fileKind) {
		for _, shared := range []bool{true, false} {
			t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
				dir, exe := permSocketDir(t)
				if shared {
					dir, exe = attackDir(t)
				}
				sock := filepath.Join(dir, "s.sock")
				old := syscall.Umask(0)
				t.Cleanup(func() { syscall.Umask(old) })
				a := startAttack(t, true, exe, "connect", sock)
				opts := &Options{UnixListenChmod: 0o600}
				failed := 0
				for range 3 * k.cycles {
					ln, err := k.listen(sock, opts)
					if err != nil {
						failed++
						continue
					}
					ln.Close()
				}
				hits := a.stop(t)
				t.Logf("%d cycles, %d failed, uid 65534 connected %d times", 3*k.cycles, failed, hits)
				if failed > 0 {
					t.Errorf("%d Listen calls failed", failed)
				}
				if hits > 0 {
					t.Errorf("uid 65534 connected %d times to a socket whose mode is 0600 root", hits)
				}
			})
		}
	})
}

// Attack 3: two servers start on one path at once, with unlink and a stale
// socket there, or none. Exactly one may serve it, and the other must be
// told that a live server has it.
func TestAttackTwoStarters(t *testing.T) {
	forKinds(t, func(t *testing.T, k fileKind) {
		dir := testenv.SocketDir(t)
		sock := filepath.Join(dir, "s.sock")
		opts := &Options{UnixListenUnlink: true}
		bad := 0
		for i := range k.cycles / 2 {
			if i%2 == 0 {
				staleSocket(t, sock)
			}
			var lns [2]io.Closer
			var errs [2]error
			var wg sync.WaitGroup
			start := make(chan struct{})
			for j := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					lns[j], errs[j] = k.listen(sock, opts)
				}()
			}
			close(start)
			wg.Wait()
			var won []io.Closer
			for j := range 2 {
				if errs[j] == nil {
					won = append(won, lns[j])
				} else if !errors.Is(errs[j], syscall.EADDRINUSE) || !strings.Contains(errs[j].Error(), "live server") {
					t.Errorf("round %d: the second starter's error is %q, want the live-server error", i, errs[j])
				}
			}
			if len(won) != 1 || !k.reach(won[0], sock) {
				bad++
			}
			for _, ln := range won {
				ln.Close()
			}
			os.Remove(sock)
		}
		t.Logf("%d rounds, %d without exactly one reachable server", k.cycles/2, bad)
		if bad > 0 {
			t.Errorf("%d of %d rounds did not end with exactly one server, reachable at the path", bad, k.cycles/2)
		}
	})
}

// liveGram binds a UNIX datagram socket at path, kept open until the test
// ends: a live server's socket of another type than a stream one (a
// stream connect to it fails with EPROTOTYPE, not ECONNREFUSED).
func liveGram(t testing.TB, path string) {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

// reachableGram reports whether a datagram sent to path reaches pc.
func reachableGram(pc net.PacketConn, path string) bool {
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return false
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		return false
	}
	pc.SetReadDeadline(time.Now().Add(time.Second))
	defer pc.SetReadDeadline(time.Time{})
	_, _, err = pc.ReadFrom(make([]byte, 1))
	return err == nil
}

// reachable reports whether a connect to path reaches ln.
func reachable(ln net.Listener, path string) bool {
	c, err := net.DialTimeout(ln.Addr().Network(), path, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(time.Second))
	defer ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Time{})
	s, err := ln.Accept()
	if err != nil {
		return false
	}
	s.Close()
	return true
}

// Attack 4: Close removes a file the attacker swapped in at the socket's
// name (RENAME_EXCHANGE) between its check and its removal.
func TestAttackCloseRemovesSwapped(t *testing.T) {
	forKinds(t, func(t *testing.T, k fileKind) {
		for _, asNobody := range []bool{false, true} {
			t.Run(fmt.Sprintf("nobody=%v", asNobody), func(t *testing.T) {
				dir, exe := attackDir(t)
				sock, decoy := filepath.Join(dir, "s.sock"), filepath.Join(dir, "decoy")
				held := holdDecoy(t, decoy, sock)
				a := startAttack(t, asNobody, exe, "exchange", sock, decoy)
				opts := &Options{UnixListenUnlink: true}
				hits, failed := 0, 0
				for range k.cycles {
					ln, err := k.listen(sock, opts)
					if err != nil {
						failed++
						continue
					}
					ln.Close()
					var st unix.Stat_t
					if err := unix.Fstat(int(held.Fd()), &st); err != nil {
						t.Fatal(err)
					}
					if st.Nlink == 0 {
						hits++
						held.Close()
						held = holdDecoy(t, decoy, sock)
					}
				}
				a.stop(t)
				t.Logf("%d cycles, %d Listen calls failed, %d files removed that were not the socket", k.cycles, failed, hits)
				if hits > 0 {
					t.Errorf("Close removed the swapped-in file %d times in %d cycles", hits, k.cycles)
				}
			})
		}
	})
}

// holdDecoy creates the regular file decoy and returns it open, so that
// its link count tells whether it was removed. A leftover at either name
// the attacker swaps (the socket file that Close left) goes first.
func holdDecoy(t *testing.T, decoy, sock string) *os.File {
	t.Helper()
	for range 1000 {
		os.Remove(sock)
		os.Remove(decoy)
		f, err := os.OpenFile(decoy, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			t.Cleanup(func() { f.Close() })
			return f
		}
	}
	t.Fatalf("cannot create %s while the attacker swaps it", decoy)
	return nil
}

// Nothing is left behind: no private directory, no temporary name, after
// 200 Listen/Close cycles (with every option that touches the file), and
// after every kind of failed Listen; the directory lists exactly what it
// did before.
func TestSocketFileLeavesNothing(t *testing.T) {
	forKinds(t, func(t *testing.T, k fileKind) {
		checkNoFDLeak(t)
		dir := testenv.SocketDir(t)
		sock := filepath.Join(dir, "s.sock")
		writeFile(t, filepath.Join(dir, "keep"), "precious")
		uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
		opts := &Options{UnixListenUnlink: true, UnixListenChmod: 0o660, UnixListenUID: &uid, UnixListenGID: &gid}
		before := snapshotDir(t, dir)
		same := func(after string) {
			t.Helper()
			if diff := cmp.Diff(before, snapshotDir(t, dir)); diff != "" {
				t.Errorf("after %s, the directory differs (-before +after):\n%s", after, diff)
			}
		}
		for range 200 {
			ln, err := k.listen(sock, opts)
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
		}
		same("200 Listen/Close cycles")

		old := testHookBeforeListen
		t.Cleanup(func() { testHookBeforeListen = old })
		testHookBeforeListen = func(string) error { return errors.New("injected failure before listen") }
		if _, err := k.listen(sock, opts); err == nil || !strings.Contains(err.Error(), "injected") {
			t.Errorf("Listen with a failure before listen: %v", err)
		}
		testHookBeforeListen = old
		same("a Listen that failed after bind, chown and chmod")

		fails := []struct {
			name  string
			setup func() // makes what is in the way; undone after
			path  string
			opts  *Options
		}{
			{"a stale socket without unlink", func() { staleSocket(t, sock) }, sock, &Options{}},
			{"a live server's socket", func() { liveSocket(t, sock) }, sock, opts},
			{"a live datagram server's socket", func() { liveGram(t, sock) }, sock, opts},
			{"a regular file", func() { writeFile(t, sock, "x") }, sock, opts},
			{"a symbolic link", func() { symlink(t, "keep", sock) }, sock, opts},
			{"a directory", func() { os.Mkdir(sock, 0o755) }, sock, opts},
			{"a missing directory", func() {}, filepath.Join(dir, "nodir", "s.sock"), opts},
			{"a regular file as the directory", func() {}, filepath.Join(dir, "keep", "s.sock"), opts},
		}
		for _, f := range fails {
			f.setup()
			mid := snapshotDir(t, dir)
			if ln, err := k.listen(f.path, f.opts); err == nil {
				ln.Close()
				t.Errorf("Listen with %s in the way succeeded", f.name)
			}
			if diff := cmp.Diff(mid, snapshotDir(t, dir)); diff != "" {
				t.Errorf("a Listen that failed for %s changed the directory (-before +after):\n%s", f.name, diff)
			}
			os.RemoveAll(sock)
			same("a Listen that failed for " + f.name)
		}
	})
}

// SocketPath maps the LocalAddr of an accepted connection back to the
// listener's Addr, for an absolute and a relative path, and leaves every
// other name alone.
func TestSocketPath(t *testing.T) {
	dir := testenv.SocketDir(t)
	chdir(t, dir)
	for _, path := range []string{filepath.Join(dir, "abs.sock"), "./rel.sock", "unix:plain.sock"} {
		ln := listenT(t, path, nil)
		c, err := net.Dial("unix", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := SocketPath(s.LocalAddr()).String(), ln.Addr().String(); got != want {
			t.Errorf("%s: SocketPath(%v) = %s, want the listener's Addr %s", path, s.LocalAddr(), got, want)
		}
		s.Close()
		c.Close()
	}
	for _, name := range []string{"/run/app.sock", "/run/.anylisten-short/app.sock", "/proc/self/fd/7/app.sock", "@abstract", "app.sock"} {
		a := &net.UnixAddr{Name: name, Net: "unix"}
		if got := SocketPath(a); got != net.Addr(a) {
			t.Errorf("SocketPath(%s) = %v, want it unchanged", name, got)
		}
	}
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	if got := SocketPath(tcp); got != net.Addr(tcp) {
		t.Errorf("SocketPath(%v) = %v", tcp, got)
	}
}

// Attack 5 (found in review): the stale check takes the identity of what is
// at the path, then probes it by name. A racer that swaps a live server's
// socket with a stale one in between makes the live socket look stale, and
// its file was removed (16 times in 3000 rounds). The file is now pinned by
// an fd while it is probed and compared: a live server's socket file is
// never removed, whatever is swapped.
func TestAttackStaleProbeSwap(t *testing.T) {
	forKinds(t, func(t *testing.T, k fileKind) {
		dir := testenv.SocketDir(t)
		sock, decoy := filepath.Join(dir, "s.sock"), filepath.Join(dir, "decoy")
		// live is another server's socket at sock, pinned by an O_PATH fd so
		// that its link count says whether its file was removed.
		var live *net.UnixListener
		var pin int
		restart := func() {
			if live != nil {
				live.Close()
				unix.Close(pin)
			}
			os.Remove(sock)
			os.Remove(decoy)
			var err error
			if live, err = net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"}); err != nil {
				t.Fatal(err)
			}
			live.SetUnlinkOnClose(false)
			if pin, err = unix.Open(sock, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
				t.Fatal(err)
			}
			staleSocket(t, decoy)
		}
		restart()
		t.Cleanup(func() { live.Close(); unix.Close(pin) })
		a := startAttack(t, false, "", "exchange", sock, decoy)
		hits := 0
		for range k.cycles {
			if ln, err := k.listen(sock, &Options{UnixListenUnlink: true}); err == nil {
				ln.Close()
			}
			var st unix.Stat_t
			if err := unix.Fstat(pin, &st); err != nil {
				t.Fatal(err)
			}
			if st.Nlink == 0 {
				hits++
				restart()
				continue
			}
			// A stale socket the Listen removed (legitimately) comes back,
			// for the attacker to swap again.
			for _, p := range []string{sock, decoy} {
				if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
					if fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err == nil {
						unix.Bind(fd, &unix.SockaddrUnix{Name: p})
						unix.Close(fd)
					}
				}
			}
		}
		a.stop(t)
		t.Logf("%d rounds, a live server's socket file removed %d times", k.cycles, hits)
		if hits > 0 {
			t.Errorf("a Listen with unlink removed a live server's socket file %d times in %d rounds", hits, k.cycles)
		}
	})
}

// Attack 7: uid 65534 may move entries of a directory above the socket's
// (here its parent, 0777 without the sticky bit), and swaps the socket's
// directory for a symbolic link to a root-only directory in a loop, while
// a socket is made and closed there. A socket may land in the other
// directory (the attacker owns the name that leads there), but a failed
// Listen must leave no file behind, in either directory, and Close must
// remove what Listen made. A datagram socket bound at its path looked the
// path up again at bind, which led elsewhere: 761 root-owned socket files
// were left in the root-only directory in 3000 cycles, 579 in the real
// one; now it is bound at its path only where no directory above it lets
// others move what is in it.
func TestAttackAncestorSwap(t *testing.T) {
	forKinds(t, func(t *testing.T, k fileKind) {
		base, exe := permSocketDir(t)
		anc := filepath.Join(base, "anc")
		if err := os.Mkdir(anc, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(anc, 0o777); err != nil { // others may move its entries
			t.Fatal(err)
		}
		d := filepath.Join(anc, "d")
		if err := os.Mkdir(d, 0o755); err != nil { // root's: only root writes it
			t.Fatal(err)
		}
		victim := filepath.Join(base, "victim")
		if err := os.Mkdir(victim, 0o755); err != nil {
			t.Fatal(err)
		}
		symlink(t, victim, filepath.Join(anc, "x"))
		// Both directories by fd, wherever the attacker moves their names.
		fds := map[string]int{}
		for name, p := range map[string]string{"real": d, "victim": victim} {
			fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(fd) })
			fds[name] = fd
		}
		left := func() []string {
			var where []string
			for name, fd := range fds {
				var st unix.Stat_t
				if unix.Fstatat(fd, "s.sock", &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
					where = append(where, name)
				}
			}
			return where
		}
		sock := filepath.Join(d, "s.sock")
		a := startAttack(t, true, exe, "exchange", d, filepath.Join(anc, "x"))
		ok, failed, strays := 0, 0, 0
		for range k.cycles {
			s, err := k.listen(sock, &Options{UnixListenChmod: 0o600})
			if err == nil {
				ok++
				s.Close()
			} else {
				failed++
			}
			if where := left(); len(where) > 0 {
				strays++
				for _, fd := range fds {
					unix.Unlinkat(fd, "s.sock", 0)
				}
			}
		}
		a.stop(t)
		t.Logf("%d cycles: %d made and closed, %d failed, %d left a socket file behind", k.cycles, ok, failed, strays)
		if strays > 0 {
			t.Errorf("a socket file was left behind %d times in %d cycles (after a failed Listen, or a Close)", strays, k.cycles)
		}
	})
}
