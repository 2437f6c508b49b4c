package anylisten

import (
	"encoding/binary"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerCredentialsSupported says that sockPeerCredentials reads the
// credentials of a UNIX connection's peer here.
const peerCredentialsSupported = true

// DragonFly's option for the peer's credentials, which x/sys does not
// name: LOCAL_PEERCRED at level 0 (SOL_LOCAL), from <sys/un.h>.
const (
	solLocal      = 0
	localPeerCred = 1
)

// sockPeerCredentials reads the credentials of the peer of the connected
// UNIX socket fd: LOCAL_PEERCRED, a struct xucred {u_int cr_version; uid_t
// cr_uid; short cr_ngroups; gid_t cr_groups[16]; void *_cr_unused1;}, 80
// bytes, of which the kernel copies as many as the buffer holds without
// saying that it cut it short. x/sys has no getter for it, nor one for
// any option of 80 bytes or more, so it calls getsockopt itself (as x/sys
// does on DragonFly) into a buffer larger than the struct and decodes it.
// Compiled for DragonFly, and never run by this package's tests, which run
// on Linux.
func sockPeerCredentials(fd uintptr) (Credentials, error) {
	var buf [128]byte
	size := uint32(len(buf)) // socklen_t
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, solLocal, localPeerCred,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return Credentials{}, os.NewSyscallError("getsockopt LOCAL_PEERCRED", errno)
	}
	const groupsAt, ngroups = 12, 16
	if size < groupsAt+4*ngroups {
		return Credentials{}, os.NewSyscallError("getsockopt LOCAL_PEERCRED", unix.EINVAL) // too short for a struct xucred
	}
	ne := binary.NativeEndian
	var groups [ngroups]uint32
	for i := range groups {
		groups[i] = ne.Uint32(buf[groupsAt+4*i:])
	}
	return xucredCredentials(ne.Uint32(buf[0:]), ne.Uint32(buf[4:]), int16(ne.Uint16(buf[8:])), groups[:])
}
