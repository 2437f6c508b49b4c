//go:build !unix

package anylisten

// readyToPredecessor does nothing where no predecessor can hand sockets
// over.
func readyToPredecessor() error { return nil }
