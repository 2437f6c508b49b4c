package anylisten

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// listenVsock listens on AF_VSOCK. Port 0 lets the kernel pick a port,
// which Addr reports.
func listenVsock(a Address) (net.Listener, error) {
	ln, err := vsock.ListenContextID(a.cid, a.num, nil)
	if err != nil {
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (this machine has no vsock transport: on a VM host try modprobe vhost_vsock, "+
				"for local tests modprobe vsock_loopback)", err)
		}
		return nil, err
	}
	return ln, nil
}

// dialVsock connects to a vsock address; VMADDR_CID_ANY names no peer.
func dialVsock(a Address) (net.Conn, error) {
	if a.cid == cidAny {
		return nil, errors.New("vsock:any names no peer to connect to; give the CID (local or 1 for this machine, host or 2 for the host)")
	}
	c, err := vsock.Dial(a.cid, a.num, nil)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func isVsock(sa unix.Sockaddr) bool {
	_, ok := sa.(*unix.SockaddrVM)
	return ok
}

// vsockFileListener turns an inherited listening AF_VSOCK socket into a
// *vsock.Listener; the caller closes f.
func vsockFileListener(f *os.File) (net.Listener, error) {
	ln, err := vsock.FileListener(f)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return ln, nil
}

func describeOtherSockaddr(sa unix.Sockaddr) (family, on string) {
	if vm, ok := sa.(*unix.SockaddrVM); ok {
		return "AF_VSOCK", " on " + strconv.FormatUint(uint64(vm.CID), 10) + ":" + strconv.FormatUint(uint64(vm.Port), 10)
	}
	return "", ""
}
