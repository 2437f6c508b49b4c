package anylisten

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// listenVsock listens on AF_VSOCK. Port 0 lets the kernel pick a port,
// which Addr reports. The backlog is the kernel's maximum, as for UNIX
// sockets and net.Listen (Options.TCPListenBacklog is for TCP only).
func listenVsock(a Address) (net.Listener, error) {
	fd, err := vsockSocket(a.cid, a.num)
	if err != nil {
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (this machine has no vsock transport: on a VM host try modprobe vhost_vsock, "+
				"for local tests modprobe vsock_loopback)", err)
		}
		if errors.Is(err, unix.EADDRNOTAVAIL) && a.cid != cidAny {
			return nil, fmt.Errorf("%w (CID %d is not this machine's: listen on vsock:any:PORT, or for CID 1 (local) "+
				"load the loopback transport, modprobe vsock_loopback)", err, a.cid)
		}
		return nil, err
	}
	return newVsockListener(fd, a.String())
}

// vsockSocket returns a listening AF_VSOCK socket bound to cid and port
// (0 for any), or closes what it opened and returns the error.
func vsockSocket(cid, port uint32) (int, error) {
	if port == 0 {
		port = unix.VMADDR_PORT_ANY
	}
	fd, err := socketCloexec(unix.AF_VSOCK, unix.SOCK_STREAM)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: cid, Port: port}); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	if err := listenFD(fd); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
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

// vsockFileListener makes a vsockListener of an inherited listening
// AF_VSOCK socket, from a duplicate of f of its own; the caller closes f.
func vsockFileListener(f *os.File) (net.Listener, error) {
	fd, err := dupCloexec(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	return newVsockListener(fd, f.Name())
}

// vsockListener is a *vsock.Listener with the SyscallConn that it lacks,
// so that an Upgrader can hand its socket over and a merged listener can
// wait on it. vsock.FileListener works on a duplicate of the fd it is
// given and never shows it, so file keeps the fd this package made or
// adopted, for SyscallConn: one more fd per listener, closed by Close.
type vsockListener struct {
	*vsock.Listener
	file   *os.File
	closed atomic.Bool
}

// newVsockListener makes a vsockListener of the listening AF_VSOCK socket
// fd, which it takes (closing it on error too); name is for the *os.File.
func newVsockListener(fd int, name string) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), name)
	ln, err := vsock.FileListener(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &vsockListener{Listener: ln, file: f}, nil
}

// Accept waits for the next connection and returns it as a *vsock.Conn.
// After Close it returns an error wrapping net.ErrClosed.
func (l *vsockListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && l.closed.Load() {
		return nil, &net.OpError{Op: "accept", Net: "vsock", Addr: l.Addr(), Err: net.ErrClosed}
	}
	return c, err
}

// Close stops listening; connections already accepted stay open. Closing
// again returns an error wrapping net.ErrClosed.
func (l *vsockListener) Close() error {
	if l.closed.Swap(true) {
		return &net.OpError{Op: "close", Net: "vsock", Addr: l.Addr(), Err: net.ErrClosed}
	}
	err := l.Listener.Close() // ends a waiting Accept
	if ferr := l.file.Close(); err == nil {
		err = ferr
	}
	return err
}

// SyscallConn returns the listening socket's raw connection, as
// *net.TCPListener's does: Control runs on the socket's fd, and returns
// an error wrapping net.ErrClosed once the listener is closed; Read and
// Write are not supported.
func (l *vsockListener) SyscallConn() (syscall.RawConn, error) {
	rc, err := l.file.SyscallConn()
	if err != nil {
		return nil, err
	}
	return vsockRawConn{rc, l}, nil
}

type vsockRawConn struct {
	file syscall.RawConn
	l    *vsockListener
}

func (c vsockRawConn) Control(f func(fd uintptr)) error {
	err := c.file.Control(f)
	if err != nil && c.l.closed.Load() { // os says "use of closed file"
		return &net.OpError{Op: "raw-control", Net: "vsock", Addr: c.l.Addr(), Err: net.ErrClosed}
	}
	return err
}

func (vsockRawConn) Read(func(fd uintptr) bool) error  { return syscall.EINVAL }
func (vsockRawConn) Write(func(fd uintptr) bool) error { return syscall.EINVAL }

func describeOtherSockaddr(sa unix.Sockaddr) (family, on string) {
	if vm, ok := sa.(*unix.SockaddrVM); ok {
		return "AF_VSOCK", " on " + strconv.FormatUint(uint64(vm.CID), 10) + ":" + strconv.FormatUint(uint64(vm.Port), 10)
	}
	return "", ""
}
