package anylisten

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// A named pipe is a byte stream here: ListenPacket refuses it on every
// platform, and says to use Listen.
func TestNpipeListenPacketRefused(t *testing.T) {
	for _, s := range []string{`\\.\pipe\app`, "npipe://app"} {
		pc, err := ListenPacket(context.Background(), MustParseAddress(s), nil)
		if err == nil {
			pc.Close()
			t.Fatalf("ListenPacket(%q) succeeded", s)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "listen" || oe.Net != "npipe" {
			t.Errorf("ListenPacket(%q) error %#v is not a *net.OpError for listen npipe", s, err)
		}
		if want := `listen npipe \\.\pipe\app: a named pipe is served as a byte stream`; !strings.HasPrefix(err.Error(), want) ||
			!strings.Contains(err.Error(), "serve it with Listen") {
			t.Errorf("ListenPacket(%q) error = %q, want it to start with %q and say to use Listen", s, err, want)
		}
	}
}

// The UNIX socket file's mode and owner would restrict who connects; a
// pipe without a descriptor of its own would get Windows's wider default,
// so Listen refuses them there, and ignores them once the pipe has its own.
func TestRefuseNpipeOptions(t *testing.T) {
	for _, tt := range []struct {
		o      Options
		refuse bool
	}{
		{Options{}, false},
		{Options{RecvBufferSize: 4096, TCPKillPort: true, UnixListenUnlink: true, TCPListenBacklog: 8}, false},
		{Options{UnixListenChmod: 0o600}, true},
		{Options{UnixListenUID: ptr[uint32](0)}, true},
		{Options{UnixListenGID: ptr[uint32](0)}, true},
		{Options{UnixListenChmod: 0o600, NpipeSecurityDescriptor: "D:P(A;;GA;;;OW)"}, false},
	} {
		err := refuseNpipeOptions(&tt.o)
		if (err != nil) != tt.refuse {
			t.Errorf("refuseNpipeOptions(%+v) = %v, want refused: %v", tt.o, err, tt.refuse)
		}
		if err != nil && !strings.Contains(err.Error(), "set npipe_security_descriptor") {
			t.Errorf("refuseNpipeOptions(%+v) = %q, which does not name npipe_security_descriptor", tt.o, err)
		}
	}
}

// An allow list cannot be enforced on a named pipe: Listen refuses it on
// every platform, before it would say the pipe is unsupported.
func TestNpipeRefusesAllowList(t *testing.T) {
	ln, err := Listen(context.Background(), MustParseAddress(`\\.\pipe\anylisten-test`), &Options{UnixAllowUID: []uint32{0}})
	if ln != nil {
		ln.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "unix_allow_uid") || !strings.Contains(err.Error(), "npipe_security_descriptor") {
		t.Errorf("Listen of a pipe with an allow list: %v, want an error naming unix_allow_uid and npipe_security_descriptor", err)
	}
}
