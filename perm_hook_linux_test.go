package anylisten

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestUnixNoConnectBeforeMode checks that no client can connect to a
// socket file before it has its final owner and mode and listens: at the
// last moment before listen (testHookBeforeListen), the file already has
// them, but in its private directory, so there is nothing at the path yet
// (ENOENT, to root and to nobody), and nobody cannot reach the private
// directory (EACCES) while root, whom no mode stops, is refused for want
// of a listener. Once Listen has returned, the same clients get in as the
// mode allows.
func TestUnixNoConnectBeforeMode(t *testing.T) {
	permNeedRoot(t)
	checkNoFDLeak(t)
	dir, exe := permSocketDir(t)
	nobody := ptr[uint32](65534)
	cases := []struct {
		name        string
		opts        Options
		uid, gid    uint32
		mode        fs.FileMode
		nobodyAfter string
	}{
		{"owner", Options{UnixListenChmod: 0o600}, 0, 0, 0o600, "EACCES"},
		{"group-gid-nogroup", Options{UnixListenChmod: 0o660, UnixListenGID: nobody}, 0, 65534, 0o660, "in"},
		{"everybody", Options{UnixListenChmod: 0o666}, 0, 0, 0o666, "in"},
		{"owner-uid-nobody", Options{UnixListenChmod: 0o600, UnixListenUID: nobody}, 65534, 0, 0o600, "in"},
	}
	old := testHookBeforeListen
	t.Cleanup(func() { testHookBeforeListen = old })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".sock")
			// The hook runs inside Listen: it only records, as failing
			// the test there would skip Listen's cleanup.
			var (
				calls     int
				bound     string
				file      string
				root      [2]string // at the path, at the bound name
				nobody    []string
				nobodyErr error
			)
			testHookBeforeListen = func(name string) error {
				if filepath.Base(name) != filepath.Base(path) {
					return nil
				}
				calls++
				bound = name
				if fi, err := os.Lstat(name); err != nil {
					file = err.Error()
				} else {
					st := fi.Sys().(*syscall.Stat_t)
					file = fmt.Sprintf("%d:%d %#o", st.Uid, st.Gid, fi.Mode().Perm())
				}
				root = [2]string{permConnect(path), permConnect(name)}
				nobody, nobodyErr = runPermChild(exe, permNobody, []string{path, name})
				return nil
			}
			ln := listenT(t, "unix:"+path, &tc.opts)
			testHookBeforeListen = old
			permServe(t, ln, path)

			if calls != 1 {
				t.Fatalf("testHookBeforeListen was called %d times for %q, want once: is it called before listen?", calls, path)
			}
			if nobodyErr != nil {
				t.Fatal(nobodyErr)
			}
			t.Logf("before listen: bound to %s, file %s, root %v, nobody %v", bound, file, root, nobody)
			if filepath.Dir(filepath.Dir(bound)) != dir || !strings.HasPrefix(filepath.Base(filepath.Dir(bound)), ".anylisten-") {
				t.Errorf("bound to %s, want a private directory .anylisten-* in %s", bound, dir)
			}
			if want := fmt.Sprintf("%d:%d %#o", tc.uid, tc.gid, tc.mode); file != want {
				t.Errorf("before listen, the socket file is %s, want its final %s", file, want)
			}
			if want := [2]string{"ENOENT", "ECONNREFUSED"}; root != want {
				t.Errorf("before listen, root at the path and the bound name: %v, want %v", root, want)
			}
			if want := []string{"ENOENT", "EACCES"}; !slices.Equal(nobody, want) {
				t.Errorf("before listen, nobody at the path and the bound name: %v, want %v", nobody, want)
			}
			if ents, err := os.ReadDir(filepath.Dir(bound)); err == nil {
				t.Errorf("the private directory %s is still there after Listen: %v", filepath.Dir(bound), ents)
			}

			// Refused before listen for want of a listener, not for
			// anything else: afterwards they get in.
			after, err := runPermChild(exe, permNobody, []string{path})
			if err != nil {
				t.Fatal(err)
			}
			rootAfter := permConnect(path)
			t.Logf("after Listen: root %s, nobody %s", rootAfter, after[0])
			if rootAfter != "in" {
				t.Errorf("after Listen, root: %s, want in", rootAfter)
			}
			if after[0] != tc.nobodyAfter {
				t.Errorf("after Listen, nobody: %s, want %s", after[0], tc.nobodyAfter)
			}
		})
	}
}
