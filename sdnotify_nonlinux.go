//go:build !linux

package anylisten

// notifySystemdReady does nothing where there is no systemd.
func notifySystemdReady() error { return nil }
