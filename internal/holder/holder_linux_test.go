package holder

import (
	"net"
	"os"
	"testing"
)

// TCP finds this process as the holder of its own listeners, IPv4 and
// IPv6, and nobody once they are closed.
func TestTCPFindsThisProcess(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ta := ln.Addr().(*net.TCPAddr)
		h := TCP(ta, false)
		if len(h.Procs) != 1 || h.Procs[0].PID != os.Getpid() || !h.Procs[0].StillHolds() || len(h.HiddenUIDs) != 0 {
			t.Errorf("TCP(%v) = %+v; want this process (pid %d) only", ta, h, os.Getpid())
		}
		ln.Close()
		if h := TCP(ta, false); len(h.Procs) != 0 {
			t.Errorf("TCP(%v) after Close = %+v; want nobody", ta, h)
		}
	}
}

// Another process's IPv6 wildcard socket matches an IPv4 address only as
// Uncertain (it may be IPV6_V6ONLY, as Go's "tcp6" makes it); an IPv4
// holder does not clash with our IPv6 wildcard when we are v6only.
func TestTCPUncertainAcrossFamilies(t *testing.T) {
	ln6, err := net.Listen("tcp6", "[::]:0") // IPV6_V6ONLY
	if err != nil {
		t.Skip(err)
	}
	defer ln6.Close()
	port := ln6.Addr().(*net.TCPAddr).Port
	h := TCP(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, false)
	if len(h.Procs) != 1 || !h.Uncertain {
		t.Errorf("an IPv6 wildcard holder of 127.0.0.1:%d: %+v, want this process, Uncertain", port, h)
	}
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	port4 := ln4.Addr().(*net.TCPAddr).Port
	if h := TCP(&net.TCPAddr{Port: port4}, true); len(h.Procs) != 0 {
		t.Errorf("a v6only [::]:%d clashes with 127.0.0.1:%d: %+v, want nobody", port4, port4, h)
	}
	if h := TCP(&net.TCPAddr{Port: port4}, false); len(h.Procs) != 1 || h.Uncertain {
		t.Errorf("a dual-stack [::]:%d with 127.0.0.1:%d: %+v, want this process, certain", port4, port4, h)
	}
}
