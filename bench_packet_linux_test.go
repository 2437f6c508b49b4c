package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// The datagram benchmarks and TestPacketAllocations compare, as those of
// bench_linux_test.go do, package net's socket (impl=raw, from
// net.ListenPacket) with ListenPacket's, of each kind, in the same run.

// packetKind is a kind of datagram socket.
type packetKind struct {
	name    string
	network string // for net.ListenPacket
	// address returns a fresh address for net.ListenPacket, and form(it)
	// for ListenPacket.
	address func(tb testing.TB) string
	form    func(address string) string
	// client returns a local address for a client of the kind, which a
	// UNIX socket needs to be answered at; nil for UDP.
	client func(tb testing.TB) net.Addr
}

var packetKinds = []packetKind{
	{
		name: "udp", network: "udp",
		address: func(testing.TB) string { return "127.0.0.1:0" },
		form:    func(a string) string { return "udp://" + a },
	},
	{
		name: "unixgram", network: "unixgram",
		address: benchKindNamed("unix").address,
		form:    func(a string) string { return "unixgram:" + a },
		client: func(tb testing.TB) net.Addr {
			return &net.UnixAddr{Name: benchKindNamed("unix").address(tb), Net: "unixgram"}
		},
	},
	{
		name: "abstract", network: "unixgram",
		address: benchKindNamed("abstract").address,
		form:    func(a string) string { return "unixgram:" + a },
		client: func(testing.TB) net.Addr {
			return &net.UnixAddr{Name: fmt.Sprintf("@anylisten-bench-client-%d-%d", os.Getpid(), time.Now().UnixNano()), Net: "unixgram"}
		},
	},
}

// benchKindNamed returns the benchKind called name.
func benchKindNamed(name string) benchKind {
	for _, k := range benchKinds {
		if k.name == name {
			return k
		}
	}
	panic("no benchKind " + name)
}

// listenPacketBoth returns a datagram socket of kind k, package net's for
// raw, else ListenPacket's, and a client socket connected to it; both are
// closed at cleanup. (A UNIX socket ListenPacket binds is named by its
// private directory, a longer name than net's; that changes nothing per
// datagram: a connected client's Read does not ask for the sender's name.)
func listenPacketBoth(tb testing.TB, k packetKind, raw bool) (net.PacketConn, net.Conn) {
	tb.Helper()
	address := k.address(tb)
	var pc net.PacketConn
	var err error
	if raw {
		pc, err = net.ListenPacket(k.network, address)
	} else {
		pc, err = ListenPacket(context.Background(), MustParseAddress(k.form(address)), nil)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	var c net.Conn
	if k.client == nil {
		c, err = net.Dial(k.network, pc.LocalAddr().String())
	} else {
		c, err = net.DialUnix(k.network, k.client(tb).(*net.UnixAddr), &net.UnixAddr{Name: address, Net: k.network})
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return pc, c
}

// echoPackets sends every datagram read on pc back to its sender, through
// the net.PacketConn interface as a server does, until pc is closed.
func echoPackets(pc net.PacketConn) error {
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if _, err := pc.WriteTo(buf[:n], from); err != nil {
			return err
		}
	}
}

// serveEcho runs echoPackets on pc until the test ends.
func serveEcho(tb testing.TB, pc net.PacketConn) {
	done := make(chan error, 1)
	go func() { done <- echoPackets(pc) }()
	tb.Cleanup(func() {
		pc.Close()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
}

// echoRoundTrip sends a datagram on c and reads its echo.
func echoRoundTrip(tb testing.TB, c net.Conn, msg, buf []byte) {
	if _, err := c.Write(msg); err != nil {
		tb.Fatal(err)
	}
	if n, err := c.Read(buf); err != nil || n != len(msg) {
		tb.Fatalf("echo: %d bytes, %v; want %d", n, err, len(msg))
	}
}

// BenchmarkPacketEcho measures a datagram round trip, one at a time: the
// client sends 64 bytes, the server reads them with ReadFrom and sends
// them back with WriteTo, the client reads the echo. Allocations and CPU
// time are the whole process's, client and server.
func BenchmarkPacketEcho(b *testing.B) {
	for _, k := range packetKinds {
		b.Run(k.name, func(b *testing.B) {
			for _, raw := range []bool{true, false} {
				name := "impl=anylisten"
				if raw {
					name = "impl=raw"
				}
				b.Run(name, func(b *testing.B) {
					pc, c := listenPacketBoth(b, k, raw)
					serveEcho(b, pc)
					msg, buf := make([]byte, 64), make([]byte, 2048)
					echoRoundTrip(b, c, msg, buf) // warm up
					b.ReportAllocs()
					start := cpuTime()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						echoRoundTrip(b, c, msg, buf)
					}
					b.StopTimer()
					b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
				})
			}
		})
	}
}

// TestPacketAllocations is the zero-cost claim for datagrams: a datagram
// echoed through ListenPacket's socket costs no allocation more than one
// echoed through package net's, for every kind.
func TestPacketAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("echoes 3000 datagrams per kind")
	}
	for _, k := range packetKinds {
		t.Run(k.name, func(t *testing.T) {
			// Interleave, and take each side's best of three rounds, so
			// that an allocation the runtime makes in the background
			// does not count. (AllocsPerRun runs the round 500 times and
			// rounds the average down.)
			allocs := [2]float64{1e9, 1e9} // raw, anylisten
			for range 3 {
				for i, raw := range []bool{true, false} {
					pc, c := listenPacketBoth(t, k, raw)
					serveEcho(t, pc)
					msg, buf := make([]byte, 64), make([]byte, 2048)
					for range 50 { // first-use allocations are not per datagram
						echoRoundTrip(t, c, msg, buf)
					}
					allocs[i] = min(allocs[i], testing.AllocsPerRun(500, func() { echoRoundTrip(t, c, msg, buf) }))
				}
			}
			t.Logf("allocations per datagram echoed: net %.0f, anylisten %.0f", allocs[0], allocs[1])
			if allocs[1] > allocs[0] {
				t.Errorf("ListenPacket's socket allocates %.0f times per datagram echoed, net's %.0f", allocs[1], allocs[0])
			}
		})
	}
}
