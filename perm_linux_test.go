package anylisten

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"golang.org/x/sys/unix"
)

// The permission tests run the test binary again as another user, in a
// child process in mode "perm" (see childModes) that is a client: it
// connects to each path (a UNIX socket path or an abstract @name) in the
// JSON list in $ANYLISTEN_TEST_PATHS and prints one line for each, "PERM i
// OUTCOME", after a line "PERM ID uid=U gid=G groups=[...]" that says who
// it runs as. OUTCOME is "in" if it connected and read the line the
// server sends (the address it listens on), or the errno of the failed
// connect, like EACCES.

// permUser is a user a child connects as.
type permUser struct {
	name string
	cred syscall.Credential
}

var (
	permNobody   = permUser{"nobody", syscall.Credential{Uid: 65534, Gid: 65534}}
	permStranger = permUser{"stranger", syscall.Credential{Uid: 65533, Gid: 65533}}
	permMember   = permUser{"member", syscall.Credential{Uid: 65533, Gid: 65533, Groups: []uint32{65534}}}
)

// permChild is the client of the permission tests, mode "perm".
func permChild() int {
	var paths []string
	if err := json.Unmarshal([]byte(os.Getenv("ANYLISTEN_TEST_PATHS")), &paths); err != nil {
		return childBadEnv("ANYLISTEN_TEST_PATHS: %v", err)
	}
	groups, _ := os.Getgroups()
	fmt.Printf("PERM ID uid=%d gid=%d groups=%v\n", os.Getuid(), os.Getgid(), groups)
	for i, p := range paths {
		fmt.Printf("PERM %d %s\n", i, permConnect(p))
	}
	return 0
}

// permConnect connects to the UNIX socket path (or @name) and says what
// happened: "in" if it read the line the server sends, else why not.
func permConnect(path string) string {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return unix.ErrnoName(errno)
		}
		return strings.ReplaceAll(err.Error(), "\n", " ")
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != path+"\n" {
		return fmt.Sprintf("connected, but read %q, %v", line, err)
	}
	return "in"
}

// permNeedRoot skips the test unless it runs as root, which it needs to
// start a child as another user and to give socket files away; under
// CI=true it fails instead.
func permNeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("not root (euid %d) under CI=true: connecting as another user and giving socket files away need root; run the tests as root", os.Geteuid())
	}
	t.Skipf("not root (euid %d): connecting as another user and giving socket files away need root; run the tests as root to include this test", os.Geteuid())
}

// permSocketDir returns a new directory for socket files that every user
// can reach (publicSocketDir), and in it a copy of the test binary that
// every user can run (the one go test built lies in a directory only root
// may enter).
func permSocketDir(t testing.TB) (dir, exe string) {
	t.Helper()
	dir = publicSocketDir(t)
	exe = filepath.Join(dir, "anylisten.test")
	copyExecutable(t, exe)
	return dir, exe
}

// publicSocketDir returns a new directory for socket files that every
// user can reach: it and every directory above it are searchable by all.
func publicSocketDir(t testing.TB) string {
	t.Helper()
	dir := testenv.SocketDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			t.Fatalf("%s (mode %v) is not searchable by other users, so they cannot reach the sockets in %s: "+
				"point TMPDIR at a directory like /tmp", d, fi.Mode(), dir)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	return dir
}

// runPermChild runs exe as u, connecting to paths, and returns the
// outcome for each. It returns an error rather than failing the test, so
// that it can run inside a Listen (see perm_hook_linux_test.go).
func runPermChild(exe string, u permUser, paths []string) ([]string, error) {
	spec, err := json.Marshal(paths)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Dir = filepath.Dir(exe)
	cmd.Env = childModeEnv("perm", "ANYLISTEN_TEST_PATHS="+string(spec))
	cred := u.cred
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &cred}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("child as %s (uid %d, gid %d, groups %v): %v; stdout:\n%s\nstderr:\n%s",
			u.name, u.cred.Uid, u.cred.Gid, u.cred.Groups, err, out, stderr.String())
	}
	groups := u.cred.Groups
	if groups == nil {
		groups = []uint32{}
	}
	wantID := fmt.Sprintf("PERM ID uid=%d gid=%d groups=%v", u.cred.Uid, u.cred.Gid, groups)
	results := make([]string, len(paths))
	sawID := false
	for _, line := range strings.Split(string(out), "\n") {
		if line == wantID {
			sawID = true
		}
		var i int
		var outcome string
		if n, _ := fmt.Sscanf(line, "PERM %d %s", &i, &outcome); n == 2 && i >= 0 && i < len(results) {
			results[i] = strings.TrimPrefix(line, "PERM "+strconv.Itoa(i)+" ")
		}
	}
	if !sawID || slices.Contains(results, "") {
		return nil, fmt.Errorf("child as %s did not print %q and a result for each of %d paths; stdout:\n%s\nstderr:\n%s",
			u.name, wantID, len(paths), out, stderr.String())
	}
	return results, nil
}

