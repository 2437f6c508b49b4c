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
// child started before the first Listen inherits them; it changes nothing
// else, and leaves the environment alone.
func closeOnExecPassed() {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 || n > maxListenFDs {
		return
	}
	for fd := listenFDsStart; fd < listenFDsStart+n; fd++ {
		unix.CloseOnExec(fd)
	}
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

// listenSystemd serves the sockets a systemd Address selects: one socket
// as its native listener, several merged into one.
func listenSystemd(a Address, o *Options) (net.Listener, error) {
	e := inheritedEnv()
	all, err := e.fds(o.SDAcceptIgnoreEnvironment)
	if err != nil {
		fd := listenFDsStart
		if a.fd {
			fd = int(a.num)
		}
		return nil, fmt.Errorf("%w; the sd_accept_ignore_environment option (--sd-accept-ignore-environment) takes fd %d regardless", err, fd)
	}
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	var pick []sdFD
	switch {
	case a.fd:
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
		pick = []sdFD{f}
	case a.str == "":
		if len(all) > 1 && !o.SDAcceptIgnoreEnvironment {
			choose := "sd-listen:NAME"
			if e.names == nil {
				// Every one is "unknown": only its fd tells them apart.
				choose = fmt.Sprintf("fd://N (fd://%d to fd://%d)", listenFDsStart, listenFDsStart+len(all)-1)
			}
			return nil, fmt.Errorf("%d sockets were passed: %s; choose one with %s, or take all with sd-listen:*",
				len(all), namesOf(all), choose)
		}
		pick = all[:1]
	case a.str == sdAll:
		for _, f := range all {
			if _, taken := inherited.claimed[f.fd]; !taken {
				pick = append(pick, f)
			}
		}
		if len(pick) == 0 {
			return nil, fmt.Errorf("every socket passed was already taken: %s", namesOf(all))
		}
	default:
		for _, f := range all {
			if f.matches(a.str, e.names != nil) {
				pick = append(pick, f)
			}
		}
		if len(pick) == 0 {
			return nil, fmt.Errorf("no socket named %q was passed; the sockets passed are %s", a.str, namesOf(all))
		}
	}
	return claimLocked(pick, a, o)
}

// claimLocked checks every fd in pick and returns their listener: the
// native one for one fd, a merged one for several. Only if all of them
// can be served are they marked taken by a and closed (the listeners hold
// duplicates); otherwise nothing is taken and every fd stays open.
// inherited.mu must be held.
func claimLocked(pick []sdFD, a Address, o *Options) (net.Listener, error) {
	infos := make([]fdInfo, len(pick))
	for i, f := range pick {
		if by, taken := inherited.claimed[f.fd]; taken {
			return nil, fmt.Errorf("%v was already taken by an earlier Listen of %s; each inherited socket serves one listener", f, by)
		}
		info, err := inspectFD(f.fd)
		if err == nil {
			err = info.checkStream()
		}
		if err != nil {
			return nil, fmt.Errorf("%v: %w", f, err)
		}
		infos[i] = info
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
	for _, info := range infos {
		unix.Close(info.fd)
		inherited.claimed[info.fd] = a.String()
		inherited.addrs[info.fd] = info.addr()
	}
	forgetListenVars()
	return ln, nil
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
		ul.addr = &net.UnixAddr{Name: a.str, Net: "unix"}
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
	port := int(a.num)
	if a.kind == KindTCP && a.svc != "" {
		p, err := net.DefaultResolver.LookupPort(ctx, "tcp", a.svc)
		if err != nil {
			return nil, err
		}
		port = p
	}
	if a.kind == KindSystemd || a.kind == KindTCP && port == 0 {
		return nil, nil
	}
	var want []netip.Addr // for a TCP host name, its addresses
	if a.kind == KindTCP && a.str != "" {
		if ip, err := netip.ParseAddr(a.str); err == nil {
			want = []netip.Addr{ip}
		} else if want, err = net.DefaultResolver.LookupNetIP(ctx, "ip", a.str); err != nil {
			return nil, err
		}
	}
	fds, _ := e.fds(false)
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	for _, f := range fds {
		if _, taken := inherited.claimed[f.fd]; taken {
			continue
		}
		info, err := inspectFD(f.fd)
		if err != nil || !info.listening || info.typ != unix.SOCK_STREAM {
			continue
		}
		if boundTo(info.local, a, port, want) {
			return claimLocked([]sdFD{f}, a, o)
		}
	}
	return nil, nil
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
	if a.kind != KindTCP || boundPort != port {
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
			s.TakenBy, s.Addr = by, inherited.addrs[f.fd]
		default:
			if info, err := inspectFD(f.fd); err == nil {
				s.Addr = info.addr()
			}
		}
		out[i] = s
	}
	return out
}
