//go:build !linux

package anylisten

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// maxSunPath is the longest socket path that fits into the 104-byte
// sun_path of the BSDs and macOS with its NUL.
const maxSunPath = 103

func listenAbstract(name string, o *Options) (net.Listener, error) {
	return nil, fmt.Errorf("abstract UNIX sockets exist on Linux only, not on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
