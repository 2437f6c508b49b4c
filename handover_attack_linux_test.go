package anylisten

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
)

// Attacks on the hand-over's socket files, from a fresh-eyes review: each
// failed before the successor was given the identity of the files it may
// remove and the predecessor kept its file through a Close during Upgrade.

// otherServer starts socat, another server, on the UNIX path p, and waits
// until it answers.
func otherServer(t *testing.T, p string) {
	t.Helper()
	socat := testenv.NeedTool(t, "socat")
	cmd := exec.Command(socat, "UNIX-LISTEN:"+p+",fork", "SYSTEM:echo other-server")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", p); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("socat did not listen within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Another server serves the path now (an operator removed the file and
// started it): the successor, whether it drops the address or takes the
// socket over, leaves that server's file alone, as the predecessor's own
// Close does.
func TestAttackSuccessorRemovesOtherServersFile(t *testing.T) {
	for _, take := range []bool{false, true} {
		name := "dropped"
		if take {
			name = "taken"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(testenv.SocketDir(t), "app.sock")
			var u Upgrader
			ln, kept := upgraderPair(t, &u, path)
			os.Remove(path)
			otherServer(t, path)
			upgradeTakeOrDrop(t, &u, path, take, kept, ln, kept)
			if _, err := os.Lstat(path); err != nil {
				t.Errorf("the successor removed the other server's socket file: %v", err)
			}
		})
	}
}

// An unprivileged user who may write the directory above the socket's
// swaps the socket's directory for a symbolic link to another root
// server's directory before the successor is ready: the root successor
// must not remove the socket of the same name there.
func TestAttackSymlinkSwapBeforeReady(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the attacker as uid 65534")
	}
	setpriv := testenv.NeedTool(t, "setpriv")
	base := testenv.SocketDir(t)
	shared := filepath.Join(base, "shared") // nobody may write it; not sticky
	appDir := filepath.Join(shared, "app")  // root's
	victimDir := filepath.Join(base, "victim")
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{base, 0o755}, {shared, 0o777}, {appDir, 0o755}, {victimDir, 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	victim := filepath.Join(victimDir, "app.sock")
	otherServer(t, victim)
	path := filepath.Join(appDir, "app.sock")
	var u Upgrader
	ln, kept := upgraderPair(t, &u, path)
	out, err := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c",
		`mv "$1/app" "$1/app.old" && ln -s ../victim "$1/app"`, "sh", shared).CombinedOutput()
	if err != nil {
		t.Fatalf("the attacker (uid 65534): %v\n%s", err, out)
	}
	pid, said, err := upgradeT(t, &u, kept.Addr().String(), 1, "ANYLISTEN_TEST_READY=1") // drops the path
	if err != nil {
		t.Fatalf("Upgrade: %v; successor said:\n%s", err, said)
	}
	retire(t, pid, said, kept, ln, kept)
	if _, err := os.Lstat(victim); err != nil {
		t.Errorf("the root successor removed %s through uid 65534's symbolic link: %v", victim, err)
	}
}

// A hostile or mistaken environment names another server's socket file
// in LISTEN_FDNAMES, with a pipe for the ready fd: Ready removes nothing.
func TestAttackEnvironmentNamesAnotherFile(t *testing.T) {
	victim := filepath.Join(testenv.SocketDir(t), "victim.sock")
	otherServer(t, victim)
	f, _ := tcpFile(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := startChild(t, handOver([]*os.File{f, w}, []string{
		"LISTEN_FDNAMES=" + handoverName(MustParseAddress("unix:"+victim), 1),
		"LISTEN_FDS=1", "ANYLISTEN_READY_FD=4", "ANYLISTEN_UNLINK_FDS=3", "ANYLISTEN_TEST_READY=1",
	}, "127.0.0.1:0", "", -1))
	w.Close()
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
	if _, err := os.Lstat(victim); err != nil {
		t.Errorf("the environment made the process remove %s: %v", victim, err)
	}
}

// The old process closes its listener (its shutdown, say) while an
// Upgrade waits for the successor: the socket file stays for the
// successor, which took it over.
func TestAttackCloseDuringUpgrade(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "up.sock")
	var u Upgrader
	ln, err := u.Listen(context.Background(), MustParseAddress("unix:"+path), nil)
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.Args = os.Args[0], []string{}
	u.Env = append(os.Environ(), childEnv("unix:"+path, "", 1)...)
	u.Env = append(u.Env, "ANYLISTEN_TEST_READY=1", "ANYLISTEN_TEST_READY_AFTER=300ms")
	pid, said, err := upgradeWith(t, &u, func(said *testenv.Buffer) {
		// Once the successor has taken the socket, before it is ready.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(said.String(), "LISTENER ") && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		ln.Close()
	})
	if err != nil {
		t.Fatalf("Upgrade: %v; successor said:\n%s", err, said)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the old process's Close during the Upgrade removed the successor's socket file: %v", err)
	}
	ask(t, "unix", path)
	waitGone(t, pid, said)
	if _, err := os.Lstat(path); err == nil {
		t.Error("the successor left its socket file behind when it stopped")
	}
}

// A successor that takes the UNIX socket over and closes it before it is
// ready (its configuration turned the address off) removes the file once
// it owns it, and leaks nothing: no stale file after both are gone.
func TestAttackSuccessorClosesBeforeReady(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "c.sock")
	var u Upgrader
	ul, tl := upgraderPair(t, &u, path)
	pid, said, err := upgradeT(t, &u, "unix:"+path+","+tl.Addr().String(), 1,
		"ANYLISTEN_TEST_READY=1", "ANYLISTEN_TEST_CLOSE_FIRST=1")
	if err != nil {
		t.Fatalf("Upgrade: %v; successor said:\n%s", err, said)
	}
	retire(t, pid, said, tl, ul, tl)
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("both processes are gone and %s is left behind", path)
	}
}
