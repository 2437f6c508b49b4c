package anylisten

import (
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options tune how Listen opens a socket. A nil *Options and the zero
// Options mean the defaults, which are those of net.Listen: Listen with
// default Options gives the same socket net.Listen would.
//
// An option that does not apply to an address kind is ignored, so one
// Options value can serve a TCP and a UNIX address side by side. The
// exceptions guard against a silently wider access: the allow lists
// (UnixAllowUID, UnixAllowGID) are an error where they cannot be enforced,
// and the socket file's mode and owner (UnixListenChmod, UnixListenUID,
// UnixListenGID) are an error on an abstract name (no file), on a socket
// passed in for a path whose file has wider rights than they ask, and
// with a Windows named pipe and no NpipeSecurityDescriptor (the pipe would
// get Windows's default descriptor instead). Listen copies the Options and
// never modifies them (nor the lists).
//
// The field tags give the option's key in a JSON, YAML or TOML config file;
// RegisterFlags registers the same options as command-line flags with the
// names of the Rust crate tokio-listener.
type Options struct {
	// UnixListenUnlink removes a stale socket file at a UNIX socket path
	// before binding: one that is a socket and that nobody accepts on (a
	// connect probe is refused). A live server's socket, a regular file, a
	// directory and a symlink are never removed. Default false: a leftover
	// socket file is an error that names this option. UNIX paths only (of
	// stream, seqpacket and datagram sockets alike, as are the other
	// UnixListen options).
	UnixListenUnlink bool `json:"unix_listen_unlink,omitempty" yaml:"unix_listen_unlink,omitempty" toml:"unix_listen_unlink,omitempty"`

	// UnixListenChmod sets the mode of the socket file before it appears
	// at its path, so no client with fewer rights can ever connect. Default 0:
	// the mode bind gives (0777 less the umask). UNIX paths only; on
	// systems without POSIX file modes (Windows) a non-zero value is an
	// error wrapping errors.ErrUnsupported. A Windows named pipe takes
	// NpipeSecurityDescriptor instead (see there for the one case where
	// this option is an error with a pipe).
	UnixListenChmod UnixMode `json:"unix_listen_chmod,omitempty" yaml:"unix_listen_chmod,omitempty" toml:"unix_listen_chmod,omitempty"`

	// UnixListenUID and UnixListenGID set the numeric owner and group of the
	// socket file before it appears at its path. Default nil: the process's user
	// and group. UNIX paths only; on Windows an error wrapping
	// errors.ErrUnsupported.
	//
	// These two and UnixListenChmod never give silently wider access than
	// asked: on an abstract name, which has no file, they are an error
	// (use UnixAllowUID and UnixAllowGID there), and a socket passed in for
	// a UNIX path (by systemd, or a predecessor), which is used as it was
	// made, must have a mode with no bit beyond UnixListenChmod's and the
	// owner and group asked for, or Listen fails and says what to set
	// where it is made (SocketMode=, SocketUser=, SocketGroup=).
	UnixListenUID *uint32 `json:"unix_listen_uid,omitempty" yaml:"unix_listen_uid,omitempty" toml:"unix_listen_uid,omitempty"`
	UnixListenGID *uint32 `json:"unix_listen_gid,omitempty" yaml:"unix_listen_gid,omitempty" toml:"unix_listen_gid,omitempty"`

	// UnixAllowUID and UnixAllowGID admit a UNIX connection only if its
	// peer is on one of the lists: its user id in UnixAllowUID, or its
	// group or one of its supplementary groups in UnixAllowGID. Default
	// nil (both): no check, whoever can connect is served. A list that is
	// set but empty (a config file's "unix_allow_uid": []) admits nobody
	// by it, so that a list a template left empty closes the socket
	// rather than open it to all. Root is admitted only if 0 is listed.
	//
	// The peer is the process that called connect(), with the
	// credentials it had at that time, as the kernel recorded them (see
	// Credentials): a peer that changes its uid later, or passes its fd
	// to another process, keeps them. A connection the lists refuse, or
	// whose credentials cannot be read, is closed inside Accept before
	// the server sees it or reads a byte of it, UnixRefused is told, and
	// Accept goes on to the next one; connections the lists admit are
	// returned as ever, *net.UnixConn. The check comes after connect, so
	// a refused peer can still connect and take a place in the listen
	// backlog until Accept closes it: keep strangers from connecting at
	// all with the socket file's mode (UnixListenChmod). Supplementary
	// groups count where the system reports them (Linux 4.13 and later;
	// macOS, FreeBSD and DragonFly up to 15 of them); on OpenBSD, NetBSD,
	// Solaris and illumos only the effective group does. On Linux a peer
	// whose uid or gid does not map into this process's user namespace is
	// reported as the overflow id 65534 (nobody, nogroup), so listing
	// 65534 admits every such peer.
	//
	// They apply to UNIX paths, unixpacket: and abstract names (@name: an
	// abstract socket has no file permissions, so the lists are its only
	// access control), and to inherited UNIX sockets (sd-listen, fd://,
	// adopted and handed-over sockets, inetd's listening stdin). For the
	// one connection of inetd or systemd's Accept=yes over a UNIX socket,
	// Listen checks its peer: a refused one is told to UnixRefused, its
	// connection is shut down (the fds stay open, as after any failed
	// Listen, but nothing more is read from it or written to it), and
	// Listen fails with an error that names its uid.
	//
	// Unlike the other options they are never ignored, so that a list
	// that cannot be enforced does not pass unnoticed: Listen of an
	// address whose peers have no credentials (TCP, vsock, an inherited
	// TCP socket, inetd over pipes or over one end of a socket pair, whose
	// peer is the program that made the pair) is an error naming the
	// option, and so is ListenPacket; on systems without peer
	// credentials (Windows, AIX) the error wraps errors.ErrUnsupported.
	// With ListenAll, which gives every address the same Options, listen
	// on TCP addresses with other Options. 4294967295 ((uid_t)-1) is not
	// a valid id. Linux, macOS, the BSDs, Solaris and illumos.
	// (JSON: omitzero, so that a set but empty list is written [] and stays
	// a list that admits nobody; with YAML and TOML encoders that omit
	// every empty slice, write such a list back by hand.)
	UnixAllowUID []uint32 `json:"unix_allow_uid,omitzero" yaml:"unix_allow_uid,omitempty" toml:"unix_allow_uid,omitempty"`
	UnixAllowGID []uint32 `json:"unix_allow_gid,omitzero" yaml:"unix_allow_gid,omitempty" toml:"unix_allow_gid,omitempty"`

	// UnixRefused, if not nil, is called for each connection that
	// UnixAllowUID and UnixAllowGID refuse, once it is shut down, with
	// what is known of it (see Refusal): the peer's credentials, or the
	// error that kept them from being read, and the socket it connected
	// to. It is called from inside Accept (for the one connection of inetd
	// and Accept=yes, from inside Listen), and from as many goroutines at
	// once as call Accept, so it must return quickly: log (at a limited
	// rate: a local user can connect in a loop), count. Default nil. Not a
	// config key or a flag.
	UnixRefused func(Refusal) `json:"-" yaml:"-" toml:"-"`

	// SDAcceptIgnoreEnvironment makes systemd addresses ignore LISTEN_PID
	// and LISTEN_FDS and use file descriptor 3 (or the fd named by fd://N)
	// unconditionally. Default false. systemd addresses only.
	SDAcceptIgnoreEnvironment bool `json:"sd_accept_ignore_environment,omitempty" yaml:"sd_accept_ignore_environment,omitempty" toml:"sd_accept_ignore_environment,omitempty"`

	// NoAdopt turns off adoption: a TCP or UNIX address binds a new socket
	// even when one for it was passed in (by systemd, bound to exactly
	// that address, or by a predecessor's Upgrader), and leaves the passed
	// sockets and the LISTEN_* variables alone. Default false: Listen
	// adopts such a socket. systemd addresses (sd-listen, fd://) are not
	// affected; they always take passed sockets.
	NoAdopt bool `json:"no_adopt,omitempty" yaml:"no_adopt,omitempty" toml:"no_adopt,omitempty"`

	// TCPKeepalive sets SO_KEEPALIVE and its timers on every accepted TCP
	// connection, also of an inherited TCP socket, or turns keep-alive off
	// (TCPKeepalive{Off: true}, text "off"). Default nil: Go's default,
	// keep-alive on with a 15 s idle time and the OS's count and interval.
	// TCP only.
	TCPKeepalive *TCPKeepalive `json:"tcp_keepalive,omitempty" yaml:"tcp_keepalive,omitempty" toml:"tcp_keepalive,omitempty"`

	// TCPReusePort sets SO_REUSEPORT on the listening socket, so that
	// several processes can listen on one port and the kernel spreads
	// connections among them (for ListenPacket, on the UDP socket, so that
	// the kernel spreads datagrams). Default false. TCP and UDP only (never
	// set on UNIX sockets, which Linux 6.12 and newer refuse); an error
	// wrapping errors.ErrUnsupported on systems without SO_REUSEPORT
	// (Windows, Solaris).
	TCPReusePort bool `json:"tcp_reuse_port,omitempty" yaml:"tcp_reuse_port,omitempty" toml:"tcp_reuse_port,omitempty"`

	// RecvBufferSize and SendBufferSize set SO_RCVBUF and SO_SNDBUF, in
	// bytes, for every accepted connection (Linux doubles the value and caps
	// it at net.core.rmem_max / wmem_max). Default 0: the OS's sizes. For
	// TCP they are set on the listening socket, before listen, so that
	// accepted connections inherit them and the window scale fits (for an
	// inherited TCP socket, on the listening socket when Listen takes it);
	// for UNIX and abstract sockets on each accepted connection; for
	// ListenPacket's datagram sockets (UDP, UNIX, inherited) on the socket
	// itself; for a Windows named pipe they are the pipe's input and
	// output buffer sizes (go-winio's PipeConfig.InputBufferSize and
	// OutputBufferSize, which Windows takes as quotas and may round up).
	// Not used for inetd's stdin and stdout. Outside Unix, an error
	// wrapping errors.ErrUnsupported for sockets (named pipes on Windows
	// take them).
	RecvBufferSize int `json:"recv_buffer_size,omitempty" yaml:"recv_buffer_size,omitempty" toml:"recv_buffer_size,omitempty"`
	SendBufferSize int `json:"send_buffer_size,omitempty" yaml:"send_buffer_size,omitempty" toml:"send_buffer_size,omitempty"`

	// TCPOnlyV6 sets IPV6_V6ONLY on an IPv6 listening socket (and on
	// ListenPacket's IPv6 UDP socket), so that it takes no IPv4
	// connections or datagrams; :PORT then listens on IPv6 only. Default
	// false: [::]:PORT and :PORT are dual stack. Ignored for IPv4
	// addresses; an error wrapping errors.ErrUnsupported outside Unix.
	TCPOnlyV6 bool `json:"tcp_only_v6,omitempty" yaml:"tcp_only_v6,omitempty" toml:"tcp_only_v6,omitempty"`

	// TCPListenBacklog is the listen() backlog: how many connections the
	// kernel queues before Accept takes them. Default 0: the kernel's
	// maximum (net.core.somaxconn on Linux), as net.Listen uses. The kernel
	// caps larger values. TCP only, and not for inherited sockets, whose
	// backlog their creator chose; an error wrapping errors.ErrUnsupported
	// outside Unix.
	TCPListenBacklog int `json:"tcp_listen_backlog,omitempty" yaml:"tcp_listen_backlog,omitempty" toml:"tcp_listen_backlog,omitempty"`

	// TCPKillPort is a convenience for development: when the port is in
	// use, Listen sends SIGTERM to the processes that hold the listening
	// socket, waits up to 5 s for them to let go of the port, and binds
	// it. It never sends SIGKILL. It refuses, with an error that says
	// why, where it finds no holder, where a holder belongs to another
	// user and this process is not root, and where a holder is this
	// process itself or init (pid 1); that error, and the one for a port
	// still in use after the wait, wraps EADDRINUSE. Default false: a
	// port in use is an error that names its holder where the system
	// shows it (Linux: "bind: address already in use (held by pid 1234
	// (hello))"). TCP only, and only where a socket is bound (not for an
	// adopted one). Linux only (it reads /proc); elsewhere an error
	// wrapping errors.ErrUnsupported. In production, restart with an
	// Upgrader or a systemd socket unit instead: they hand the listening
	// socket over, so no connection is refused while the new process
	// starts.
	TCPKillPort bool `json:"tcp_kill_port,omitempty" yaml:"tcp_kill_port,omitempty" toml:"tcp_kill_port,omitempty"`

	// NpipeSecurityDescriptor is the security descriptor of a Windows
	// named pipe in SDDL: who may connect, the pipe's counterpart of
	// UnixListenChmod, UnixListenUID and UnixListenGID. "D:P(A;;GA;;;OW)"
	// admits the pipe's owner (the server's account) only, as mode 0600
	// does; Docker's "D:P(A;;GA;;;BA)(A;;GA;;;SY)" admits the
	// Administrators and LocalSystem. The server's own account needs GA:
	// go-winio creates each further instance of the pipe (one per Accept)
	// under this descriptor, so without it Accept fails with "Access is
	// denied". A client needs read and write (GRGW; Dial asks for both),
	// and write access includes FILE_CREATE_PIPE_INSTANCE, so an account
	// that may connect may also create instances of the pipe: grant it to
	// accounts trusted like the server. "D:NO_ACCESS_CONTROL" lets anybody
	// connect. Default "": Windows's default for a named pipe, full control
	// for LocalSystem, the Administrators and the server's account and read
	// access for Everyone and Anonymous (enough to connect and read, not
	// to write). Named pipes only, ignored for other addresses; with it,
	// the UNIX socket file options are ignored for a pipe, without it they
	// are an error there (see Options). Windows parses it when Listen
	// creates the pipe; Validate checks only its outline (a component O:,
	// G:, D: or S: first, balanced parentheses, no control characters),
	// so that a config checked on another platform catches gross mistakes.
	// Outside Windows a named pipe is an error wrapping
	// errors.ErrUnsupported whatever the options.
	NpipeSecurityDescriptor string `json:"npipe_security_descriptor,omitempty" yaml:"npipe_security_descriptor,omitempty" toml:"npipe_security_descriptor,omitempty"`
}

// Validate checks the fields that Go's types let hold nonsense (a
// negative buffer size, a mode beyond 0777, ...), as Listen does first;
// a config loader can call it to report a bad file early. Errors name the
// option by its config key.
func (o *Options) Validate() error {
	for _, f := range [...]struct {
		name string
		v    int
	}{
		{"recv_buffer_size", o.RecvBufferSize},
		{"send_buffer_size", o.SendBufferSize},
		{"tcp_listen_backlog", o.TCPListenBacklog},
	} {
		if f.v < 0 || f.v > math.MaxInt32 {
			return fmt.Errorf("anylisten: option %s is %d; want 0 (the OS default) to %d", f.name, f.v, math.MaxInt32)
		}
	}
	if o.UnixListenChmod > 0o777 {
		return fmt.Errorf("anylisten: option unix_listen_chmod is %#o; want permission bits only (at most 0777)", uint32(o.UnixListenChmod))
	}
	for _, id := range [...]struct {
		name string
		v    *uint32
	}{{"unix_listen_uid", o.UnixListenUID}, {"unix_listen_gid", o.UnixListenGID}} {
		if id.v != nil && *id.v == math.MaxUint32 {
			return fmt.Errorf("anylisten: option %s is %d, which chown reads as \"no change\"; leave it unset instead", id.name, *id.v)
		}
	}
	for _, l := range [...]struct {
		name, what string
		ids        []uint32
	}{{"unix_allow_uid", "user", o.UnixAllowUID}, {"unix_allow_gid", "group", o.UnixAllowGID}} {
		if slices.Contains(l.ids, math.MaxUint32) {
			return fmt.Errorf("anylisten: option %s lists %d, which is (%s_t)-1, not a %s id; want ids 0 to %d",
				l.name, uint32(math.MaxUint32), l.what[:1]+"id", l.what, uint32(math.MaxUint32-1))
		}
	}
	if o.TCPKeepalive != nil {
		if err := o.TCPKeepalive.validate(); err != nil {
			return fmt.Errorf("anylisten: option tcp_keepalive: %w", err)
		}
	}
	if o.NpipeSecurityDescriptor != "" {
		if err := checkSDDL(o.NpipeSecurityDescriptor); err != nil {
			return fmt.Errorf("anylisten: option npipe_security_descriptor %q: %w", o.NpipeSecurityDescriptor, err)
		}
	}
	return nil
}

// RegisterFlags registers every option in fs (flag.CommandLine if fs is
// nil) as a flag that sets the field of o, with the names tokio-listener
// uses where it has the option:
//
//	--unix-listen-unlink, --unix-listen-chmod MODE, --unix-listen-uid UID,
//	--unix-listen-gid GID, --unix-allow-uid UID[,UID...],
//	--unix-allow-gid GID[,GID...], --sd-accept-ignore-environment,
//	--no-adopt, --tcp-keepalive T:C:I|off, --tcp-reuse-port,
//	--recv-buffer-size BYTES, --send-buffer-size BYTES, --tcp-only-v6,
//	--tcp-listen-backlog N, --tcp-kill-port, --npipe-security-descriptor SDDL
//
// The flags' defaults are o's current values. --unix-allow-uid and
// --unix-allow-gid take decimal ids separated by commas and may be
// repeated: the first use replaces the default list, and each further one
// appends to it. Call it before fs.Parse; with
// github.com/spf13/pflag, register into a flag.FlagSet and add that with
// pflag's AddGoFlagSet.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	if fs == nil {
		fs = flag.CommandLine
	}
	fs.BoolVar(&o.UnixListenUnlink, "unix-listen-unlink", o.UnixListenUnlink,
		"remove a stale UNIX socket file (a socket nobody accepts on) before binding to its path; never removes anything else")
	fs.Var(&o.UnixListenChmod, "unix-listen-chmod",
		"set the mode of the newly bound UNIX socket file to `MODE`: owner (0600), group (0660), everybody (0666) or octal like 0640; applied before listen (default: 0777 less the umask)")
	fs.Var(uidFlag{&o.UnixListenUID}, "unix-listen-uid",
		"change the owner of the newly bound UNIX socket file to this numeric `UID` (default: the process's user)")
	fs.Var(uidFlag{&o.UnixListenGID}, "unix-listen-gid",
		"change the group of the newly bound UNIX socket file to this numeric `GID` (default: the process's group)")
	fs.Var(&idListFlag{p: &o.UnixAllowUID, what: "user"}, "unix-allow-uid",
		"serve a UNIX socket connection only if its peer's user id is one of `UID[,UID...]` (or its group is allowed by --unix-allow-gid); "+
			"repeatable; others are closed unread (unset: no check)")
	fs.Var(&idListFlag{p: &o.UnixAllowGID, what: "group"}, "unix-allow-gid",
		"serve a UNIX socket connection only if its peer's group or one of its supplementary groups is one of `GID[,GID...]` "+
			"(or its user is allowed by --unix-allow-uid); repeatable; others are closed unread (unset: no check)")
	fs.BoolVar(&o.SDAcceptIgnoreEnvironment, "sd-accept-ignore-environment", o.SDAcceptIgnoreEnvironment,
		"ignore LISTEN_PID and LISTEN_FDS and use file descriptor 3 unconditionally for sd-listen addresses")
	fs.BoolVar(&o.NoAdopt, "no-adopt", o.NoAdopt,
		"bind TCP and UNIX addresses anew even when systemd or a predecessor passed a socket for them (sd-listen addresses still take passed sockets)")
	fs.Var(keepaliveFlag{&o.TCPKeepalive}, "tcp-keepalive",
		"set TCP keep-alive on each accepted connection: `T:C:I`, a colon-separated time_ms:count:interval_ms, "+
			"each optional (60000, :3:, ::5000; empty: on with the OS's timers), or off (default: Go's, on with 15 s idle time)")
	fs.BoolVar(&o.TCPReusePort, "tcp-reuse-port", o.TCPReusePort,
		"set SO_REUSEPORT, so that several processes can listen on the same port (TCP or UDP), spread by the kernel")
	fs.IntVar(&o.RecvBufferSize, "recv-buffer-size", o.RecvBufferSize,
		"set SO_RCVBUF of accepted connections (of the socket itself for datagrams; a named pipe's input buffer) to `BYTES` (default: the OS's)")
	fs.IntVar(&o.SendBufferSize, "send-buffer-size", o.SendBufferSize,
		"set SO_SNDBUF of accepted connections (of the socket itself for datagrams; a named pipe's output buffer) to `BYTES` (default: the OS's)")
	fs.BoolVar(&o.TCPOnlyV6, "tcp-only-v6", o.TCPOnlyV6,
		"set IPV6_V6ONLY, so that an IPv6 socket takes no IPv4 connections or datagrams")
	fs.IntVar(&o.TCPListenBacklog, "tcp-listen-backlog", o.TCPListenBacklog,
		"maximum number of pending unaccepted TCP connections, `N` (default: the kernel's maximum, somaxconn)")
	fs.BoolVar(&o.TCPKillPort, "tcp-kill-port", o.TCPKillPort,
		"for development: if the TCP port is in use, send SIGTERM to the process that holds it, wait up to 5 s, then bind (Linux; never SIGKILL; another user's process only when running as root)")
	fs.StringVar(&o.NpipeSecurityDescriptor, "npipe-security-descriptor", o.NpipeSecurityDescriptor,
		"who may connect to a Windows named pipe: a security descriptor in `SDDL`, like D:P(A;;GA;;;OW) for the server's account only (default: Windows's, which lets Everyone connect to read)")
}

