//go:build !unix

package anylisten

import (
	"errors"
	"fmt"
	"runtime"
)

func errOption(name string) error {
	return fmt.Errorf("option %s is not supported on %s: %w", name, runtime.GOOS, errors.ErrUnsupported)
}

func setIPOptions(fd uintptr, network string, o *Options) error {
	switch {
	case o.TCPReusePort:
		return errOption("tcp_reuse_port")
	case o.TCPOnlyV6 && (network == "tcp6" || network == "udp6"):
		return errOption("tcp_only_v6")
	}
	return setBuffers(fd, o)
}

func setBuffers(fd uintptr, o *Options) error {
	if o.RecvBufferSize > 0 || o.SendBufferSize > 0 {
		return errOption("recv_buffer_size and send_buffer_size")
	}
	return nil
}

func setBacklog(fd uintptr, backlog int) error {
	return errOption("tcp_listen_backlog")
}
