package anylisten

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
)

// TestUpgrade hands a TCP and a UNIX listener to the test binary run as
// a child: the child's plain Listen calls take them over by name, it says
// Ready, and then serves connections that the parent's sockets receive.
func TestUpgrade(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "up.sock")
	var u Upgrader
	tcp, err := u.Listen(context.Background(), MustParseAddress("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	unixLn, err := u.Listen(context.Background(), MustParseAddress("unix:"+path), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unixLn.Close()
	u.Path = os.Args[0]
	u.Args = []string{}
	u.Env = append(os.Environ(), childEnv(tcp.Addr().String()+",unix:"+path, "", 2)...)
	u.Env = append(u.Env, "ANYLISTEN_TEST_READY=1", "ANYLISTEN_TEST_INHERITED=1")
	pid, stderr, err := upgradeWith(t, &u, nil) // the child's stderr is this process's
	if err != nil {
		t.Fatalf("Upgrade: %v; child said:\n%s", err, stderr)
	}
	if pid <= 0 || pid == os.Getpid() {
		t.Errorf("Upgrade returned pid %d", pid)
	}
	if _, err := u.Upgrade(context.Background()); err == nil {
		t.Error("a second Upgrade succeeded")
	}
	// The old listeners stop; the sockets stay with the child, and so
	// does the socket file.
	tcp.Close()
	unixLn.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the handed-over socket file was removed: %v", err)
	}
	for _, d := range [][2]string{{"tcp", tcp.Addr().String()}, {"unix", path}} {
		line := ask(t, d[0], d[1])
		if !regexp.MustCompile(`^\*net\.(TCP|Unix)Conn \*(net\.TCPListener|anylisten\.UnixListener) `).MatchString(line) {
			t.Errorf("%s %s: the child answered %q", d[0], d[1], line)
		}
	}
	// Inherited shows the socket the predecessor bound in a private
	// directory at its path.
	for _, want := range []string{"LISTENER *net.TCPListener " + tcp.Addr().String(), "LISTENER *anylisten.UnixListener " + path,
		" " + path + " taken=" + path + " closed=false"} {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(stderr.String(), want) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the child did not say %q:\n%s", want, stderr)
		}
	}
	// The child stops for good after two connections, and removes the
	// socket file it took over.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child did not remove the socket file when it stopped; it said:\n%s", stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUpgradeFailures(t *testing.T) {
	var none Upgrader
	if _, err := none.Upgrade(context.Background()); err == nil || !strings.Contains(err.Error(), "no listeners") {
		t.Errorf("Upgrade without listeners: %v", err)
	}
	for _, tt := range []struct {
		name string
		path string
		args []string
		want string
	}{
		{"exits", "/bin/sh", []string{"-c", "exit 3"}, "exited before it was ready (exit status 3); this process keeps serving"},
		{"hangs", "/bin/sleep", []string{"30"}, "was stopped: it was not ready within 200ms; this process keeps serving"},
		{"missing", "/nonexistent/program", nil, "cannot start the successor: stat /nonexistent/program: no such file or directory; this process keeps serving"},
		{"directory", "/", nil, "cannot start the successor: / is a directory, not a program; this process keeps serving"},
		{"not executable", "/etc/passwd", nil, "cannot start the successor: execute /etc/passwd: permission denied; this process keeps serving"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkNoFDLeak(t)
			u := Upgrader{Path: tt.path, Args: tt.args, ReadyTimeout: 200 * time.Millisecond}
			ln, err := u.Listen(context.Background(), MustParseAddress("127.0.0.1:0"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			pid, err := u.Upgrade(context.Background())
			if pid != 0 || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Upgrade = %d, %v; want an error saying %q", pid, err, tt.want)
			}
			// The listener serves on.
			roundTrip(t, ln)
		})
	}
	t.Run("single connection", func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		u := Upgrader{}
		u.handed = append(u.handed, handedListener{addr: MustParseAddress("inetd"), ln: newOneConnListener(a)})
		if _, err := u.Upgrade(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot be handed over") {
			t.Errorf("Upgrade of an inetd connection: %v", err)
		}
	})
}

