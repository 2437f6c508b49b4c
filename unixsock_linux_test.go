package anylisten

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

func TestListenAbstract(t *testing.T) {
	checkNoFDLeak(t)
	name := "@anylisten-test-" + strconv.Itoa(os.Getpid())
	ln := listenT(t, name, nil)
	if _, ok := ln.(*UnixListener); !ok {
		t.Fatalf("Listen returned %T, want *UnixListener", ln)
	}
	if got := ln.Addr().String(); got != name {
		t.Errorf("Addr() = %q, want %q", got, name)
	}
	if c := roundTrip(t, ln); func() bool { _, ok := c.(*net.UnixConn); return !ok }() {
		t.Fatalf("Accept returned %T, want *net.UnixConn", c)
	}
	_, err := Listen(context.Background(), MustParseAddress(name), &Options{UnixListenUnlink: true})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Listen on %s: %v, want EADDRINUSE", name, err)
	}
	if _, err := os.Lstat(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an abstract listener made a file %q: %v", name, err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	// The name is free again once closed.
	listenT(t, name, nil).Close()
}
