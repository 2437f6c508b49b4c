//go:build unix

package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The systemd socket activation protocol, as sd_listen_fds(3) describes
// it: sockets start at fd 3, LISTEN_FDS says how many there are,
// LISTEN_PID which process they are for, and LISTEN_FDNAMES names them,
// separated by colons.
const (
	listenFDsStart = 3
	// maxListenFDs bounds LISTEN_FDS against nonsense; systemd's own limit
	// on a unit's sockets is far lower.
	maxListenFDs = 1 << 16
	// defaultFDName is the name sd_listen_fds_with_names gives every socket
	// when LISTEN_FDNAMES is not set (systemd-socket-activate sets none).
	defaultFDName = "unknown"
)

// inherited is the process's view of the sockets a service manager passed
// in, read from the environment once, on first use, and shared by every
// Listen. Each fd is handed out at most once.
var inherited struct {
	once    sync.Once
	env     sdEnv
	mu      sync.Mutex
	claimed map[int]string   // fd -> the address that took it
	addrs   map[int]net.Addr // fd -> what it was bound to, once taken
}

// sdEnv is what the environment said.
type sdEnv struct {
	err   error    // why no sockets were passed to this process; nil if they were
	n     int      // LISTEN_FDS, if it is a positive number (even when err is set)
	names []string // LISTEN_FDNAMES when it names exactly n sockets; nil otherwise
}

func inheritedEnv() *sdEnv {
	inherited.once.Do(func() {
		inherited.env = readSDEnv(os.Getpid())
		inherited.claimed = map[int]string{}
		inherited.addrs = map[int]net.Addr{}
	})
	return &inherited.env
}

// listenVars are the variables of the protocol; readyFDVar and
// unlinkFDsVar are the Upgrader's additions to it.
var listenVars = [...]string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", readyFDVar, unlinkFDsVar}

func init() { closeOnExecPassed() }

// closeOnExecPassed runs at package initialisation. If sockets were passed
// to this process (LISTEN_PID is its pid), it makes fds 3 to
// 3+LISTEN_FDS-1 close-on-exec, as systemd's sd_listen_fds does, so that no
// child started before the first Listen inherits them, and notes what each
// is (passedAtStart); it changes nothing else, and leaves the environment
// alone.
func closeOnExecPassed() {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 || n > maxListenFDs {
		return
	}
	passedAtStart = make(map[int]fileID, n)
	for fd := listenFDsStart; fd < listenFDsStart+n; fd++ {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			passedAtStart[fd] = fileID{uint64(st.Dev), uint64(st.Ino)}
			unix.CloseOnExec(fd)
		}
	}
}

// passedAtStart is the identity of each passed fd that was open when the
// package initialised, if sockets were passed to this process then; nil
// if not. An fd that was closed then, or that is another file now (the
// program closed it and the number was reused), is not a passed socket,
// and is never taken (stillPassed).
var passedAtStart map[int]fileID

