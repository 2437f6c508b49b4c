package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"syscall"
)

// ListenAll listens on every address in addrs, with the same opts, and
// merges them into one net.Listener: Accept returns the next connection
// from any of them, unwrapped (*net.TCPConn, *net.UnixConn, ...), as it
// comes; a listener that is flooded does not starve the others. Addr
// is a MultiAddr of all their addresses (Network "multi", String like
// "tcp:127.0.0.1:8080,unix:/run/app.sock").
//
// The merge takes a connection from the kernel only inside Accept: it
// watches each socket for a queued connection without accepting it. Close
// closes every listener and returns at once; connections that no Accept
// took stay in the kernel's queue, for whoever else holds the socket (a
// successor it was handed to), until the last holder closes it.
//
// With one address, ListenAll returns Listen's listener itself. If any
// address fails, the listeners already opened are closed again and the
// error, a *net.OpError, names the failing address. An empty list is an
// error.
//
// The merge costs one goroutine and one file descriptor (a duplicate of
// the socket's, to watch it) per listener, and a channel handoff per
// connection; connections themselves are untouched.
func ListenAll(ctx context.Context, addrs []Address, opts *Options) (net.Listener, error) {
	lns, err := listenEach(ctx, addrs, opts)
	if err != nil {
		return nil, err
	}
	return merge(lns)
}

// listenEach listens on every address, or on none: on a failure it closes
// the listeners it opened.
func listenEach(ctx context.Context, addrs []Address, opts *Options) ([]net.Listener, error) {
	if len(addrs) == 0 {
		return nil, errors.New("anylisten: ListenAll of no addresses; give at least one")
	}
	if err := givenTwice(addrs, opts); err != nil {
		return nil, err
	}
	lns := make([]net.Listener, 0, len(addrs))
	for _, a := range addrs {
		ln, err := Listen(ctx, a, opts)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// Merge merges listeners that were opened separately (by Listen with
// Options of their own, say: a TCP address next to a UNIX socket with an
// allow list, which one Options value cannot serve) into one, as ListenAll
// merges its own: Accept returns the next connection from any of them,
// unwrapped, taking it from the kernel only then; Addr is a MultiAddr;
// Close closes every one and returns at once. It takes ownership of lns:
// on an error (no fd left to watch a socket with) it closes them. With one
// listener it returns that listener itself; with none, an error.
//
// Listeners opened through an Upgrader's Listen stay known to it: merge
// them, and Upgrade hands each one over.
func Merge(lns ...net.Listener) (net.Listener, error) {
	if len(lns) == 0 {
		return nil, errors.New("anylisten: Merge of no listeners; give at least one")
	}
	return merge(slices.Clone(lns))
}

// merge returns the one listener of lns itself, or a merge of several.
// On an error it closes lns.
func merge(lns []net.Listener) (net.Listener, error) {
	if len(lns) == 1 {
		return lns[0], nil
	}
	m, err := newMultiListener(lns)
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	return m, nil
}

// givenTwice returns an error if an address is in addrs twice: its second
// Listen would fail with a plain "address already in use", or take a
// socket the process itself holds for "a live server". A TCP port 0 may
// be given twice (each gets a port of its own), and so may any TCP address
// with TCPReusePort (two sockets on one port are what SO_REUSEPORT is
// for).
func givenTwice(addrs []Address, opts *Options) error {
	for i, a := range addrs {
		if a.kind == KindTCP && (a.num == 0 && a.svc == "" || opts != nil && opts.TCPReusePort) {
			continue // each port 0 gets a port of its own
		}
		for j := range i {
			if addrs[j] == a {
				return opError("listen", a, fmt.Errorf("the address is given twice (addresses %d and %d of %d; "+
					"a flag set parsed twice repeats every --listen): %w", j+1, i+1, len(addrs), syscall.EADDRINUSE))
			}
		}
	}
	return nil
}
