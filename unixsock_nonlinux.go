//go:build !linux

package anylisten

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

func listenAbstract(name string, o *Options) (net.Listener, error) {
	return nil, fmt.Errorf("abstract UNIX sockets exist on Linux only, not on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
