//go:build !linux

package anylisten

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

func listenVsock(a Address) (net.Listener, error) {
	return nil, fmt.Errorf("AF_VSOCK is supported on Linux only, not on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
