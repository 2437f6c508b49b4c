package anylisten

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// needVsock skips the test where this machine has no vsock device.
func needVsock(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/vsock"); err != nil {
		t.Skipf("no vsock here (%v): try modprobe vhost_vsock, or vsock_loopback for local tests", err)
	}
}

func TestListenVsock(t *testing.T) {
	needVsock(t)
	checkNoFDLeak(t)
	ln, err := Listen(context.Background(), MustParseAddress("vsock:any:0"), nil)
	if err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV) {
			t.Skipf("vsock cannot listen here: %v", err)
		}
		t.Fatal(err)
	}
	defer ln.Close()
	vl, ok := ln.(*vsock.Listener)
	if !ok {
		t.Fatalf("Listen returned %T, want *vsock.Listener", ln)
	}
	a := vl.Addr().(*vsock.Addr)
	if a.ContextID != ^uint32(0) || a.Port == 0 || a.Port == ^uint32(0) {
		t.Errorf("Addr() = %+v, want CID any and the port the kernel chose", a)
	}
	// No connection test: this machine has no CID-1 loopback transport,
	// and connecting to any other CID would leave the machine.
}

func TestSystemdInheritedVsock(t *testing.T) {
	needVsock(t)
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no AF_VSOCK socket here: %v", err)
	}
	f := os.NewFile(uintptr(fd), "vsock")
	defer f.Close()
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: unix.VMADDR_PORT_ANY}); err != nil {
		t.Skipf("vsock cannot bind here: %v", err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, handOver([]*os.File{f}, nil, "sd-listen", "", -1))
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "LISTENER *vsock.Listener ") {
		t.Errorf("child did not serve the inherited vsock socket with *vsock.Listener; stderr:\n%s", c.stderr)
	}
}

// A connection test needs a CID-1 loopback transport (vsock_loopback); it
// never connects to any other CID, which would leave this machine.
func TestVsockLoopbackConnection(t *testing.T) {
	needVsock(t)
	ln, err := Listen(context.Background(), MustParseAddress("vsock:local:0"), nil)
	if err != nil {
		t.Skipf("no CID-1 loopback transport here (%v): modprobe vsock_loopback to run this test", err)
	}
	defer ln.Close()
	port := ln.Addr().(*vsock.Addr).Port
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("vsock"))
			c.Close()
		}
	}()
	c, err := Dial(context.Background(), MustParseAddress("vsock:local:"+strconv.FormatUint(uint64(port), 10)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "vsock" {
		t.Errorf("read %q, %v", b, err)
	}
}
