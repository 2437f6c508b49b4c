package anylisten

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerCredentialsSupported says that sockPeerCredentials reads the
// credentials of a UNIX connection's peer here.
const peerCredentialsSupported = true

// sockPeerCredentials reads the credentials of the peer of the connected
// UNIX socket fd: LOCAL_PEERCRED, a struct xucred with the user, up to 16
// groups (the effective one first) and, since FreeBSD 13, the pid.
// Compiled for FreeBSD, and never run by this package's tests, which run
// on Linux.
func sockPeerCredentials(fd uintptr) (Credentials, error) {
	x, err := unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return Credentials{}, os.NewSyscallError("getsockopt LOCAL_PEERCRED", err)
	}
	c, err := xucredCredentials(x.Version, x.Uid, x.Ngroups, x.Groups[:])
	if err != nil {
		return Credentials{}, err
	}
	// The last field of struct xucred is a union of a pointer that older
	// systems leave NULL and, since FreeBSD 13, the pid_t cr_pid. x/sys
	// declares it as a blank *byte, so it is read here where it lies:
	// cr_pid is the union's first four bytes.
	c.PID = int(*(*int32)(unsafe.Add(unsafe.Pointer(x), unsafe.Sizeof(*x)-unsafe.Sizeof(uintptr(0)))))
	return c, nil
}
