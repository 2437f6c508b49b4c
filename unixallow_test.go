package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestAllowListAllows(t *testing.T) {
	if a := newAllowList(&Options{}); a != nil {
		t.Errorf("newAllowList of no lists = %+v, want nil (no check)", a)
	}
	uids := []uint32{1000, 0, 33}
	o := &Options{UnixAllowUID: uids, UnixAllowGID: []uint32{4242, 100}}
	a := newAllowList(o)
	uids[0] = 7 // the lists were copied
	for _, tt := range []struct {
		name string
		c    Credentials
		want bool
	}{
		{"uid", Credentials{UID: 1000, GID: 5}, true},
		{"root", Credentials{UID: 0, GID: 5}, true},
		{"last-uid", Credentials{UID: 33, GID: 5}, true},
		{"gid", Credentials{UID: 5, GID: 4242}, true},
		{"group", Credentials{UID: 5, GID: 5, Groups: []uint32{1, 100, 200}}, true},
		{"none", Credentials{UID: 5, GID: 5, Groups: []uint32{1, 2}}, false},
		{"copied", Credentials{UID: 7, GID: 5}, false},
		{"gid-is-no-uid", Credentials{UID: 100, GID: 5}, false},
		{"uid-is-no-gid", Credentials{UID: 5, GID: 33}, false},
	} {
		if got := a.allows(tt.c); got != tt.want {
			t.Errorf("%s: allows(%+v) = %v, want %v", tt.name, tt.c, got, tt.want)
		}
	}
	if gidOnly := newAllowList(&Options{UnixAllowGID: []uint32{0}}); gidOnly.allows(Credentials{UID: 0, GID: 1}) {
		t.Error("a gid list admits uid 0 (root) by its uid")
	}
}

func TestRefusedError(t *testing.T) {
	var told []string
	a := newAllowList(&Options{UnixAllowGID: []uint32{1}, UnixRefused: func(r Refusal) {
		c := r.Peer
		told = append(told, fmt.Sprintf("%d %d %v %d %v", c.UID, c.GID, c.Groups, c.PID, r.Err))
	}})
	err := a.refuse(Refusal{Peer: Credentials{UID: 5, GID: 6, Groups: []uint32{7}, PID: 8}})
	if want := "the peer, uid 5 (gid 6, groups [7], pid 8), is not allowed by the unix_allow_gid option (--unix-allow-gid): its connection was shut down"; err.Error() != want {
		t.Errorf("refuse: %q, want %q", err, want)
	}
	cause := errors.New("getsockopt: bad file descriptor")
	err = a.refuse(Refusal{Err: cause})
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "the peer's credentials could not be read (getsockopt: bad file descriptor), so the unix_allow_gid option (--unix-allow-gid) refused") {
		t.Errorf("refuse of unreadable credentials: %v", err)
	}
	if want := []string{"5 6 [7] 8 <nil>", "0 0 [] 0 getsockopt: bad file descriptor"}; strings.Join(told, "|") != strings.Join(want, "|") {
		t.Errorf("the hook was told %q, want %q", told, want)
	}
}

// TestAllowListUnsupported checks that where there are no peer
// credentials, an allow list on a UNIX address is an error wrapping
// errors.ErrUnsupported (compiled everywhere, it runs on Windows and AIX).
func TestAllowListUnsupported(t *testing.T) {
	if peerCredentialsSupported {
		t.Skipf("%s has peer credentials", runtime.GOOS)
	}
	path := filepath.Join(t.TempDir(), "a.sock")
	ln, err := Listen(context.Background(), MustParseAddress("unix:"+path), &Options{UnixAllowUID: []uint32{0}})
	if ln != nil || !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "the unix_allow_uid option (--unix-allow-uid)") {
		t.Errorf("Listen with an allow list = %v, %v; want an error wrapping errors.ErrUnsupported naming the option", ln, err)
	}
	if _, err := PeerCredentials(nil); err == nil {
		t.Error("PeerCredentials(nil): no error")
	}
}

func TestRefusalString(t *testing.T) {
	local := &net.UnixAddr{Name: "@app", Net: "unix"}
	for _, tt := range []struct {
		r    Refusal
		want string
	}{
		{Refusal{Peer: Credentials{UID: 65534, GID: 65534, Groups: []uint32{}, PID: 1234}, Local: local},
			"refused a connection to @app from uid 65534 (gid 65534, groups [], pid 1234): not on the allow lists"},
		{Refusal{Err: errors.New("bad file descriptor"), Local: local},
			"refused a connection to @app: its peer's credentials could not be read: bad file descriptor"},
		{Refusal{Peer: Credentials{UID: 1}}, "refused a connection from uid 1 (gid 0, groups [], pid 0): not on the allow lists"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