// UnixMode is the permission bits of a UNIX socket file: who may connect.
// Its text form is owner (0600), group (0660), everybody (0666), or an
// octal number like 0640 (0o640 and 640 work too); the words are
// case-insensitive. In TOML an octal integer (0o660) works too. The zero
// UnixMode means "leave the mode bind gives".
type UnixMode uint32

// ParseUnixMode parses the text form of a UnixMode.
func ParseUnixMode(s string) (UnixMode, error) {
	switch {
	case equalFold(s, "owner"):
		return 0o600, nil
	case equalFold(s, "group"):
		return 0o660, nil
	case equalFold(s, "everybody"):
		return 0o666, nil
	}
	digits := s
	if len(digits) > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O') {
		digits = digits[2:]
	}
	m, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || digits == "" || digits[0] == '+' || m > 0o777 {
		return 0, fmt.Errorf("anylisten: invalid UNIX socket mode %q: want owner, group, everybody or octal permission bits 0001 to 0777, like 0660", s)
	}
	if m == 0 {
		return 0, fmt.Errorf("anylisten: invalid UNIX socket mode %q: mode 0 lets nobody connect; leave the option unset to keep the mode bind gives", s)
	}
	return UnixMode(m), nil
}

// String returns owner, group or everybody for 0600, 0660 and 0666, the
// empty string for 0, and four octal digits like 0640 otherwise.
func (m UnixMode) String() string {
	switch m {
	case 0:
		return ""
	case 0o600:
		return "owner"
	case 0o660:
		return "group"
	case 0o666:
		return "everybody"
	}
	s := strconv.FormatUint(uint64(m), 8)
	return strings.Repeat("0", max(0, 4-len(s))) + s
}

