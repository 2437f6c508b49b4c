package anylisten

import (
	"errors"
	"fmt"
	"net"
)

// Credentials are the credentials of the process at the other end of a
// UNIX connection, as the kernel recorded them when it connected: for a
// connection a server accepted, those of the process that called
// connect(), at that time; for a client's connection, those of the
// server's process when it called listen(). They do not follow the
// process: a peer that changes its uid afterwards (setuid, exec of a
// set-user-ID program or of setpriv), or passes its file descriptor to
// another process, keeps the credentials it connected with. Where the peer
// runs in another user or PID namespace, the ids are as this process's
// namespaces see them (Linux reports an id that does not map as the
// overflow id 65534, and a pid it cannot see as 0).
type Credentials struct {
	UID uint32 // its effective user id
	GID uint32 // its effective group
	// Groups are its supplementary groups where the system says (Linux
	// 4.13 and later: SO_PEERGROUPS; macOS, FreeBSD and DragonFly: the
	// xucred of LOCAL_PEERCRED, which holds at most 15 besides the
	// effective group): non-nil there, empty for a process that has
	// none. nil where the system does not say (OpenBSD, NetBSD,
	// Solaris, illumos, Linux before 4.13).
	Groups []uint32
	// PID is its process id; 0 where the system does not say
	// (DragonFly, FreeBSD before 13) or, on Linux, where the peer's
	// process is in a PID namespace this one cannot see.
	PID int
}

// PeerCredentials returns the credentials of the peer of c, a UNIX stream
// or seqpacket connection: a *net.UnixConn, as Listen's UNIX listeners
// (socket paths, abstract names, unixpacket:, inherited sockets) accept
// them, or a connection that unwraps to one through NetConn methods, as a
// *tls.Conn and the one connection of inetd and systemd's Accept=yes do.
// It reads what the kernel recorded at connect time, with no round trip
// to the peer, so it may be called before or after the first read.
//
// For a connection that is not a UNIX socket (TCP, a net.Pipe end), a
// datagram socket (which has no peer) and a nil c the error says what c
// is. On Linux it reads SO_PEERCRED and SO_PEERGROUPS; on macOS
// LOCAL_PEERCRED and LOCAL_PEERPID; on FreeBSD and DragonFly
// LOCAL_PEERCRED; on OpenBSD SO_PEERCRED; on NetBSD LOCAL_PEEREID; on
// Solaris and illumos getpeerucred. Elsewhere (Windows, AIX) the error
// wraps errors.ErrUnsupported. Errors are *net.OpError values with Op
// "peercred".
func PeerCredentials(c net.Conn) (Credentials, error) {
	if u, ok := c.(*UnixgramConn); ok && u == nil {
		return Credentials{}, peerCredError(nil, errors.New("a nil *anylisten.UnixgramConn has no peer"))
	}
	conn := c
	for range maxUnwrap {
		switch x := conn.(type) {
		case *net.UnixConn:
			if x == nil {
				if conn == c {
					c = nil // whose methods would panic
				}
				break
			}
			if a, ok := x.LocalAddr().(*net.UnixAddr); ok && a.Net == "unixgram" {
				return Credentials{}, peerCredError(c, errors.New("a datagram socket has no peer, and so no peer credentials: they are a connection's (unix or unixpacket)"))
			}
			cred, err := unixConnCredentials(x)
			if err != nil {
				return Credentials{}, peerCredError(c, err)
			}
			return cred, nil
		case interface{ NetConn() net.Conn }:
			conn = x.NetConn()
			continue
		}
		break
	}
	return Credentials{}, peerCredError(c, notUnixError(conn))
}

// maxUnwrap bounds the chain of NetConn methods PeerCredentials follows.
const maxUnwrap = 16

// notUnixError says why conn, which is neither a *net.UnixConn nor has a
// NetConn method, has no peer credentials.
func notUnixError(conn net.Conn) error {
	switch x := conn.(type) {
	case nil:
		return errors.New("a nil connection has no peer")
	case *net.UnixConn:
		return errors.New("a nil *net.UnixConn has no peer")
	case interface{ NetConn() net.Conn }:
		return fmt.Errorf("a %T still wraps a connection after %d NetConn calls", x, maxUnwrap)
	}
	if _, ok := conn.LocalAddr().(*net.UnixAddr); ok {
		return fmt.Errorf("a %T wraps a UNIX connection with no NetConn method to reach it: "+
			"call PeerCredentials on the connection the listener returned, before a wrapper (netutil.LimitListener's, say) hides it", conn)
	}
	return fmt.Errorf("a %T has no peer credentials: the kernel records them for UNIX socket connections only", conn)
}

// peerCredError wraps err as PeerCredentials' error for c.
func peerCredError(c net.Conn, err error) error {
	e := &net.OpError{Op: "peercred", Err: err}
	if c == nil {
		return e
	}
	if local := c.LocalAddr(); local != nil {
		e.Net, e.Source = local.Network(), SocketPath(local)
	}
	if remote := c.RemoteAddr(); remote != nil && remote.String() != "" && remote.String() != "@" {
		e.Addr = remote
	}
	return e
}

// unixConnCredentials reads the peer credentials of the UNIX connection c
// (sockPeerCredentials, per system).
func unixConnCredentials(c *net.UnixConn) (Credentials, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return Credentials{}, err
	}
	var cred Credentials
	err = rawControl(rc, func(fd uintptr) error {
		var err error
		cred, err = sockPeerCredentials(fd)
		return err
	})
	return cred, err
}
