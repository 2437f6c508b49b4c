package anylisten

import (
	"os"

	"golang.org/x/sys/unix"
)

// peerCredentialsSupported says that sockPeerCredentials reads the
// credentials of a UNIX connection's peer here.
const peerCredentialsSupported = true

// NetBSD's option for the peer's credentials, which x/sys does not name:
// LOCAL_PEEREID at level 0 (SOL_LOCAL), from <sys/un.h>.
const (
	solLocal     = 0
	localPeerEID = 3
)

// sockPeerCredentials reads the credentials of the peer of the connected
// UNIX socket fd: LOCAL_PEEREID, a struct unpcbid {pid_t unp_pid; uid_t
// unp_euid; gid_t unp_egid;}. x/sys has no getter for it, so it is read
// with the getter of another option whose value is larger, eight 32-bit
// words (an ICMPv6 filter), of which the kernel fills the first three.
// Compiled for NetBSD, and never run by this package's tests, which run on
// Linux.
func sockPeerCredentials(fd uintptr) (Credentials, error) {
	w, err := unix.GetsockoptICMPv6Filter(int(fd), solLocal, localPeerEID)
	if err != nil {
		return Credentials{}, os.NewSyscallError("getsockopt LOCAL_PEEREID", err)
	}
	return Credentials{PID: int(int32(w.Filt[0])), UID: w.Filt[1], GID: w.Filt[2]}, nil
}