// MarshalText implements encoding.TextMarshaler with String.
func (m UnixMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseUnixMode;
// empty text gives the zero UnixMode.
func (m *UnixMode) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*m = 0
		return nil
	}
	v, err := ParseUnixMode(string(text))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Set implements flag.Value with UnmarshalText.
func (m *UnixMode) Set(s string) error { return m.UnmarshalText([]byte(s)) }

// UnmarshalTOML takes a string as UnmarshalText does, or an integer that
// is the mode itself, so that TOML's octal literal 0o660 means 0660, for
// github.com/BurntSushi/toml (which would otherwise pass the integer's
// decimal digits, 432, to UnmarshalText, to be read as octal 0432). A
// decimal integer like 660 is out of range and an error.
func (m *UnixMode) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		return m.UnmarshalText([]byte(v))
	case int64:
		if v < 1 || v > 0o777 {
			return fmt.Errorf("anylisten: invalid UNIX socket mode %d (octal %#o): want permission bits 0o001 to 0o777, "+
				"as a TOML octal integer like 0o660 or a string like \"group\" or \"0660\"", v, v)
		}
		*m = UnixMode(v)
		return nil
	}
	return fmt.Errorf("anylisten: invalid UNIX socket mode %v: want a string like \"group\" or \"0660\", or a TOML octal integer like 0o660", v)
}

