//go:build !windows

package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
)

var errNoNpipe = fmt.Errorf("named pipes exist on Windows only, not on %s: %w", runtime.GOOS, errors.ErrUnsupported)

func listenNpipe(Address, *Options) (net.Listener, error) { return nil, errNoNpipe }

func dialNpipe(context.Context, string) (net.Conn, error) { return nil, errNoNpipe }
