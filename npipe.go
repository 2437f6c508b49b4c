package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
)

// listenNpipe and dialNpipe serve Windows named pipes, which exist on
// Windows only.
func listenNpipe(Address, *Options) (net.Listener, error) { return nil, errNoNpipe }

func dialNpipe(context.Context, string) (net.Conn, error) { return nil, errNoNpipe }

var errNoNpipe = fmt.Errorf("named pipes exist on Windows only, not on %s: %w", runtime.GOOS, errors.ErrUnsupported)
