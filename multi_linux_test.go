package anylisten

import (
	"context"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A UNIX listening socket that another holder shut down stays readable on
// Linux while Accept finds nothing: the merge must let it go, not offer it
// to Accept again and again ahead of the others.
func TestMultiListenerShutDownMemberLeaves(t *testing.T) {
	checkNoFDLeak(t)
	unixLn := listenT(t, "@anylisten-test-shutdown-"+freePort(t), nil)
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var other int // the other holder's fd of the UNIX socket
	if err := rawControl(mustSyscallConn(t, unixLn), func(fd uintptr) error {
		other, err = unix.Dup(int(fd))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	m := mustMerge(t, []net.Listener{unixLn, tcpLn})
	defer m.Close()
	if err := unix.Shutdown(other, unix.SHUT_RD); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		live := m.live
		m.mu.Unlock()
		if live == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shut-down UNIX member is still in the merge (%d live) after 10 s", live)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c, err := net.Dial("tcp", tcpLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := m.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func mustSyscallConn(t *testing.T, ln net.Listener) syscall.RawConn {
	t.Helper()
	rc, err := ln.(*UnixListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// Merge serves listeners opened with Options of their own as one: a TCP
// listener next to a UNIX one whose allow list one Options value could
// not give the TCP address.
func TestMerge(t *testing.T) {
	checkNoFDLeak(t)
	ctx := context.Background()
	tcp, err := Listen(ctx, MustParseAddress("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	unixLn, err := Listen(ctx, MustParseAddress("@anylisten-test-merge-"+strconv.Itoa(os.Getpid())),
		&Options{UnixAllowUID: []uint32{uint32(os.Geteuid())}})
	if err != nil {
		tcp.Close()
		t.Fatal(err)
	}
	m, err := Merge(tcp, unixLn)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got, want := m.Addr().String(), "tcp:"+tcp.Addr().String()+",unix:"+unixLn.Addr().String(); got != want {
		t.Errorf("Addr = %q, want %q", got, want)
	}
	for _, d := range [][2]string{{"tcp", tcp.Addr().String()}, {"unix", unixLn.Addr().String()}} {
		c, err := net.Dial(d[0], d[1])
		if err != nil {
			t.Fatal(err)
		}
		s, err := m.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := s.LocalAddr().Network(); got != d[0] {
			t.Errorf("accepted a %s connection, want %s", got, d[0])
		}
		s.Close()
		c.Close()
	}
	if one := listenT(t, "127.0.0.1:0", nil); func() net.Listener { l, _ := Merge(one); return l }() != one {
		t.Error("Merge of one listener is not that listener")
	}
	if l, err := Merge(); err == nil {
		l.Close()
		t.Error("Merge of no listeners succeeded")
	}
}