// TCPKeepalive is the --tcp-keepalive option: the keep-alive timers of
// accepted TCP connections. A zero field means the OS's default for that
// timer (so "0" and "0:0:0", like "", are keep-alive on with the OS's
// timers, not off: that is "off"). Linux counts whole seconds (durations are rounded up) and caps
// Idle and Interval at 32767 s and Count at 127.
//
// Its text form, as in tokio-listener, is time_ms:count:interval_ms with
// each part optional: "60000" sets Idle to one minute, ":3:" the count,
// "::5000" the interval, and "" turns keep-alive on with the OS's timers.
type TCPKeepalive struct {
	Off      bool          // keep-alive off (text "off"); the timers must then be zero
	Idle     time.Duration // time a connection is idle before the first probe
	Count    int           // unanswered probes before the connection is dropped
	Interval time.Duration // time between probes
}

const (
	maxKeepaliveSecs  = 32767
	maxKeepaliveCount = 127
)

// ParseTCPKeepalive parses the text form of a TCPKeepalive.
func ParseTCPKeepalive(s string) (TCPKeepalive, error) {
	if equalFold(s, "off") {
		return TCPKeepalive{Off: true}, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return TCPKeepalive{}, fmt.Errorf("anylisten: invalid TCP keepalive %q: want time_ms:count:interval_ms, at most three parts, or off", s)
	}
	var nums [3]uint64
	for i, p := range parts {
		if p == "" {
			continue
		}
		what := [...]string{"time", "count", "interval"}[i]
		n, err := strconv.ParseUint(p, 10, 63)
		if err != nil {
			return TCPKeepalive{}, fmt.Errorf("anylisten: invalid TCP keepalive %q: failed to parse %s %q as a number", s, what, p)
		}
		nums[i] = n
	}
	// Cap before converting, so that huge numbers cannot overflow.
	k := TCPKeepalive{
		Idle:     time.Duration(min(nums[0], math.MaxInt32)) * time.Millisecond,
		Count:    int(min(nums[1], math.MaxInt32)),
		Interval: time.Duration(min(nums[2], math.MaxInt32)) * time.Millisecond,
	}
	if err := k.validate(); err != nil {
		return TCPKeepalive{}, fmt.Errorf("anylisten: invalid TCP keepalive %q: %w", s, err)
	}
	return k, nil
}

