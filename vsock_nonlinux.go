//go:build !linux

package anylisten

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

var errNoVsock = fmt.Errorf("AF_VSOCK is supported on Linux only, not on %s: %w", runtime.GOOS, errors.ErrUnsupported)

func listenVsock(Address) (net.Listener, error) { return nil, errNoVsock }

func dialVsock(Address) (net.Conn, error) { return nil, errNoVsock }
