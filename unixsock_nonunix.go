//go:build !unix

package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/anylisten/anylisten/internal/sockfile"
)

// listenUnix lets package net bind the path where there is no POSIX
// socket API (Windows has AF_UNIX stream sockets, but no file modes or
// owners to set before listen), and keeps the socket-file rules that
// Windows allows around it (see internal/sockfile): what is at the path is
// judged first, a stale socket is removed only with UnixListenUnlink, and
// Close removes the socket file only while it is the one bind made.
func listenUnix(ctx context.Context, path string, typ sockType, o *Options) (net.Listener, error) {
	if typ == typSeqpacket {
		return nil, fmt.Errorf("UNIX seqpacket sockets are not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
	}
	if o.UnixListenChmod != 0 || o.UnixListenUID != nil || o.UnixListenGID != nil {
		return nil, fmt.Errorf("unix_listen_chmod, unix_listen_uid and unix_listen_gid are not supported on %s, which has no file modes "+
			"and owners (the socket file takes the ACL its directory passes on): %w", runtime.GOOS, errors.ErrUnsupported)
	}
	if o.RecvBufferSize > 0 || o.SendBufferSize > 0 {
		return nil, fmt.Errorf("recv_buffer_size and send_buffer_size are not supported for UNIX sockets on %s: %w", runtime.GOOS, errors.ErrUnsupported)
	}
	if runtime.GOOS == "windows" {
		if err := devicePathError(path); err != nil {
			return nil, err
		}
	}
	if err := sockfile.Check(path, socketFileOptions(o)); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	file, err := sockfile.Bound(path)
	if err != nil {
		ul.Close() // package net removes the file it made
		return nil, err
	}
	if file == nil {
		return &UnixListener{UnixListener: ul, netUnlinks: true}, nil
	}
	ul.SetUnlinkOnClose(false)
	l := &UnixListener{UnixListener: ul}
	l.sf.own(file)
	return l, nil
}
