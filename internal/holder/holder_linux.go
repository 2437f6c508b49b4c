package holder

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// acceptCon is __SO_ACCEPTCON in the flags of /proc/net/unix: the socket
// listens.
const acceptCon = 0x10000

// inetHolders finds the holders of the listening TCP sockets (tcp), or
// of the UDP sockets, that clash with addr (see TCP).
func inetHolders(tcp bool, addr *net.TCPAddr, v6only bool) Holders {
	owners := map[uint64]int{} // socket inode: uid
	uncertain := false
	ours4 := addr.IP != nil && addr.IP.To4() != nil && !addr.IP.Equal(net.IPv4zero)
	files := []string{"/proc/net/udp", "/proc/net/udp6"}
	if tcp {
		files = []string{"/proc/net/tcp", "/proc/net/tcp6"}
	}
	for _, file := range files {
		eachLine(file, func(f []string) {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) < 10 || tcp && f[3] != tcpListen {
				return
			}
			hexIP, hexPort, ok := strings.Cut(f[1], ":")
			port, err := strconv.ParseUint(hexPort, 16, 16)
			ip := parseIP(hexIP)
			if !ok || err != nil || ip == nil || int(port) != addr.Port || !clashes(addr.IP, ip) {
				return
			}
			theirs4 := ip.To4() != nil
			if v6only && !ours4 && theirs4 {
				return // our IPv6 wildcard takes no IPv4 address
			}
			if ours4 && !theirs4 {
				uncertain = true // their IPv6 wildcard may be IPV6_V6ONLY
			}
			uid, err1 := strconv.Atoi(f[7])
			inode, err2 := strconv.ParseUint(f[9], 10, 64)
			if err1 == nil && err2 == nil && inode != 0 {
				owners[inode] = uid
			}
		})
	}
	h := find(owners)
	h.Uncertain = uncertain
	return h
}

// parseIP decodes an address of /proc/net/tcp or tcp6: 8 or 32 hex
// digits, each 32-bit word in the machine's byte order.
func parseIP(s string) net.IP {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != net.IPv4len && len(b) != net.IPv6len) {
		return nil
	}
	ip := make(net.IP, len(b))
	for i := 0; i < len(b); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(b[i:]))
	}
	return ip
}

// unixHolders finds the holders of the listening UNIX sockets, and of the
// bound datagram ones, whose name match accepts (see Unix). The sockets
// come from sock_diag, which gives each name with its length: inodes are
// the kernel's own, and a name cannot pass for another socket's record.
// Only where this system offers no sock_diag for UNIX sockets does
// /proc/net/unix serve instead (unixProcOwners). A dump that fails
// midway names nobody: an incomplete list could name only some holders,
// and nobody is better than a wrong one.
func unixHolders(match func(name string) bool) Holders {
	owners := map[uint64]int{}
	err := eachUnixSocket(func(s unixSocket) {
		// A listening socket, or a bound datagram socket.
		if s.state != tcpListenSt && s.typ != unix.SOCK_DGRAM || s.name == "" || s.ino == 0 || !match(s.name) {
			return
		}
		// udiag_ino is 32 bits, as sockfs's inode numbers are (get_next_ino);
		// /proc/PID/fd's "socket:[N]" is read as 64 bits, and is compared
		// whole, so no larger inode can pass for this one.
		owners[uint64(s.ino)] = -1 // no uid asked for: a hidden holder is not named, as before
	})
	switch {
	case errors.Is(err, errDiagUnavailable):
		owners = unixProcOwners(match)
	case err != nil:
		return Holders{}
	}
	return find(owners)
}

