//go:build !linux && !darwin && !freebsd && !openbsd && !netbsd && !dragonfly && !solaris

package anylisten

import (
	"errors"
	"fmt"
	"runtime"
)

// peerCredentialsSupported says that this system (Windows, AIX, ...)
// gives no credentials of a UNIX connection's peer that this package
// reads.
const peerCredentialsSupported = false

func sockPeerCredentials(uintptr) (Credentials, error) {
	return Credentials{}, fmt.Errorf("the peer credentials of UNIX connections are not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
