//go:build !unix

package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
)

// listenUnix uses package net where there is no POSIX socket API (Windows
// has AF_UNIX, but no file modes or owners to set before listen). Package
// net binds the path itself and removes the socket file on Close.
func listenUnix(ctx context.Context, path string, typ sockType, o *Options) (net.Listener, error) {
	if typ == typSeqpacket {
		return nil, fmt.Errorf("UNIX seqpacket sockets are not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
	}
	if o.UnixListenUnlink || o.UnixListenChmod != 0 || o.UnixListenUID != nil || o.UnixListenGID != nil ||
		o.RecvBufferSize > 0 || o.SendBufferSize > 0 {
		return nil, fmt.Errorf("UNIX socket options are not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return &UnixListener{UnixListener: ln.(*net.UnixListener), netUnlinks: true}, nil
}
