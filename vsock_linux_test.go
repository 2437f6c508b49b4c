package anylisten

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
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

// listenVsockT listens on the vsock address s with listen (Listen, or an
// Upgrader's Listen) and closes the listener at cleanup. A machine without
// /dev/vsock skips the test; one whose vsock cannot listen skips it too,
// except under CI=true.
func listenVsockT(t testing.TB, listen func(context.Context, Address, *Options) (net.Listener, error), s string) net.Listener {
	t.Helper()
	needVsock(t)
	ln, err := listen(context.Background(), MustParseAddress(s), nil)
	if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EAFNOSUPPORT) {
		testenv.SkipOrFail(t, "vsock cannot listen on %s here (%v): try modprobe vhost_vsock", s, err)
	}
	if err != nil {
		t.Fatalf("Listen(%q): %v", s, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// vsockFile returns a listening AF_VSOCK socket on any CID and a port the
// kernel chose, made without this package, and closes it at cleanup.
func vsockFile(t testing.TB) *os.File {
	t.Helper()
	needVsock(t)
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		testenv.SkipOrFail(t, "no AF_VSOCK socket here (%v): try modprobe vhost_vsock", err)
	}
	f := os.NewFile(uintptr(fd), "vsock")
	t.Cleanup(func() { f.Close() })
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: unix.VMADDR_PORT_ANY}); err != nil {
		testenv.SkipOrFail(t, "vsock cannot bind here (%v): try modprobe vhost_vsock", err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	return f
}

// bindVsock binds a new AF_VSOCK socket to port on any CID, closes it
// again and returns bind's error: EADDRINUSE while some socket holds port.
func bindVsock(t testing.TB, port uint32) error {
	t.Helper()
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port})
}