// permServe answers every connection on ln with the line "ADDR\n", ADDR
// what the clients dialed, until ln is closed at cleanup.
func permServe(t testing.TB, ln net.Listener, addr string) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, addr+"\n")
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}

// TestUnixSocketPermissions checks who may connect to sockets made with
// the owner, group and everybody modes (and unix_listen_uid and _gid):
// root; nobody (uid and gid 65534); a stranger (uid and gid 65533); and
// a member of nogroup (the stranger with 65534 as a supplementary group).
// Each user but root connects from a child process running as that user.
func TestUnixSocketPermissions(t *testing.T) {
	permNeedRoot(t)
	checkNoFDLeak(t)
	dir, exe := permSocketDir(t)
	nobody := ptr[uint32](65534)
	type want map[string]string // user name to outcome
	const in, denied = "in", "EACCES"
	cases := []struct {
		name     string
		opts     Options
		uid, gid uint32 // of the socket file
		mode     fs.FileMode
		want     want
	}{
		{"owner", Options{UnixListenChmod: 0o600}, 0, 0, 0o600,
			want{"nobody": denied, "stranger": denied, "member": denied}},
		{"group", Options{UnixListenChmod: 0o660}, 0, 0, 0o660,
			want{"nobody": denied, "stranger": denied, "member": denied}},
		{"group-gid-nogroup", Options{UnixListenChmod: 0o660, UnixListenGID: nobody}, 0, 65534, 0o660,
			want{"nobody": in, "stranger": denied, "member": in}},
		{"everybody", Options{UnixListenChmod: 0o666}, 0, 0, 0o666,
			want{"nobody": in, "stranger": in, "member": in}},
		{"owner-uid-nobody", Options{UnixListenChmod: 0o600, UnixListenUID: nobody}, 65534, 0, 0o600,
			want{"nobody": in, "stranger": denied, "member": denied}},
		// connect needs write permission: reading is not enough.
		{"0640-gid-nogroup", Options{UnixListenChmod: 0o640, UnixListenGID: nobody}, 0, 65534, 0o640,
			want{"nobody": denied, "stranger": denied, "member": denied}},
		// An abstract socket has no file and no permissions: anyone in
		// the network namespace gets in (the file options are an error
		// there: the allow lists are its access control).
		{"abstract", Options{}, 0, 0, 0,
			want{"nobody": in, "stranger": in, "member": in}},
	}
	var paths []string
	for _, tc := range cases {
		path := filepath.Join(dir, tc.name+".sock")
		if tc.name == "abstract" {
			path = fmt.Sprintf("@anylisten-perm-%d-%d", os.Getpid(), time.Now().UnixNano())
		} else {
			path = "unix:" + path
		}
		ln := listenT(t, path, &tc.opts)
		path = strings.TrimPrefix(path, "unix:")
		permServe(t, ln, path)
		paths = append(paths, path)
	}
	got := map[string][]string{}
	for _, u := range []permUser{permNobody, permStranger, permMember} {
		results, err := runPermChild(exe, u, paths)
		if err != nil {
			t.Fatal(err)
		}
		got[u.name] = results
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := paths[i]
			if tc.mode != 0 {
				fi, err := os.Lstat(path)
				if err != nil {
					t.Fatal(err)
				}
				st := fi.Sys().(*syscall.Stat_t)
				if st.Uid != tc.uid || st.Gid != tc.gid || fi.Mode().Perm() != tc.mode {
					t.Errorf("socket file is %d:%d %#o, want %d:%d %#o", st.Uid, st.Gid, fi.Mode().Perm(), tc.uid, tc.gid, tc.mode)
				}
			}
			root := permConnect(path)
			t.Logf("root %s, nobody %s, stranger %s, member %s", root, got["nobody"][i], got["stranger"][i], got["member"][i])
			if root != in { // root passes every mode
				t.Errorf("root: %s, want %s", root, in)
			}
			for _, u := range []string{"nobody", "stranger", "member"} {
				if o := got[u][i]; o != tc.want[u] {
					t.Errorf("%s: %s, want %s", u, o, tc.want[u])
				}
			}
		})
	}
}
