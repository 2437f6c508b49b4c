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
// UNIX socket fd: SO_PEERCRED, and SO_PEERGROUPS (Linux 4.13 and later).
func sockPeerCredentials(fd uintptr) (Credentials, error) {
	uc, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Credentials{}, os.NewSyscallError("getsockopt SO_PEERCRED", err)
	}
	groups, err := peerGroups(fd)
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{UID: uc.Uid, GID: uc.Gid, Groups: groups, PID: int(uc.Pid)}, nil
}

// peerGroups returns the supplementary groups of the peer of fd
// (SO_PEERGROUPS), or nil before Linux 4.13, which does not have the
// option. Its value is as long as the peer has groups, and x/sys has no
// getter for it that says how long (GetsockoptString stops at the first
// zero byte), so peerGroups calls getsockopt itself: into a buffer on the
// stack, and once more into one of the size the kernel asks for with
// ERANGE. (The getsockopt system call of its own came to 386 and s390x in
// Linux 4.3, before SO_PEERGROUPS.)
func peerGroups(fd uintptr) ([]uint32, error) {
	var stack [32]uint32
	buf := stack[:]
	for {
		size := uint32(4 * len(buf)) // socklen_t
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case errno == 0 && size <= uint32(4*len(buf)):
			// A new array, empty but not nil for a peer without groups.
			return append([]uint32{}, buf[:size/4]...), nil
		case errno == unix.ERANGE && size/4 > uint32(len(buf)):
			buf = make([]uint32, size/4)
		case errno == unix.ENOPROTOOPT:
			return nil, nil
		case errno == 0 || errno == unix.ERANGE:
			return nil, os.NewSyscallError("getsockopt SO_PEERGROUPS", unix.EINVAL) // a size that makes no sense
		default:
			return nil, os.NewSyscallError("getsockopt SO_PEERGROUPS", errno)
		}
	}
}
