//go:build unix && !linux

package anylisten

// pollReadHangup is 0 where poll has no event for a socket shut down for
// reading.
const pollReadHangup = 0
