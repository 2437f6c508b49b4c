//go:build !unix && !windows

package sockfile

// Check finds nothing to judge where this package cannot look at a
// socket path (wasm, plan9): package net's bind reports what is there.
func Check(path string, o Options) error { return nil }

// Bound returns no File where this package cannot identify one: the
// caller leaves the socket file to package net, which removes it by name.
func Bound(path string) (*File, error) { return nil, nil }

func (f *File) remove() error { return nil }
func (f *File) close() error  { return nil }