// stillPassed says why fd is not the file passed as it, or nil if it is
// (or if what was passed is not known: no LISTEN_PID for this process at
// start, as with sd_accept_ignore_environment).
func stillPassed(fd int) error {
	if passedAtStart == nil {
		return nil
	}
	id, open := passedAtStart[fd]
	if !open {
		return errors.New("not open when the program started: nothing was passed as it")
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || uint64(st.Dev) != id.dev || uint64(st.Ino) != id.ino {
		return errors.New("another file than the one passed as it (the program closed it, and the number was used again)")
	}
	return nil
}

// forgetListenVars removes the protocol's variables from the environment,
// once a socket passed in was taken: a child process must not believe they
// are meant for it. Until then they stay, for other code in the process
// (go-systemd's activation, say) to read.
func forgetListenVars() {
	readyState() // read before its variables go
	for _, v := range listenVars {
		os.Unsetenv(v)
	}
}

// readSDEnv reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, as meant for
// process pid. It changes neither the environment nor the fds.
func readSDEnv(pid int) sdEnv {
	pidStr, hasPID := os.LookupEnv("LISTEN_PID")
	fdsStr, hasFDs := os.LookupEnv("LISTEN_FDS")
	namesStr, hasNames := os.LookupEnv("LISTEN_FDNAMES")
	var e sdEnv
	if n, err := strconv.Atoi(fdsStr); err == nil && n > 0 && n <= maxListenFDs {
		e.n = n
	}
	if hasNames {
		if names := strings.Split(namesStr, ":"); len(names) == e.n {
			e.names = names
		}
	}
	switch {
	case !hasFDs && !hasPID:
		e.err = errors.New("LISTEN_FDS is not set: no sockets were passed to this process " +
			"(start it from a systemd .socket unit or with systemd-socket-activate)")
	case !hasFDs:
		e.err = fmt.Errorf("LISTEN_PID=%s is set but LISTEN_FDS is not: no sockets were passed", pidStr)
	case e.n == 0:
		e.err = fmt.Errorf("LISTEN_FDS=%q is not a number of sockets from 1 to %d", fdsStr, maxListenFDs)
	case !hasPID:
		e.err = fmt.Errorf("LISTEN_FDS=%s is set but LISTEN_PID is not, so the sockets are not known to be meant for this process", fdsStr)
	case pidStr != strconv.Itoa(pid):
		e.err = fmt.Errorf("LISTEN_PID=%q is not this process (pid %d): the sockets were passed to another process", pidStr, pid)
	case hasNames && e.names == nil:
		e.err = fmt.Errorf("LISTEN_FDNAMES=%q does not name exactly LISTEN_FDS=%d sockets", namesStr, e.n)
	}
	return e
}

// sdFD is one inherited socket and its name.
type sdFD struct {
	fd   int
	name string
}

func (f sdFD) String() string { return "fd " + strconv.Itoa(f.fd) + " (" + f.name + ")" }

// fds lists the inherited sockets. With ignoreEnv it trusts LISTEN_FDS
// (or, without it, fd 3 alone) regardless of LISTEN_PID.
func (e *sdEnv) fds(ignoreEnv bool) ([]sdFD, error) {
	n := e.n
	switch {
	case ignoreEnv && n == 0:
		n = 1
	case !ignoreEnv && e.err != nil:
		return nil, e.err
	}
	fds := make([]sdFD, n)
	for i := range fds {
		fds[i] = sdFD{listenFDsStart + i, defaultFDName}
		if e.names != nil {
			fds[i].name = e.names[i]
		}
	}
	return fds, nil
}

// matches reports whether the inherited socket f answers to name: its
// LISTEN_FDNAMES entry or, when systemd gave no names, "unknown" (as
// systemd-socket-activate implies) and LISTEN_FD_N (as go-systemd names
// them).
func (f sdFD) matches(name string, named bool) bool {
	return f.name == name || !named && name == "LISTEN_FD_"+strconv.Itoa(f.fd)
}

// maxListed caps the sockets an error message lists.
const maxListed = 8

// namesOf lists fds for an error message: the first maxListed of them and
// how many more there are.
func namesOf(fds []sdFD) string {
	var b strings.Builder
	for i, f := range fds {
		if i == maxListed {
			fmt.Fprintf(&b, " and %d more", len(fds)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// listenSystemd serves the sockets a systemd Address selects for Listen:
// one socket as its native listener, several merged into one. Only stream
// and seqpacket sockets count, except for fd://N: the datagram sockets
// passed are ListenPacket's.
func listenSystemd(a Address, o *Options) (net.Listener, error) {
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	pick, err := selectLocked(a, o, false)
	if err != nil {
		return nil, err
	}
	return claimLocked(pick, a, o)
}

// listenSystemdPacket serves the datagram socket a systemd Address
// selects for ListenPacket.
func listenSystemdPacket(a Address, o *Options) (net.PacketConn, error) {
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	pick, err := selectLocked(a, o, true)
	if err != nil {
		return nil, err
	}
	if len(pick) > 1 {
		return nil, fmt.Errorf("%d datagram sockets were passed under that name: %s; ListenPacket serves one: choose it with fd://N",
			len(pick), namesOf(pick))
	}
	return claimPacketLocked(pick[0], a, o)
}

// selectLocked returns the inherited sockets a systemd Address selects,
// among those that Listen (packet false: stream and seqpacket sockets)
// or ListenPacket (packet true: datagram sockets) serves; fd://N selects
// its fd whatever it is. inherited.mu must be held.
func selectLocked(a Address, o *Options, packet bool) ([]sdFD, error) {
	e := inheritedEnv()
	all, err := e.fds(o.SDAcceptIgnoreEnvironment)
	if err != nil {
		fd := listenFDsStart
		if a.fd {
			fd = int(a.num)
		}
		return nil, fmt.Errorf("%w; the sd_accept_ignore_environment option (--sd-accept-ignore-environment) takes fd %d regardless", err, fd)
	}
	if a.fd {
		fd := int(a.num)
		switch {
		case fd < listenFDsStart:
			return nil, fmt.Errorf("fd %d is stdin, stdout or stderr, not a passed socket; for a socket on stdin use inetd", fd)
		case !o.SDAcceptIgnoreEnvironment && fd >= listenFDsStart+len(all):
			return nil, fmt.Errorf("fd %d is not among the sockets passed (LISTEN_FDS=%d: fds %d to %d)",
				fd, len(all), listenFDsStart, listenFDsStart+len(all)-1)
		}
		f := sdFD{fd, defaultFDName}
		if i := fd - listenFDsStart; i < len(all) {
			f = all[i]
		}
		return []sdFD{f}, nil
	}
	if packet && a.str == sdAll {
		return nil, errors.New("sd-listen:* merges every socket passed, and ListenPacket serves one; choose it with sd-listen:NAME or fd://N")
	}
	// The sockets the address names, and of them those of the right type.
	var named, pick []sdFD
	for _, f := range all {
		switch {
		case a.str == "", a.str == sdAll && !isClaimed(f.fd), f.matches(a.str, e.names != nil):
			named = append(named, f)
			if servesAs(f.fd, packet) {
				pick = append(pick, f)
			}
		}
	}
	if len(pick) == 0 {
		switch {
		case len(named) > 0:
			return nil, fmt.Errorf("%s: %s; %s", namesOf(named), otherType(packet), otherCall(packet))
		case a.str == sdAll:
			return nil, fmt.Errorf("every socket passed was already taken: %s", namesOf(all))
		}
		return nil, fmt.Errorf("no socket named %q was passed; the sockets passed are %s", a.str, namesOf(all))
	}
	if a.str == "" && len(pick) > 1 && !o.SDAcceptIgnoreEnvironment {
		choose := "sd-listen:NAME"
		if e.names == nil {
			// Every one is "unknown": only its fd tells them apart.
			choose = fmt.Sprintf("fd://N (fd://%d to fd://%d)", pick[0].fd, pick[len(pick)-1].fd)
		}
		orAll := ", or take all with sd-listen:*"
		if packet {
			orAll = ""
		}
		return nil, fmt.Errorf("%d sockets were passed: %s; choose one with %s%s", len(pick), namesOf(pick), choose, orAll)
	}
	if a.str == "" {
		pick = pick[:1]
	}
	return pick, nil
}

// isClaimed reports whether the inherited fd was taken; inherited.mu is
// held.
func isClaimed(fd int) bool {
	_, taken := inherited.claimed[fd]
	return taken
}

// servesAs reports whether the inherited fd is a socket that Listen
// (packet false: a stream or seqpacket socket) or ListenPacket (packet
// true: a datagram socket) serves. What cannot be looked at counts as
// either, for the claim to say what is wrong with it. inherited.mu is
// held.
func servesAs(fd int, packet bool) bool {
	if a, taken := inherited.addrs[fd]; taken { // closed since: it was what it is bound to
		return isDatagram(a) == packet
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return true
	}
	return (typ == unix.SOCK_DGRAM) == packet
}

// isDatagram reports whether a is the address of a datagram socket, as
// fdInfo.addr makes it.
func isDatagram(a net.Addr) bool {
	switch a := a.(type) {
	case *net.UDPAddr:
		return true
	case *net.UnixAddr:
		return a.Net == "unixgram"
	}
	return false
}

// otherType says what the sockets are that the call does not serve.
func otherType(packet bool) string {
	if packet {
		return "only stream and seqpacket sockets were passed"
	}
	return "only datagram sockets were passed"
}

// otherCall says which call serves the other type.
func otherCall(packet bool) string {
	if packet {
		return "serve them with Listen, not ListenPacket"
	}
	return "serve them with ListenPacket (a net.PacketConn), not Listen"
}

// claimLocked checks every fd in pick and returns their listener: the
// native one for one fd, a merged one for several. Only if all of them
// can be served are they marked taken by a and closed (the listeners hold
// duplicates); otherwise nothing is taken and every fd stays open (a
// connection whose peer o's allow lists refuse is shut down, dead for
// any later Listen). inherited.mu must be held.
func claimLocked(pick []sdFD, a Address, o *Options) (net.Listener, error) {
	infos, err := checkLocked(pick, false)
	if err != nil {
		return nil, err
	}
	for i, info := range infos {
		if err := info.checkAllow(o); err != nil {
			return nil, fmt.Errorf("%v: %w", pick[i], err)
		}
	}
	lns := make([]net.Listener, 0, len(pick))
	for i, info := range infos {
		ln, err := fdListener(info, o)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("%v: %w", pick[i], err)
		}
		lns = append(lns, ln)
	}
	ln, err := merge(lns)
	if err != nil {
		return nil, err
	}
	markLocked(infos, a)
	return ln, nil
}

// claimPacketLocked is claimLocked for ListenPacket: it checks the
// datagram socket f and returns it as a net.PacketConn.
func claimPacketLocked(f sdFD, a Address, o *Options) (net.PacketConn, error) {
	infos, err := checkLocked([]sdFD{f}, true)
	if err != nil {
		return nil, err
	}
	pc, err := fdPacketConn(infos[0], o)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", f, err)
	}
	markLocked(infos, packetForm(a)) // Inherited says udp://:53 took it, not :53
	return pc, nil
}

// checkLocked looks at every fd in pick: each must be free and a socket
// that Listen (packet false) or ListenPacket (packet true) serves.
func checkLocked(pick []sdFD, packet bool) ([]fdInfo, error) {
	infos := make([]fdInfo, len(pick))
	for i, f := range pick {
		if by, taken := inherited.claimed[f.fd]; taken {
			return nil, fmt.Errorf("%v was already taken by an earlier Listen of %s; each inherited socket serves one listener", f, by)
		}
		err := stillPassed(f.fd)
		var info fdInfo
		if err == nil {
			info, err = inspectFD(f.fd)
		}
		if err == nil && packet {
			err = info.checkPacket()
		} else if err == nil {
			err = info.checkStream()
		}
		if err != nil {
			return nil, fmt.Errorf("%v: %w", f, err)
		}
		infos[i] = info
	}
	return infos, nil
}

// markLocked marks the fds of infos taken by a, and closes them: what
// serves them holds duplicates.
func markLocked(infos []fdInfo, a Address) {
	for _, info := range infos {
		unix.Close(info.fd)
		inherited.claimed[info.fd] = a.String()
		inherited.addrs[info.fd] = info.addr()
	}
	forgetListenVars()
}

// adoptInherited returns the inherited listening socket for the TCP or
// UNIX address a, if the environment passed one that is not taken yet; nil
// otherwise. It is either a socket a predecessor's Upgrader handed over
// for a, or one bound to exactly a. This lets one configuration serve both
// a cold start and a start by systemd (or by a predecessor handing its
// sockets over), as socket_port's hot restart does for TCP ports. The
// socket is used as its creator made it: options that shape a new socket
// (mode, owner, SO_REUSEPORT, IPV6_V6ONLY, backlog) are not applied.
func adoptInherited(ctx context.Context, a Address, o *Options) (net.Listener, error) {
	ln, err := adoptInheritedFD(ctx, a, o)
	if ul, ok := ln.(*UnixListener); ok && a.kind == KindUnix {
		// The kernel's name for the socket may be the private directory
		// the predecessor bound it in; its address is the path.
		ul.addr = &net.UnixAddr{Name: a.str, Net: a.Network()}
	}
	return ln, err
}

// adoptInheritedFD finds and claims the inherited socket for adoptInherited,
// which then sets the listener's address.
func adoptInheritedFD(ctx context.Context, a Address, o *Options) (net.Listener, error) {
	e := inheritedEnv()
	if e.err != nil {
		return nil, nil
	}
	if ln, err := takeHandedOver(e, a, o); ln != nil || err != nil {
		return ln, err
	}
	match, err := boundMatcher(ctx, a, false)
	if match == nil || err != nil {
		return nil, err
	}
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	if f, ok := findLocked(e, match); ok {
		if err := passedRights(a, o); err != nil {
			return nil, err
		}
		return claimLocked([]sdFD{f}, a, o)
	}
	return nil, nil
}

// passedRights says why the socket file at a's path, of a socket passed
// in (by systemd, or a predecessor), has wider rights than o asks a new
// one to get, or nil: a permission bit that o's mode lacks, or another
// owner or group than o names, would let more clients connect than asked,
// silently, since a passed socket is used as its creator made it.
func passedRights(a Address, o *Options) error {
	if a.kind != KindUnix || o.UnixListenChmod == 0 && o.UnixListenUID == nil && o.UnixListenGID == nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(a.str, &st); err != nil {
		return nil // no file at the path: nobody connects through it
	}
	perm, want := uint32(st.Mode)&0o777, uint32(o.UnixListenChmod)
	switch {
	case want != 0 && perm&^want != 0:
		return fmt.Errorf("the socket file passed in for %s has mode %04o, wider than the %04o that the unix_listen_chmod option (--unix-listen-chmod) asks for; "+
			"a passed socket is used as it was made: give it that mode where it is made (SocketMode=%04o in a .socket unit), or drop the option",
			a.str, perm, want, want)
	case o.UnixListenUID != nil && st.Uid != *o.UnixListenUID:
		return fmt.Errorf("the socket file passed in for %s belongs to uid %d, not the %d that the unix_listen_uid option (--unix-listen-uid) asks for; "+
			"a passed socket is used as it was made: give it that owner where it is made (SocketUser= in a .socket unit), or drop the option",
			a.str, st.Uid, *o.UnixListenUID)
	case o.UnixListenGID != nil && st.Gid != *o.UnixListenGID:
		return fmt.Errorf("the socket file passed in for %s belongs to gid %d, not the %d that the unix_listen_gid option (--unix-listen-gid) asks for; "+
			"a passed socket is used as it was made: give it that group where it is made (SocketGroup= in a .socket unit), or drop the option",
			a.str, st.Gid, *o.UnixListenGID)
	}
	return nil
}

// adoptInheritedPacket is adoptInherited for ListenPacket: it takes the
// datagram socket passed for the UDP or UNIX address a.
func adoptInheritedPacket(ctx context.Context, a Address, o *Options) (net.PacketConn, error) {
	e := inheritedEnv()
	if e.err != nil {
		return nil, nil
	}
	pc, err := takeHandedOverPacket(e, a, o)
	if pc == nil && err == nil {
		match, err := boundMatcher(ctx, a, true)
		if match == nil || err != nil {
			return nil, err
		}
		inherited.mu.Lock()
		defer inherited.mu.Unlock()
		f, ok := findLocked(e, match)
		if !ok {
			return nil, nil
		}
		if err := passedRights(a, o); err != nil {
			return nil, err
		}
		if pc, err = claimPacketLocked(f, a, o); err != nil {
			return nil, err
		}
		pc = packetConnAt(pc, a)
	}
	return pc, err
}

// packetConnAt returns pc, a datagram socket taken over for a: for a UNIX
// path, a *UnixgramConn whose address is the path (the kernel's name may
// be the private directory a predecessor bound it in), which owns no file
// until the socket file is passed on to it.
func packetConnAt(pc net.PacketConn, a Address) net.PacketConn {
	uc, ok := pc.(*net.UnixConn)
	if !ok || a.kind != KindUnix {
		return pc
	}
	return &UnixgramConn{UnixConn: uc, addr: &net.UnixAddr{Name: a.str, Net: "unixgram"}}
}

// boundMatcher returns what tells a passed socket bound to exactly the
// TCP, UDP or UNIX address a, of the type Listen (packet false: a
// listening stream socket, or seqpacket for unixpacket:) or ListenPacket
// (a datagram socket) asks for; nil for the addresses no socket is bound
// to exactly (other kinds, port 0). It resolves a's service name and host
// name first.
func boundMatcher(ctx context.Context, a Address, packet bool) (func(fdInfo) bool, error) {
	switch a.kind {
	case KindTCP, KindUDP, KindUnix, KindAbstract:
	default:
		return nil, nil
	}
	network := "tcp"
	want := unix.SOCK_STREAM
	switch {
	case packet:
		network, want = "udp", unix.SOCK_DGRAM
	case a.typ == typSeqpacket:
		want = unix.SOCK_SEQPACKET
	}
	a, err := lookupService(ctx, a, network)
	if err != nil {
		return nil, err
	}
	ip := a.kind == KindTCP || a.kind == KindUDP
	if ip && a.num == 0 {
		return nil, nil
	}
	var hostIPs []netip.Addr // for a host name, its addresses
	if ip && a.str != "" {
		if addr, err := netip.ParseAddr(a.str); err == nil {
			hostIPs = []netip.Addr{addr}
		} else if hostIPs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", a.str); err != nil {
			return nil, err
		}
	}
	return func(info fdInfo) bool {
		return info.typ == want && info.listening == (want != unix.SOCK_DGRAM) &&
			boundTo(info.local, a, int(a.num), hostIPs)
	}, nil
}

// findLocked returns the first untaken passed socket that match accepts;
// inherited.mu is held.
func findLocked(e *sdEnv, match func(fdInfo) bool) (sdFD, bool) {
	fds, _ := e.fds(false)
	for _, f := range fds {
		if isClaimed(f.fd) {
			continue
		}
		if info, err := inspectFD(f.fd); err == nil && stillPassed(f.fd) == nil && match(info) {
			return f, true
		}
	}
	return sdFD{}, false
}

// boundTo reports whether the socket address sa is the address a names,
// whose TCP port (a port number, or its service name looked up) is port.
func boundTo(sa unix.Sockaddr, a Address, port int, hostIPs []netip.Addr) bool {
	var ip netip.Addr
	var boundPort int
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		ip, boundPort = netip.AddrFrom4(sa.Addr), sa.Port
	case *unix.SockaddrInet6:
		ip, boundPort = netip.AddrFrom16(sa.Addr).Unmap(), sa.Port
	case *unix.SockaddrUnix:
		switch a.kind {
		case KindAbstract:
			return sa.Name == "@"+a.str
		case KindUnix:
			return sameSocketPath(sa.Name, a.str)
		}
		return false
	default:
		return false
	}
	if a.kind != KindTCP && a.kind != KindUDP || boundPort != port {
		return false
	}
	if a.str == "" {
		return ip.IsUnspecified()
	}
	for _, h := range hostIPs {
		if h.WithZone("").Unmap() == ip {
			return true
		}
	}
	return false
}

// sameSocketPath reports whether the bound path and the asked-for path
// name the same socket file.
func sameSocketPath(bound, asked string) bool {
	if bound == "" || strings.HasPrefix(bound, "@") {
		return false
	}
	b, err1 := filepath.Abs(bound)
	w, err2 := filepath.Abs(asked)
	if err1 == nil && err2 == nil && b == w {
		return true
	}
	bi, err1 := os.Stat(bound)
	wi, err2 := os.Stat(asked)
	return err1 == nil && err2 == nil && os.SameFile(bi, wi)
}

// inheritedSockets lists the sockets passed to this process for Inherited.
func inheritedSockets() []InheritedSocket {
	e := inheritedEnv()
	fds, err := e.fds(false)
	if err != nil {
		return nil
	}
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	out := make([]InheritedSocket, len(fds))
	for i, f := range fds {
		s := InheritedSocket{FD: f.fd, Name: f.name}
		switch by, taken := inherited.claimed[f.fd]; {
		case by == closedAfterReady:
			s.Closed = true
		case taken:
			s.TakenBy, s.Addr = by, SocketPath(inherited.addrs[f.fd])
		default:
			if info, err := inspectFD(f.fd); err == nil && stillPassed(f.fd) == nil {
				s.Addr = SocketPath(info.addr())
			}
		}
		out[i] = s
	}
	return out
}
