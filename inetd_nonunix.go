//go:build !unix

package anylisten

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

func listenInetd(o *Options) (net.Listener, error) {
	return nil, fmt.Errorf("inetd mode is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
