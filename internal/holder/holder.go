// Package holder finds the processes that hold a listening socket open,
// so that an "address already in use" error can name them and the
// tcp_kill_port option can ask them to stop. Only Linux shows them: the
// TCP and UDP sockets in /proc/net, the UNIX sockets through sock_diag
// (NETLINK_SOCK_DIAG, unix_diag; /proc/net/unix only where that is not
// available), and their processes' descriptors in /proc/PID/fd.
// Elsewhere nothing is ever found.
package holder

import (
	"net"
	"os"
	"strconv"
	"strings"
)

// Proc is a process that holds a socket open.
type Proc struct {
	PID  int
	Name string // the command name (/proc/PID/comm), "" if unknown
	UID  int    // the real user id, -1 if unknown

	inodes []uint64 // the sockets it was found to hold
}

// String is "pid 1234 (hello)", and "pid 1234 (hello), this process"
// for the process that asks.
func (p Proc) String() string {
	s := "pid " + strconv.Itoa(p.PID)
	if p.Name != "" {
		s += " (" + p.Name + ")"
	}
	if p.PID == os.Getpid() {
		s += ", this process"
	}
	return s
}

// StillHolds reports whether the process p names now holds one of the
// sockets it was found with: after a pidfd was opened for p.PID, this
// makes sure the pid was not reused by another process meanwhile.
func (p Proc) StillHolds() bool { return p.stillHolds() }

// Holders are the holders found for an address.
type Holders struct {
	// Procs are the processes that hold a matching socket, by pid.
	Procs []Proc
	// HiddenUIDs are the owners of matching sockets that no visible
	// process holds (the processes of other users hide their descriptors
	// from all but root), by uid, each once. Only TCP knows them.
	HiddenUIDs []int
	// Uncertain says that a holder was matched only because an IPv6
	// wildcard socket of its may be dual stack: /proc does not show
	// IPV6_V6ONLY, so it may not hold the address at all.
	Uncertain bool
}

// String names the holders, "pid 1234 (hello), pid 1240 (hello)", or
// says whose they are where they cannot be seen: "a process of uid 0
// that this process cannot see". It is "" when nothing was found.
func (h Holders) String() string {
	var parts []string
	for _, p := range h.Procs {
		parts = append(parts, p.String())
	}
	for _, uid := range h.HiddenUIDs {
		parts = append(parts, "a process of uid "+strconv.Itoa(uid)+" that this process cannot see")
	}
	return strings.Join(parts, ", ")
}

// TCP returns the holders of the listening TCP sockets that keep addr
// from being bound: those on its port whose address is addr's, or either
// of which is a wildcard address of the same family; an IPv6 wildcard
// (":PORT", "[::]:PORT", "0.0.0.0:PORT", a nil IP) of ours is dual stack,
// as Go makes it, unless v6only (IPV6_V6ONLY, Options.TCPOnlyV6), and so
// clashes with IPv4 addresses too. Another process's IPv6 wildcard is
// taken to clash with an IPv4 addr, and the result is then Uncertain:
// /proc does not show whether it is dual stack.
func TCP(addr *net.TCPAddr, v6only bool) Holders { return inetHolders(true, addr, v6only) }

// UDP returns the holders of the UDP sockets that keep addr from being
// bound, as TCP does for TCP: any UDP socket bound to the port clashes,
// listening being no state of UDP's.
func UDP(addr *net.UDPAddr, v6only bool) Holders {
	return inetHolders(false, &net.TCPAddr{IP: addr.IP, Port: addr.Port, Zone: addr.Zone}, v6only)
}

// Unix returns the holders of the listening UNIX sockets, and of the
// bound UNIX datagram sockets, whose name, as
// the kernel keeps it (the path given to bind, or "@" and an abstract
// name), match accepts.
func Unix(match func(name string) bool) Holders { return unixHolders(match) }

// clashes reports whether a TCP socket bound to ours is refused because
// of a listening socket bound to theirs, on the same port.
func clashes(ours, theirs net.IP) bool {
	if ours == nil || ours.Equal(net.IPv4zero) {
		return true // ":PORT" and "0.0.0.0:PORT", which Go binds to the dual-stack "::"
	}
	ours4, theirs4 := ours.To4() != nil, theirs.To4() != nil
	oursWild, theirsWild := ours.IsUnspecified(), theirs.IsUnspecified()
	if ours4 == theirs4 {
		return oursWild || theirsWild || ours.Equal(theirs)
	}
	// Across the families only an IPv6 wildcard clashes, taken to be
	// dual stack.
	if ours4 {
		return theirsWild
	}
	return oursWild
}
