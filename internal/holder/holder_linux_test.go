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
		h := TCP(ta)
		if len(h.Procs) != 1 || h.Procs[0].PID != os.Getpid() || !h.Procs[0].StillHolds() || len(h.HiddenUIDs) != 0 {
			t.Errorf("TCP(%v) = %+v; want this process (pid %d) only", ta, h, os.Getpid())
		}
		ln.Close()
		if h := TCP(ta); len(h.Procs) != 0 {
			t.Errorf("TCP(%v) after Close = %+v; want nobody", ta, h)
		}
	}
}
