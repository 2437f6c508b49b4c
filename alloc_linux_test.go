package anylisten

import (
	"net"
	"runtime"
	"testing"
)

// acceptCost returns the heap allocations and bytes per dial, accept and
// close round on ln, measured over n rounds.
func acceptCost(t *testing.T, ln net.Listener, n int) (allocs, bytes float64) {
	t.Helper()
	network, address := ln.Addr().Network(), ln.Addr().String()
	round := func() {
		c, err := net.Dial(network, address)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		c.Close()
	}
	for range 50 { // warm up: first-use allocations are not per connection
		round()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		round()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(n), float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
}

// TestAcceptAllocations is the hard gate of the zero-cost claim: a
// connection accepted from anylisten's listener costs no allocation and no
// byte more than one from package net's, for every kind.
func TestAcceptAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 1000 connections per kind")
	}
	const n = 500
	for _, k := range benchKinds {
		t.Run(k.name, func(t *testing.T) {
			// Interleave, and take each side's best of three rounds, so
			// that a background allocation of the runtime does not count.
			best := func(raw bool) (float64, float64) {
				ba, bb := 1e9, 1e9
				for range 3 {
					a, b := acceptCost(t, listenBoth(t, k, raw), n)
					ba, bb = min(ba, a), min(bb, b)
				}
				return ba, bb
			}
			rawAllocs, rawBytes := best(true)
			allocs, bytes := best(false)
			t.Logf("per connection: net %.2f allocs %.0f B, anylisten %.2f allocs %.0f B", rawAllocs, rawBytes, allocs, bytes)
			if allocs > rawAllocs+0.05 {
				t.Errorf("anylisten allocates %.2f times per connection, net %.2f", allocs, rawAllocs)
			}
			if bytes > rawBytes+1 {
				t.Errorf("anylisten allocates %.0f bytes per connection, net %.0f", bytes, rawBytes)
			}
		})
	}
}
