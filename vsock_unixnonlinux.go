//go:build unix && !linux

package anylisten

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Outside Linux, inherited sockets are never AF_VSOCK.

func isVsock(unix.Sockaddr) bool { return false }

func vsockFileListener(*os.File) (net.Listener, error) { panic("unreachable") }

func describeOtherSockaddr(unix.Sockaddr) (family, on string) { return "", "" }
