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
