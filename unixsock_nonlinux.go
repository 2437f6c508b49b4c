//go:build !linux

package anylisten

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

var errNoAbstract = fmt.Errorf("abstract UNIX sockets exist on Linux only, not on %s: %w", runtime.GOOS, errors.ErrUnsupported)

func listenAbstract(string, sockType, *Options) (net.Listener, error) { return nil, errNoAbstract }

func listenAbstractgram(string, *Options) (net.PacketConn, error) { return nil, errNoAbstract }
