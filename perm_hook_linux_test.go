package anylisten

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestUnixNoConnectBeforeMode checks that no client can connect to a
// socket file before it has its final owner and mode: at the last moment
// before listen (testHookBeforeListen), the file already has them, and a
// connection is refused, to root (whom no mode stops) and to nobody, whom
// an owner-only socket already turns away with EACCES. Once Listen has
// returned, the same clients get in as the mode allows.
func TestUnixNoConnectBeforeMode(t *testing.T) {
	permNeedRoot(t)
	checkNoFDLeak(t)
	dir, exe := permSocketDir(t)
	nobody := ptr[uint32](65534)
	cases := []struct {
		name                      string
		opts                      Options
		uid, gid                  uint32
		mode                      fs.FileMode
		nobodyBefore, nobodyAfter string
	}{
		{"owner", Options{UnixListenChmod: 0o600}, 0, 0, 0o600, "EACCES", "EACCES"},
		{"group-gid-nogroup", Options{UnixListenChmod: 0o660, UnixListenGID: nobody}, 0, 65534, 0o660, "ECONNREFUSED", "in"},
		{"everybody", Options{UnixListenChmod: 0o666}, 0, 0, 0o666, "ECONNREFUSED", "in"},
		{"owner-uid-nobody", Options{UnixListenChmod: 0o600, UnixListenUID: nobody}, 65534, 0, 0o600, "ECONNREFUSED", "in"},
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
				file      string
				root      string
				nobody    []string
				nobodyErr error
			)
			testHookBeforeListen = func(name string) {
				if name != path {
					return
				}
				calls++
				if fi, err := os.Lstat(path); err != nil {
					file = err.Error()
				} else {
					st := fi.Sys().(*syscall.Stat_t)
					file = fmt.Sprintf("%d:%d %#o", st.Uid, st.Gid, fi.Mode().Perm())
				}
				root = permConnect(path)
				nobody, nobodyErr = runPermChild(exe, permNobody, []string{path})
			}
			ln := listenT(t, "unix:"+path, &tc.opts)
			testHookBeforeListen = old
			permServe(t, ln, path)

			if calls != 1 {
				t.Fatalf("testHookBeforeListen was called %d times with %q, want once: does bindUnix call it before listen?", calls, path)
			}
			if nobodyErr != nil {
				t.Fatal(nobodyErr)
			}
			t.Logf("before listen: file %s, root %s, nobody %s", file, root, nobody[0])
			if want := fmt.Sprintf("%d:%d %#o", tc.uid, tc.gid, tc.mode); file != want {
				t.Errorf("before listen, the socket file is %s, want its final %s", file, want)
			}
			if root != "ECONNREFUSED" {
				t.Errorf("before listen, root: %s, want ECONNREFUSED", root)
			}
			if nobody[0] != tc.nobodyBefore {
				t.Errorf("before listen, nobody: %s, want %s", nobody[0], tc.nobodyBefore)
			}

			// Refused before listen for want of a listener, not for
			// anything else: afterwards they get in.
			after, err := runPermChild(exe, permNobody, []string{path})
			if err != nil {
				t.Fatal(err)
			}
			root = permConnect(path)
			t.Logf("after Listen: root %s, nobody %s", root, after[0])
			if root != "in" {
				t.Errorf("after Listen, root: %s, want in", root)
			}
			if after[0] != tc.nobodyAfter {
				t.Errorf("after Listen, nobody: %s, want %s", after[0], tc.nobodyAfter)
			}
		})
	}
}
