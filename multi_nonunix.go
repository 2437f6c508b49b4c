//go:build !unix

package anylisten

import "net"

// readinessWaiter returns nil: outside Unix every listener of a merge is
// watched by accepting ahead.
func readinessWaiter(net.Listener) (waiter, error) { return nil, nil }