func (k TCPKeepalive) validate() error {
	switch {
	case k.Off && (k.Idle != 0 || k.Count != 0 || k.Interval != 0):
		return fmt.Errorf("keep-alive is off, yet timers are set (%v:%d:%v); set either", k.Idle, k.Count, k.Interval)
	case k.Idle < 0 || k.Idle > maxKeepaliveSecs*time.Second:
		return fmt.Errorf("time %v is out of range (0 to %d s)", k.Idle, maxKeepaliveSecs)
	case k.Count < 0 || k.Count > maxKeepaliveCount:
		return fmt.Errorf("count %d is out of range (0 to %d)", k.Count, maxKeepaliveCount)
	case k.Interval < 0 || k.Interval > maxKeepaliveSecs*time.Second:
		return fmt.Errorf("interval %v is out of range (0 to %d s)", k.Interval, maxKeepaliveSecs)
	}
	return nil
}

// String returns the text form time_ms:count:interval_ms, leaving out zero
// parts and trailing colons ("" when every part is zero), or "off".
func (k TCPKeepalive) String() string {
	if k.Off {
		return "off"
	}
	part := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	s := part(k.Idle.Milliseconds()) + ":" + part(int64(k.Count)) + ":" + part(k.Interval.Milliseconds())
	return strings.TrimRight(s, ":")
}

// MarshalText implements encoding.TextMarshaler with String.
func (k TCPKeepalive) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseTCPKeepalive.
func (k *TCPKeepalive) UnmarshalText(text []byte) error {
	v, err := ParseTCPKeepalive(string(text))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// keepaliveFlag is the flag.Value of Options.TCPKeepalive.
type keepaliveFlag struct{ p **TCPKeepalive }

func (f keepaliveFlag) String() string {
	if f.p == nil || *f.p == nil {
		return ""
	}
	return (*f.p).String()
}

func (f keepaliveFlag) Set(s string) error {
	k, err := ParseTCPKeepalive(s)
	if err != nil {
		return err
	}
	*f.p = &k
	return nil
}

// uidFlag is the flag.Value of Options.UnixListenUID and UnixListenGID.
type uidFlag struct{ p **uint32 }

func (f uidFlag) String() string {
	if f.p == nil || *f.p == nil {
		return ""
	}
	return strconv.FormatUint(uint64(**f.p), 10)
}

func (f uidFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == math.MaxUint32 {
		return fmt.Errorf("anylisten: invalid user or group id %q: want a decimal number 0 to %d", s, uint32(math.MaxUint32-1))
	}
	id := uint32(n)
	*f.p = &id
	return nil
}
