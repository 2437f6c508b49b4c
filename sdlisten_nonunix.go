//go:build !unix

package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
)

var errNoInherit = fmt.Errorf("inherited sockets (systemd socket activation) are not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

func listenSystemd(Address, *Options) (net.Listener, error) { return nil, errNoInherit }

// adoptInherited finds nothing where sockets cannot be inherited.
func adoptInherited(context.Context, Address, *Options) (net.Listener, error) { return nil, nil }

// inheritedSockets finds none where sockets cannot be inherited.
func inheritedSockets() []InheritedSocket { return nil }

func listenSystemdPacket(Address, *Options) (net.PacketConn, error) { return nil, errNoInherit }

// adoptInheritedPacket finds nothing where sockets cannot be inherited.
func adoptInheritedPacket(context.Context, Address, *Options) (net.PacketConn, error) {
	return nil, nil
}
