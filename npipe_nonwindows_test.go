//go:build !windows

package anylisten

import (
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
)

// Outside Windows, Listen and Dial of a named pipe are errors that wrap
// errors.ErrUnsupported, whatever the options, and touch nothing.
func TestNpipeUnsupported(t *testing.T) {
	addr := MustParseAddress(`\\.\pipe\anylisten-test`)
	want := `listen npipe \\.\pipe\anylisten-test: named pipes exist on Windows only, not on ` + runtime.GOOS + ": unsupported operation"
	for _, o := range []*Options{nil, {RecvBufferSize: 4096}, {UnixListenChmod: 0o600}, {NpipeSecurityDescriptor: "D:P(A;;GA;;;OW)"}} {
		ln, err := Listen(context.Background(), addr, o)
		if err == nil {
			ln.Close()
			t.Fatalf("Listen(%v, %+v) succeeded", addr, o)
		}
		var oe *net.OpError
		if !errors.Is(err, errors.ErrUnsupported) || !errors.As(err, &oe) || err.Error() != want {
			t.Errorf("Listen(%v, %+v) = %v; want a *net.OpError wrapping errors.ErrUnsupported: %q", addr, o, err, want)
		}
	}
	c, err := Dial(context.Background(), addr)
	if err == nil {
		c.Close()
		t.Fatalf("Dial(%v) succeeded", addr)
	}
	var oe *net.OpError
	if !errors.Is(err, errors.ErrUnsupported) || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("Dial(%v) = %v; want a dial *net.OpError wrapping errors.ErrUnsupported", addr, err)
	}
}
