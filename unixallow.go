package anylisten

import (
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// The allow lists of UNIX connections (Options.UnixAllowUID and
// UnixAllowGID): a UnixListener screens each connection it accepts, Listen
// the one connection of inetd and systemd's Accept=yes, and Listen and
// ListenPacket refuse the lists where they cannot be enforced.

// Refusal is a UNIX connection that the allow lists (Options.UnixAllowUID
// and UnixAllowGID) refused, as Options.UnixRefused is told of it.
type Refusal struct {
	// Peer is the credentials of the process that connected (zero where
	// they could not be read).
	Peer Credentials
	// Err is why the credentials could not be read, or nil.
	Err error
	// Local is the address of the socket the peer connected to: the
	// socket path as given to Listen, the @name, or what an inherited
	// socket is bound to; nil where it cannot be told.
	Local net.Addr
}

// String describes r for a log: "refused a connection to @app from uid
// 65534 (gid 65534, groups [], pid 1234): not on the allow lists", or
// that its peer's credentials could not be read, and why.
func (r Refusal) String() string {
	to := ""
	if r.Local != nil {
		to = " to " + r.Local.String()
	}
	if r.Err != nil {
		return fmt.Sprintf("refused a connection%s: its peer's credentials could not be read: %v", to, r.Err)
	}
	p := r.Peer
	return fmt.Sprintf("refused a connection%s from uid %d (gid %d, groups %v, pid %d): not on the allow lists", to, p.UID, p.GID, p.Groups, p.PID)
}

// allowList is the allow lists of a listener, nil where there are none.
type allowList struct {
	uids, gids []uint32 // sorted copies of the options' lists
	refused    func(Refusal)
}

// newAllowList returns the allow lists of o, or nil if it has none.
func newAllowList(o *Options) *allowList {
	if !o.allowing() {
		return nil
	}
	return &allowList{uids: sortedIDs(o.UnixAllowUID), gids: sortedIDs(o.UnixAllowGID), refused: o.UnixRefused}
}

func sortedIDs(ids []uint32) []uint32 {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

// allowing reports whether o has an allow list: a list that is set, even
// to nothing (a config file's "unix_allow_uid": [], which admits nobody
// then, rather than everybody).
func (o *Options) allowing() bool { return o.UnixAllowUID != nil || o.UnixAllowGID != nil }

// allows reports whether the lists admit a peer with the credentials c:
// its uid is in uids, or its group or one of its groups in gids.
func (a *allowList) allows(c Credentials) bool {
	if has(a.uids, c.UID) || has(a.gids, c.GID) {
		return true
	}
	for _, g := range c.Groups {
		if has(a.gids, g) {
			return true
		}
	}
	return false
}

func has(sorted []uint32, id uint32) bool {
	_, found := slices.BinarySearch(sorted, id)
	return found
}

// screen returns nil if the lists admit the peer of the connection c,
// accepted on the socket at local. Otherwise, and when its credentials
// cannot be read, it closes c and returns refuse's error.
func (a *allowList) screen(c *net.UnixConn, local net.Addr) error {
	cred, err := unixConnCredentials(c)
	if err == nil && a.allows(cred) {
		return nil
	}
	c.Close()
	return a.refuse(Refusal{Peer: cred, Err: err, Local: local})
}

// refuse tells the UnixRefused hook of a peer the lists refused, and
// returns a *refusedError.
func (a *allowList) refuse(r Refusal) error {
	if a.refused != nil {
		a.refused(r)
	}
	return &refusedError{cred: r.Peer, err: r.Err, uid: a.uids != nil, gid: a.gids != nil}
}

// refusedError is a connection the allow lists refused.
type refusedError struct {
	cred     Credentials
	err      error // why the credentials could not be read, or nil
	uid, gid bool  // which lists there are
}

func (e *refusedError) Error() string {
	option := allowOption(e.uid, e.gid)
	if e.err != nil {
		return fmt.Sprintf("the peer's credentials could not be read (%v), so %s refused its connection and shut it down", e.err, option)
	}
	c := e.cred
	return fmt.Sprintf("the peer, uid %d (gid %d, groups %v, pid %d), is not allowed by %s: its connection was shut down", c.UID, c.GID, c.Groups, c.PID, option)
}

func (e *refusedError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrPeerRefused) hold.
func (e *refusedError) Is(target error) bool { return target == ErrPeerRefused }

// ErrPeerRefused is what the error of Listen wraps when the one connection
// of inetd or systemd's Accept=yes comes from a peer the allow lists
// (Options.UnixAllowUID, UnixAllowGID) refuse: errors.Is(err,
// ErrPeerRefused) tells a stranger's connect, which the program may end
// on quietly, from a failure to serve.
var ErrPeerRefused = errors.New("anylisten: the peer is not on the allow lists")

// isRefused reports whether err, as acceptOne returns it, says that the
// allow lists refused the connection. (A type assertion, not errors.As,
// whose target would cost Accept an allocation.)
func isRefused(err error) bool {
	_, refused := err.(*refusedError)
	return refused
}

// allowOption names the allow lists that are set, as the errors of the
// other options name them: by key and flag.
func allowOption(uid, gid bool) string {
	switch {
	case uid && gid:
		return "the unix_allow_uid and unix_allow_gid options (--unix-allow-uid, --unix-allow-gid)"
	case gid:
		return "the unix_allow_gid option (--unix-allow-gid)"
	}
	return "the unix_allow_uid option (--unix-allow-uid)"
}

// allowOption names o's allow lists.
func (o *Options) allowOption() string {
	return allowOption(o.UnixAllowUID != nil, o.UnixAllowGID != nil)
}

// unenforceable is the error for o's allow lists on a socket whose peers
// have no credentials; why says so, as "a TCP peer has no uid".
func (o *Options) unenforceable(why string) error {
	lists, option := "list", "option"
	if o.UnixAllowUID != nil && o.UnixAllowGID != nil {
		lists, option = "lists", "options"
	}
	return fmt.Errorf("%s: %s, so the %s cannot be enforced: listen on it without the %s", o.allowOption(), why, lists, option)
}

// refuseAllow says why o's allow lists cannot be enforced on addr, or nil.
// The address kind decides it for TCP and vsock, before anything is
// opened; systemd and inetd sockets are looked at when Listen takes them
// (fdInfo.checkAllow).
func refuseAllow(addr Address, o *Options) error {
	if !o.allowing() {
		return nil
	}
	switch addr.kind {
	case KindTCP:
		return o.unenforceable("a TCP peer has no uid")
	case KindVsock:
		return o.unenforceable("a vsock peer has no uid")
	case KindNpipe:
		return o.unenforceable("a named pipe's peer is not checked by uid; say who may connect with npipe_security_descriptor")
	}
	if !peerCredentialsSupported {
		return fmt.Errorf("%s needs the peer credentials of UNIX connections, which %s does not give: %w",
			o.allowOption(), runtime.GOOS, errors.ErrUnsupported)
	}
	return nil
}

// refuseNoFile says why the socket-file options of o (mode, owner) cannot
// do their job on addr, or nil: an abstract name has no file, so anybody
// in the network namespace may connect to it, and ignoring the options
// would give it wider access than asked for, silently.
func refuseNoFile(addr Address, o *Options) error {
	if addr.kind != KindAbstract || o.UnixListenChmod == 0 && o.UnixListenUID == nil && o.UnixListenGID == nil {
		return nil
	}
	return errors.New("an abstract socket has no file, so the unix_listen_chmod, unix_listen_uid and unix_listen_gid options " +
		"(--unix-listen-chmod, --unix-listen-uid, --unix-listen-gid) cannot restrict who connects to it: " +
		"admit peers with unix_allow_uid or unix_allow_gid (--unix-allow-uid, --unix-allow-gid), or listen on a socket path")
}

// refusePacketAllow is ListenPacket's error for o's allow lists, or nil.
func refusePacketAllow(o *Options) error {
	if !o.allowing() {
		return nil
	}
	return o.unenforceable("a datagram socket has no connection whose peer could be checked")
}

// idListFlag is the flag.Value of Options.UnixAllowUID and UnixAllowGID:
// UID[,UID...], repeatable. The first Set replaces the ids the list held
// when the flag was registered (its default, from a config file say) and
// every later one appends, as AddressList.Flag does for --listen. A Set
// whose text does not parse changes nothing.
type idListFlag struct {
	p    *[]uint32 // nil only in the zero value flag.PrintDefaults makes
	what string    // "user" or "group"
	set  bool      // a Set has replaced the default
}

func (f *idListFlag) String() string {
	if f.p == nil {
		return ""
	}
	return formatIDs(*f.p)
}

func (f *idListFlag) Set(s string) error {
	ids, err := parseIDs(s, f.what)
	if err != nil {
		return err
	}
	if !f.set {
		// A new array: the default's stays as the caller made it.
		*f.p, f.set = ids, true
		return nil
	}
	*f.p = append(*f.p, ids...)
	return nil
}

// IsCumulative tells kingpin, which asks a flag's value, that the flag
// may be given more than once.
func (*idListFlag) IsCumulative() bool { return true }

// parseIDs parses a comma-separated list of decimal user (what "user") or
// group ids.
func parseIDs(s, what string) ([]uint32, error) {
	var ids []uint32
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part) // "0, 1000" as written in prose
		n, err := strconv.ParseUint(part, 10, 32)
		if err != nil || n == math.MaxUint32 {
			why := fmt.Sprintf("%q is not a decimal %s id 0 to %d", part, what, uint32(math.MaxUint32-1))
			switch {
			case part == "":
				why = fmt.Sprintf("id %d is empty", i+1)
			case err != nil && !strings.ContainsAny(part[:1], "0123456789+-"):
				why += fmt.Sprintf(" (for a name, give its number: id -%c %s)", what[0], part)
			}
			return nil, fmt.Errorf("anylisten: invalid %s id list %q: %s; want ids separated by commas, like 0,1000", what, s, why)
		}
		ids = append(ids, uint32(n))
	}
	return ids, nil
}

// formatIDs is the text form of an id list: decimal ids separated by
// commas.
func formatIDs(ids []uint32) string {
	var b []byte
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(id), 10)
	}
	return string(b)
}