// socketInode returns the inode of the socket that ln's SyscallConn
// controls: the socket's identity, the same in every process holding it.
func socketInode(t testing.TB, ln net.Listener) uint64 {
	t.Helper()
	sc, ok := ln.(syscall.Conn)
	if !ok {
		t.Fatalf("%T has no SyscallConn", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := rawControl(rc, func(fd uintptr) error { return unix.Fstat(int(fd), &st) }); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestListenVsock(t *testing.T) {
	checkNoFDLeak(t)
	ln := listenVsockT(t, Listen, "vsock:any:0")
	vl, ok := ln.(*vsockListener)
	if !ok {
		t.Fatalf("Listen returned %T, want *anylisten.vsockListener", ln)
	}
	a := vl.Addr().(*vsock.Addr)
	if a.ContextID != ^uint32(0) || a.Port == 0 || a.Port == ^uint32(0) {
		t.Errorf("Addr() = %+v, want CID any and the port the kernel chose", a)
	}
	// SyscallConn's Control runs on the listening socket itself.
	rc, err := vl.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var local unix.Sockaddr
	var accepting int
	err = rawControl(rc, func(fd uintptr) error {
		var err error
		if local, err = unix.Getsockname(int(fd)); err != nil {
			return err
		}
		accepting, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		return err
	})
	if vm, ok := local.(*unix.SockaddrVM); err != nil || !ok || vm.CID != a.ContextID || vm.Port != a.Port || accepting != 1 {
		t.Errorf("Control saw a socket on %#v, SO_ACCEPTCONN %d, %v; want the listening socket on %v", local, accepting, err, a)
	}
	// No connection test: this machine has no CID-1 loopback transport,
	// and connecting to any other CID would leave the machine.

	// Close ends a waiting Accept and everything after it with
	// net.ErrClosed, as package net's listeners do.
	closeEndsAccept(t, ln)
	if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want an error wrapping net.ErrClosed", err)
	}
	if err := rc.Control(func(uintptr) { t.Error("Control ran after Close") }); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Control after Close: %v, want an error wrapping net.ErrClosed", err)
	}
	// Every descriptor of the socket is closed: its port is free again.
	if err := bindVsock(t, a.Port); err != nil {
		t.Errorf("bind to port %d after Close: %v; some fd of the closed listener still holds it", a.Port, err)
	}
}

// A port in use is an error wrapping EADDRINUSE, and the failed Listen
// leaves no fd open.
func TestListenVsockPortInUse(t *testing.T) {
	checkNoFDLeak(t)
	busy := listenVsockT(t, Listen, "vsock:any:0")
	s := "vsock:any:" + strconv.FormatUint(uint64(busy.Addr().(*vsock.Addr).Port), 10)
	ln, err := Listen(context.Background(), MustParseAddress(s), nil)
	if err == nil {
		ln.Close()
		t.Fatalf("Listen(%q) on a port in use succeeded", s)
	}
	var oe *net.OpError
	if !errors.Is(err, unix.EADDRINUSE) || !errors.As(err, &oe) || oe.Op != "listen" {
		t.Errorf("Listen(%q) on a port in use: %v, want a listen *net.OpError wrapping EADDRINUSE", s, err)
	}
}

// An adopted vsock socket gives the same listener type, whose Control runs
// on the inherited socket itself: it can be handed over again.
func TestAdoptedVsockListener(t *testing.T) {
	checkNoFDLeak(t)
	f := vsockFile(t)
	info, err := inspectFD(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := fdListener(info, &Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, ok := ln.(*vsockListener); !ok {
		t.Fatalf("an inherited vsock socket gave a %T, want *anylisten.vsockListener", ln)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if got := socketInode(t, ln); got != st.Ino {
		t.Errorf("Control runs on socket inode %d, want the inherited socket's, %d", got, st.Ino)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want an error wrapping net.ErrClosed", err)
	}
}

// A socket that is not AF_VSOCK is refused, and its duplicate closed.
func TestVsockFileListenerRefusesTCP(t *testing.T) {
	checkNoFDLeak(t)
	f, _ := tcpFile(t)
	if ln, err := vsockFileListener(f); err == nil {
		ln.Close()
		t.Fatal("vsockFileListener took a TCP socket")
	}
}

func TestSystemdInheritedVsock(t *testing.T) {
	f := vsockFile(t)
	c := startChild(t, handOver([]*os.File{f}, nil, "sd-listen", "", -1))
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "LISTENER *anylisten.vsockListener ") {
		t.Errorf("child did not serve the inherited vsock socket with *anylisten.vsockListener; stderr:\n%s", c.stderr)
	}
}

// TestUpgradeVsock hands a vsock listener over to the test binary run as a
// successor. Its plain Listen of the same address must take the very
// socket over: binding anew would fail, since this process holds the port
// throughout.
func TestUpgradeVsock(t *testing.T) {
	checkNoFDLeak(t)
	free := listenVsockT(t, Listen, "vsock:any:0")
	port := strconv.FormatUint(uint64(free.Addr().(*vsock.Addr).Port), 10)
	free.Close()
	addr := "vsock:any:" + port
	var u Upgrader
	ln := listenVsockT(t, u.Listen, addr)
	// An Upgrader gives its successor this process's stderr; a shell
	// between them sends the successor's to a file instead, keeping the
	// pid and so LISTEN_PID.
	log := filepath.Join(t.TempDir(), "stderr")
	u.Path = "/bin/sh"
	u.Args = []string{"-c", `exec "$0" 2>"$1"`, os.Args[0], log}
	u.Env = append(os.Environ(), childEnv(addr, "", 0)...)
	u.Env = append(u.Env, "ANYLISTEN_TEST_READY=1")
	pid, err := u.Upgrade(context.Background())
	said, _ := os.ReadFile(log)
	if err != nil {
		t.Fatalf("Upgrade: %v; the successor said:\n%s", err, said)
	}
	t.Cleanup(func() { stopProcess(t, pid) })
	// The successor prints its listeners before it says Ready.
	if want := "LISTENER *anylisten.vsockListener vm(4294967295):" + port + "\n"; !strings.Contains(string(said), want) {
		t.Errorf("the successor did not say %q:\n%s", want, said)
	}
	ino := socketInode(t, ln)
	if !holdsSocket(t, pid, ino) {
		t.Errorf("the successor (pid %d) does not hold socket inode %d, which this process handed over", pid, ino)
	}
	// Closing this process's listener leaves the socket to the successor.
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bindVsock(t, free.Addr().(*vsock.Addr).Port); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("bind to port %s after the predecessor closed: %v, want EADDRINUSE (the successor holds it)", port, err)
	}
}

// holdsSocket reports whether process pid has an fd on the socket with
// inode ino.
func holdsSocket(t testing.TB, pid int, ino uint64) bool {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "socket:[" + strconv.FormatUint(ino, 10) + "]"
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == want {
			return true
		}
	}
	return false
}

// stopProcess kills process pid, which an Upgrader started and waits for,
// and waits until it is gone.
func stopProcess(t testing.TB, pid int) {
	t.Helper()
	unix.Kill(pid, unix.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for unix.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Errorf("process %d did not end within 10 s of SIGKILL", pid)
			return
		}
		time.Sleep(10 * time.Millisecond)
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

// A CID that is not this machine's says what to listen on instead.
func TestListenVsockForeignCID(t *testing.T) {
	needVsock(t)
	checkNoFDLeak(t)
	ln, err := Listen(context.Background(), MustParseAddress("vsock:local:0"), nil)
	if err == nil {
		ln.Close()
		t.Skip("CID 1 (local) is bound here: the loopback transport is loaded")
	}
	want := "listen vsock 1:0: bind: cannot assign requested address (CID 1 is not this machine's: listen on vsock:any:PORT, " +
		"or for CID 1 (local) load the loopback transport, modprobe vsock_loopback)"
	if !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Skipf("vsock:local gave %v here, not EADDRNOTAVAIL", err)
	}
	if err.Error() != want {
		t.Errorf("Listen(vsock:local:0):\n got %v\nwant %s", err, want)
	}
}
