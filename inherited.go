package anylisten

import "net"

// InheritedSocket is a socket a service manager (LISTEN_FDS) or a
// predecessor's Upgrader passed to this process.
type InheritedSocket struct {
	FD   int    // its file descriptor, from 3
	Name string // its LISTEN_FDNAMES entry; "unknown" where none was given
	// Addr is what the socket is bound to: a *net.TCPAddr, *net.UDPAddr or
	// *net.UnixAddr (an abstract name starts with '@'; a socket anylisten
	// bound in a private directory, as a predecessor's, shows its path, as
	// SocketPath maps it), or for another family one whose Network names
	// it. It is nil for a socket Ready closed, or an fd that is not a
	// socket.
	Addr net.Addr
	// TakenBy is the canonical form of the Address whose Listen took the
	// socket (for sd-listen:* that form), or "" if none did.
	TakenBy string
	// Closed says that Ready closed the socket, which a predecessor's
	// Upgrader had handed over and no Listen took.
	Closed bool
}

// Inherited returns the sockets passed to this process, in fd order, and
// which Listen took each; nil where none were passed (or LISTEN_PID names
// another process). Those with TakenBy "" and not Closed are unclaimed:
// a socket that a .socket unit passes and no --listen address asks for
// gets connections that wait for ever. Programs should log them after
// their last Listen, and after Ready where they call it (Ready closes the
// sockets a predecessor handed over that no Listen took, as its new
// configuration dropped them), as the examples do:
//
//	for _, s := range anylisten.Inherited() {
//		if s.TakenBy == "" && !s.Closed {
//			log.Printf("passed socket fd %d (%s) on %v is not listened on", s.FD, s.Name, s.Addr)
//		}
//	}
//
// It reads LISTEN_* as Listen does (once per process) and changes nothing.
func Inherited() []InheritedSocket { return inheritedSockets() }
