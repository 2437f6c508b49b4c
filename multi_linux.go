package anylisten

import "golang.org/x/sys/unix"

// pollReadHangup is the poll event of a socket shut down for reading.
const pollReadHangup = unix.POLLRDHUP
