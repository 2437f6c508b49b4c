package holder

import (
	"net"
	"testing"
)

// clashes follows the kernel's rule for a bind on a port where a socket
// listens, with an IPv6 wildcard taken to be dual stack.
func TestClashes(t *testing.T) {
	for _, tt := range []struct {
		ours   string // "" for Go's ":PORT"
		theirs string
		want   bool
	}{
		{"", "127.0.0.1", true},
		{"", "::1", true},
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"127.0.0.1", "0.0.0.0", true},
		{"0.0.0.0", "127.0.0.1", true},
		{"127.0.0.1", "::", true},
		{"127.0.0.1", "::1", false},
		{"::1", "127.0.0.1", false},
		{"::", "127.0.0.1", true},
		{"::1", "::1", true},
		{"::1", "::2", false},
		{"::1", "::", true},
		{"0.0.0.0", "::1", true}, // Go binds 0.0.0.0:PORT to the dual-stack [::]
		{"127.0.0.1", "::ffff:127.0.0.1", true},
	} {
		var ours net.IP
		if tt.ours != "" {
			ours = net.ParseIP(tt.ours)
		}
		if got := clashes(ours, net.ParseIP(tt.theirs)); got != tt.want {
			t.Errorf("clashes(%q, %q) = %v, want %v", tt.ours, tt.theirs, got, tt.want)
		}
	}
}
