package anylisten

import (
	"os"

	"golang.org/x/sys/unix"
)

// peerCredentialsSupported says that sockPeerCredentials reads the
// credentials of a UNIX connection's peer here.
const peerCredentialsSupported = true

// sockPeerCredentials reads the credentials of the peer of the connected
// UNIX socket fd with getpeerucred(3C): the effective user and group and
// the pid (x/sys gives no supplementary groups). Compiled for Solaris and
// illumos, and never run by this package's tests, which run on Linux.
func sockPeerCredentials(fd uintptr) (Credentials, error) {
	u, err := unix.GetPeerUcred(fd)
	if err != nil {
		return Credentials{}, os.NewSyscallError("getpeerucred", err)
	}
	c := Credentials{UID: uint32(u.Geteuid()), GID: uint32(u.Getegid()), PID: u.Getpid()}
	if c.PID < 0 { // ucred_getpid: -1 where the pid is not available
		c.PID = 0
	}
	return c, nil
}
