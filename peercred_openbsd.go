package anylisten

import (
	"os"

	"golang.org/x/sys/unix"
)

// peerCredentialsSupported says that sockPeerCredentials reads the
// credentials of a UNIX connection's peer here.
const peerCredentialsSupported = true

// sockPeerCredentials reads the credentials of the peer of the connected
// UNIX socket fd: SO_PEERCRED, a struct sockpeercred {uid_t uid; gid_t
// gid; pid_t pid;}. x/sys has no getter for it, and OpenBSD allows system
// calls only through libc, which x/sys's own getters use; so it is read
// with the getter of another option whose value is larger, eight 32-bit
// words (an ICMPv6 filter), of which the kernel fills the first three
// (and says so in the length, which that getter does not return).
// Compiled for OpenBSD, and never run by this package's tests, which run
// on Linux.
func sockPeerCredentials(fd uintptr) (Credentials, error) {
	w, err := unix.GetsockoptICMPv6Filter(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Credentials{}, os.NewSyscallError("getsockopt SO_PEERCRED", err)
	}
	return Credentials{UID: w.Filt[0], GID: w.Filt[1], PID: int(int32(w.Filt[2]))}, nil
}