// unixProcOwners is unixHolders's sockets from /proc/net/unix, the
// fallback for a system without sock_diag for UNIX sockets (a kernel
// built without unix_diag, a sandbox such as gVisor, a seccomp policy
// that refuses netlink). A name there is printed as it is, and a
// newline in it can forge another line: an inode named twice is taken to
// be forged and dropped, which keeps an innocent UNIX socket from being
// named but hides its real holder too, and a forged line naming another
// kind of socket's inode (which no real line names) is still believed.
func unixProcOwners(match func(name string) bool) map[uint64]int {
	owners := map[uint64]int{}
	seen := map[uint64]int{} // how many lines name each inode
	eachLineRaw("/proc/net/unix", func(line string) {
		// Num RefCount Protocol Flags Type St Inode Path; the path, the
		// rest of the line after one space, may hold spaces itself, and
		// is missing for an unbound socket.
		rest := line
		var f [7]string
		for i := range f {
			rest = strings.TrimLeft(rest, " ")
			end := strings.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			f[i], rest = rest[:end], rest[min(end+1, len(rest)):]
		}
		flags, err1 := strconv.ParseUint(f[3], 16, 32)
		inode, err2 := strconv.ParseUint(f[6], 10, 64)
		if err1 != nil || err2 != nil {
			return
		}
		seen[inode]++
		// A listening socket, or a bound datagram socket (type 2).
		if flags&acceptCon == 0 && f[4] != "0002" || rest == "" || !match(rest) {
			return
		}
		owners[inode] = -1 // /proc/net/unix does not say
	})
	// Each socket has one line, so an inode named twice is a forgery, and
	// neither line is believed.
	for inode := range owners {
		if seen[inode] > 1 {
			delete(owners, inode)
		}
	}
	return owners
}

// find returns the processes that hold the sockets of owners, and the
// owners of those that no visible process holds.
func find(owners map[uint64]int) Holders {
	var h Holders
	if len(owners) == 0 {
		return h
	}
	seen := map[uint64]bool{}
	procs, _ := os.ReadDir("/proc")
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		inodes := holding(pid, owners)
		if len(inodes) == 0 {
			continue
		}
		for _, ino := range inodes {
			seen[ino] = true
		}
		h.Procs = append(h.Procs, Proc{PID: pid, Name: comm(pid), UID: realUID(pid), inodes: inodes})
	}
	for ino, uid := range owners {
		if !seen[ino] && uid >= 0 && !slices.Contains(h.HiddenUIDs, uid) {
			h.HiddenUIDs = append(h.HiddenUIDs, uid)
		}
	}
	slices.SortFunc(h.Procs, func(a, b Proc) int { return a.PID - b.PID })
	slices.Sort(h.HiddenUIDs)
	return h
}

// holding returns the sockets among want that process pid has open;
// none if its descriptors cannot be read (another user's process, or
// one that has exited).
func holding(pid int, want map[uint64]int) []uint64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	fds, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var found []uint64
	for _, fd := range fds {
		target, err := os.Readlink(dir + fd.Name())
		if err != nil {
			continue
		}
		s, ok := strings.CutPrefix(target, "socket:[")
		if !ok {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
		if _, want := want[ino]; err == nil && want && !slices.Contains(found, ino) {
			found = append(found, ino)
		}
	}
	return found
}

func (p Proc) stillHolds() bool {
	want := map[uint64]int{}
	for _, ino := range p.inodes {
		want[ino] = 0
	}
	return len(holding(p.PID, want)) > 0
}

// comm returns the command name of process pid, or "".
func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSuffix(string(b), "\n")
}

// realUID returns the real user id of process pid, or -1.
func realUID(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	_, rest, ok := strings.Cut(string(b), "\nUid:")
	if f := strings.Fields(rest); ok && len(f) > 0 {
		if uid, err := strconv.Atoi(f[0]); err == nil {
			return uid
		}
	}
	return -1
}

// eachLine calls f with the fields of each line of the /proc/net table
// file after its header; a file that cannot be read has no lines.
func eachLine(file string, f func(fields []string)) {
	eachLineRaw(file, func(line string) { f(strings.Fields(line)) })
}

// eachLineRaw calls f with each line of the /proc/net table file after its
// header.
func eachLineRaw(file string, f func(line string)) {
	fh, err := os.Open(file)
	if err != nil {
		return
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for first := true; sc.Scan(); first = false {
		if !first {
			f(sc.Text())
		}
	}
}
