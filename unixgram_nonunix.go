//go:build !unix

package anylisten

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// listenUnixgram: Windows's AF_UNIX has stream sockets only.
func listenUnixgram(string, *Options) (net.PacketConn, error) {
	return nil, fmt.Errorf("UNIX datagram sockets are not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
