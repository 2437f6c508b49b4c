package anylisten

import (
	"os"

	"golang.org/x/sys/unix"
)

// peerCredentialsSupported says that sockPeerCredentials reads the
// credentials of a UNIX connection's peer here.
const peerCredentialsSupported = true

// sockPeerCredentials reads the credentials of the peer of the connected
// UNIX socket fd: LOCAL_PEERCRED (the user, and up to 16 groups, the
// effective one first) and LOCAL_PEERPID. Compiled for macOS and iOS, and
// never run by this package's tests, which run on Linux.
func sockPeerCredentials(fd uintptr) (Credentials, error) {
	x, err := unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return Credentials{}, os.NewSyscallError("getsockopt LOCAL_PEERCRED", err)
	}
	c, err := xucredCredentials(x.Version, x.Uid, x.Ngroups, x.Groups[:])
	if err != nil {
		return Credentials{}, err
	}
	if c.PID, err = unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID); err != nil {
		return Credentials{}, os.NewSyscallError("getsockopt LOCAL_PEERPID", err)
	}
	return c, nil
}