// TestReadyNotifiesSystemd checks the sd_notify message of Ready: READY=1
// and MAINPID, so that systemd follows a successor.
func TestReadyNotifiesSystemd(t *testing.T) {
	path := filepath.Join(testenv.SocketDir(t), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 256)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b[:n]), "MAINPID="+strconv.Itoa(os.Getpid())+"\nREADY=1"; got != want {
		t.Errorf("sd_notify message %q, want %q", got, want)
	}
}

func TestHandoverName(t *testing.T) {
	for _, tt := range []struct {
		in   string
		k    int
		want string
	}{
		{"127.0.0.1:8080", 1, "127.0.0.1%3A8080"},
		{"127.0.0.1:0", 2, "127.0.0.1%3A0#2"},
		{"/run/app.sock", 1, "/run/app.sock"},
		{"/run/a#2", 1, "/run/a%232"},
		{"/run/a#2", 3, "/run/a%232#3"},
		{"sd-listen:http", 1, "sd-listen%3Ahttp"},
		{"./a b%.sock", 1, "./a%20b%25.sock"},
		{"@name", 1, "@name"},
	} {
		a := MustParseAddress(tt.in)
		got := handoverName(a, tt.k)
		if got != tt.want {
			t.Errorf("handoverName(%s, %d) = %q, want %q", tt.in, tt.k, got, tt.want)
		}
		if _, reason := parseSystemdName(got); reason != "" {
			t.Errorf("handoverName(%s, %d) = %q is no valid systemd name: %s", tt.in, tt.k, got, reason)
		}
		if back, err := parseHandoverName(got); err != nil || back != a {
			t.Errorf("parseHandoverName(%q) = %v, %v; want %v", got, back, err, a)
		}
	}
}

// A successor that takes the UNIX socket over and then fails (here: its
// next address is taken) must leave the socket file to the predecessor,
// which serves on.
func TestUpgradeFailedSuccessorKeepsSocketFile(t *testing.T) {
	checkNoFDLeak(t)
	path := filepath.Join(testenv.SocketDir(t), "keep.sock")
	busy := listenT(t, "127.0.0.1:0", nil)
	var u Upgrader
	ln, err := u.Listen(context.Background(), MustParseAddress("unix:"+path), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	u.Path = os.Args[0]
	u.Args = []string{}
	u.Env = append(os.Environ(), childEnv("unix:"+path+","+busy.Addr().String(), "", 1)...)
	u.Env = append(u.Env, "ANYLISTEN_TEST_READY=1")
	if _, err := u.Upgrade(context.Background()); err == nil || !strings.Contains(err.Error(), "exited before it was ready (exit status 3)") {
		t.Fatalf("Upgrade = %v, want the successor's exit", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the failed successor removed the socket file: %v", err)
	}
	roundTrip(t, ln)
}

// The Upgrader starts the binary at the path the program was started as,
// except where that path means another file in the successor's starter
// (/bin/sh), as /proc/self/exe does: a fresh-eyes review started a
// program as /proc/self/exe, and Upgrade ran the shell on its first
// argument as a script.
func TestPathStartedAs(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "prog")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	procLink := filepath.Join(dir, "viaproc")
	if err := os.Symlink("/proc/self/exe", procLink); err != nil {
		t.Fatal(err)
	}
	selfDir := filepath.Join(dir, "self") // a directory on the way into /proc
	if err := os.Symlink("/proc/self", selfDir); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	executable := func() (string, error) { return exe, nil }
	lookPath := func(name string) (string, error) {
		if name == "prog" {
			return link, nil
		}
		return "", exec.ErrNotFound
	}
	for _, tt := range []struct {
		arg0, want string
	}{
		{link, link},             // the path as started, symbolic link and all
		{"prog", link},           // looked up in PATH
		{"/proc/self/exe", exe},  // the shell's own binary in the successor's starter
		{"/dev/fd/3", exe},       // likewise per process
		{procLink, exe},          // a link into /proc
		{selfDir + "/exe", exe},  // through a directory that links there
		{other, exe},             // not the file that runs
		{"unknown-command", exe}, // not in PATH
	} {
		if got := pathStartedAs([]string{tt.arg0, "arg"}, executable, lookPath); got != tt.want {
			t.Errorf("os.Args[0] %q: started as %q, want %q", tt.arg0, got, tt.want)
		}
	}
}
