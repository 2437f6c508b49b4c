//go:build !unix

package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
)

func listenSystemd(a Address, o *Options) (net.Listener, error) {
	return nil, fmt.Errorf("inherited sockets (systemd socket activation) are not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// adoptInherited finds nothing where sockets cannot be inherited.
func adoptInherited(context.Context, Address, *Options) (net.Listener, error) { return nil, nil }

// inheritedSockets finds none where sockets cannot be inherited.
func inheritedSockets() []InheritedSocket { return nil }
