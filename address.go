package anylisten

import (
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the kind of socket an Address names.
type Kind uint8

// The kinds of Address. The zero Kind belongs to the zero Address only.
const (
	KindTCP      Kind = iota + 1 // TCP host and port: 127.0.0.1:8080, :8080, [::1]:80, localhost:8080
	KindUnix                     // UNIX socket path: /run/app.sock, ./app.sock, unix:app.sock
	KindAbstract                 // Linux abstract UNIX socket: @name
	KindInetd                    // one connection on stdin/stdout: inetd
	KindSystemd                  // sockets passed by a service manager: sd-listen, sd-listen:NAME, sd-listen:*, fd://N
	KindVsock                    // AF_VSOCK: vsock:CID:PORT
	KindUDP                      // UDP host and port, for ListenPacket only: udp://127.0.0.1:53
	KindNpipe                    // Windows named pipe: \\.\pipe\NAME, npipe://NAME
)

var kindNames = [...]string{
	KindTCP:      "tcp",
	KindUnix:     "unix",
	KindAbstract: "abstract",
	KindInetd:    "inetd",
	KindSystemd:  "systemd",
	KindVsock:    "vsock",
	KindUDP:      "udp",
	KindNpipe:    "npipe",
}

// String returns the lower-case name of k: tcp, unix, abstract, inetd,
// systemd, vsock, udp or npipe.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Special values of Address fields.
const (
	// sdAll is the systemd name that selects every inherited socket.
	sdAll = "*"
	// CIDAny is VMADDR_CID_ANY: listen on every context id of this machine.
	cidAny = ^uint32(0)
	// cidLocal and cidHost are VMADDR_CID_LOCAL and VMADDR_CID_HOST.
	cidLocal = 1
	cidHost  = 2
	// maxFDName is systemd's limit on a FileDescriptorName.
	maxFDName = 255
)

// Address is a parsed listen address: one string from a flag or a config
// file that says where a server accepts connections. Create it with
// ParseAddress, MustParseAddress, UnmarshalText or Set.
//
// Address is a small comparable value: use it with == and as a map key.
// Two Addresses are equal when they name the same socket in the same way,
// which is when their String forms are equal. The zero Address names
// nothing; Listen rejects it.
type Address struct {
	kind Kind
	// str is the TCP host (without brackets), the UNIX socket path, the
	// abstract name (without '@'), the systemd socket name ("" for plain
	// sd-listen, sdAll for all of them), or the pipe name (without
	// \\.\pipe\).
	str string
	// num is the TCP port, the vsock port, or the inherited fd number.
	num uint32
	// svc is the TCP port as a service name ("http"), resolved by Listen
	// and Dial as package net does; num is then 0.
	svc string
	// cid is the vsock context id.
	cid uint32
	// fd says that a systemd Address names an fd number (num), not a name.
	fd bool
	// typ is the socket type a UNIX path or abstract name asks for by its
	// scheme (unixgram:, unixpacket:); 0 leaves it to the call: a stream
	// socket for Listen, a datagram socket for ListenPacket.
	typ sockType
}

// sockType is the socket type a UNIX address names explicitly.
type sockType uint8

const (
	typDgram     sockType = iota + 1 // unixgram:
	typSeqpacket                     // unixpacket:
)

// ParseError is the error ParseAddress returns for a string that names no
// address. Its message quotes the input and says what would be accepted.
type ParseError struct {
	Input  string // the string as given
	Reason string // what is wrong with it, and what would be right
}

func (e *ParseError) Error() string {
	return "anylisten: invalid listen address " + strconv.Quote(e.Input) + ": " + e.Reason
}

// forms lists the accepted address forms for error messages.
const forms = "want HOST:PORT, :PORT, PORT, tcp://HOST:PORT, udp://HOST:PORT, /path, ./path, unix:PATH, @name, " +
	"unixpacket:PATH, unixgram:PATH, inetd, sd-listen, sd-listen:NAME, sd-listen:*, fd://, fd://NAME, fd://N, vsock:CID:PORT, " +
	`\\.\pipe\NAME or npipe://NAME`

// ParseAddress parses s as a listen address. It never touches the network
// or the file system: host names are resolved and paths are checked by
// Listen. The accepted forms, case-insensitive in their keywords:
//
//	127.0.0.1:8080, [::1]:80, [fe80::1%eth0]:80  TCP, IP literal and port
//	:8080                                       TCP on every interface (dual stack)
//	localhost:8080                              TCP, host name resolved by Listen
//	8080                                        TCP bare port, same as :8080
//	tcp://127.0.0.1:8080                        TCP, explicit
//	udp://127.0.0.1:53, udp://:53               UDP, explicit: for ListenPacket only
//	/run/app.sock, ./app.sock, ../app.sock      UNIX socket path
//	unix:/run/app.sock, unix:///run/app.sock    UNIX socket path
//	unix:app.sock                               UNIX socket path relative to the working directory
//	@name, unix:@name, unix-abstract:name       Linux abstract UNIX socket
//	unixpacket:/run/app.sock, unixpacket:@name  UNIX SOCK_SEQPACKET socket, path or abstract: for Listen only
//	unixgram:/run/app.sock, unixgram:@name      UNIX datagram socket, path or abstract: for ListenPacket only
//	inetd, stdio, -                             one connection on stdin/stdout
//	sd-listen, sd-listen-unix                   the one socket passed by systemd (fd 3)
//	sd-listen:NAME, fd://NAME                   the socket systemd passed under FileDescriptorName=NAME
//	sd-listen:*, fd://, fd://*                  every socket systemd passed, merged
//	fd://3, accept-from-fd:3                    the inherited socket with that fd number
//	vsock:CID:PORT, vsock://CID:PORT            AF_VSOCK; CID is a number, host, local, any or empty
//	\\.\pipe\NAME, npipe://NAME                 Windows named pipe, for Listen (Windows only)
//	npipe:////./pipe/NAME                       Windows named pipe, as Docker writes it
//
// The forms without a scheme name no socket type: HOST:PORT is TCP for
// Listen and UDP for ListenPacket, so that one address serves both (a DNS
// server on :53), and a path or @name is a stream socket for Listen and a
// datagram socket for ListenPacket (one path is one socket file, so a
// server with both needs two paths; an abstract name can serve both).
// udp://, unixgram: and unixpacket: fix the type, and the other call
// refuses them.
//
// Any other string is an error of type *ParseError that quotes s and says
// which forms are accepted. A relative UNIX path must start with ./ or ../
// (or be written unix:PATH), so that app.sock is not taken for a typo of a
// TCP address. Paths and abstract names holding a NUL byte, or longer than
// this platform's sun_path holds, are rejected: the limit is 107 bytes on
// Linux, Windows, Solaris and illumos, 103 on macOS and the BSDs, and 1022
// on AIX. That limit is the only way parsing differs between platforms: a
// form whose backend the platform lacks (@name outside Linux, say) parses
// everywhere, and Listen returns an error wrapping errors.ErrUnsupported.
//
// A Windows named pipe is \\.\pipe\NAME, the path Windows gives it
// (the prefix in any case, written \\.\pipe\ again by String), or
// npipe://NAME; npipe:// also takes the whole path, npipe:////./pipe/NAME
// as Docker writes it or npipe://\\.\pipe\NAME. NAME is kept as given,
// though Windows compares pipe names without regard to case. It must not be
// empty, hold a backslash or a slash (Windows reads either as a separator),
// a control character or invalid UTF-8, or end in a dot or a space (which
// Windows trims from a path), and the whole path \\.\pipe\NAME is at
// most 256 UTF-16 code units long, Windows's limit. A pipe on another
// machine, \\HOST\pipe\NAME, is an error: a server listens only on its
// own machine's pipes. //./pipe/NAME without the scheme is a UNIX socket
// path, as it is on Unix; on Windows, where it would name the pipe, Listen
// refuses it with an error that says to write \\.\pipe\NAME.
func ParseAddress(s string) (Address, error) {
	a, reason := parse(s)
	if reason != "" {
		return Address{}, &ParseError{Input: s, Reason: reason}
	}
	return a, nil
}

// MustParseAddress is like ParseAddress but panics if s cannot be parsed.
// It is meant for constants and defaults in programs and tests.
func MustParseAddress(s string) Address {
	a, err := ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

// parse returns the Address s names, or a non-empty reason why it names
// none. It allocates nothing on success.
func parse(s string) (Address, string) {
	if s == "" {
		return Address{}, "empty address; " + forms
	}
	switch s[0] {
	case '/':
		return parseUnixPath(s)
	case '@':
		return parseAbstract(s[1:])
	case '.':
		if strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") {
			return parseUnixPath(s)
		}
		return Address{}, "a relative UNIX socket path must start with ./ or ../ (write ./" + s + " or unix:" + s + ")"
	case '\\':
		return parsePipePath(s)
	}
	if c := s[0]; c == '[' || c == ':' || '0' <= c && c <= '9' {
		return parseTCP(s, false) // no keyword or scheme starts so
	}
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		switch {
		case equalFold(s, "inetd"), equalFold(s, "stdio"), s == "-":
			return Address{kind: KindInetd}, ""
		case isSDListen(s):
			return Address{kind: KindSystemd}, ""
		case isIPv4ish(s):
			return Address{}, "missing port; want HOST:PORT, like " + s + ":8080"
		case s[0] == '-' && isDigits(s[1:]):
			return Address{}, "port " + s + " is out of range (0-65535)"
		case strings.ContainsAny(s, "./"):
			return Address{}, "neither a TCP address (HOST:PORT needs a port) nor a UNIX socket path " +
				"(a relative path must start with ./ or ../: write ./" + s + " or unix:" + s + ")"
		}
		return Address{}, "missing port (write " + s + ":PORT for TCP); " + forms
	}
	// The part before the first colon is a scheme or a host name.
	head, rest := s[:colon], s[colon+1:]
	slashes := strings.HasPrefix(rest, "//")
	switch {
	case slashes && equalFold(head, "tcp"):
		return parseTCP(rest[2:], true)
	case slashes && equalFold(head, "udp"):
		a, reason := parseTCP(rest[2:], true)
		if reason == "" {
			a.kind = KindUDP
		}
		return a, reason
	case equalFold(head, "unix"):
		return parseUnixScheme("unix", rest)
	case equalFold(head, "unixpacket"), equalFold(head, "unixgram"):
		scheme := strings.ToLower(head)
		a, reason := parseUnixScheme(scheme, rest)
		switch {
		case reason != "":
		case scheme == "unixgram":
			a.typ = typDgram
		default:
			a.typ = typSeqpacket
		}
		return a, reason
	case equalFold(head, "unix-abstract"):
		return parseAbstract(rest)
	case isSDListen(head):
		return parseSystemdName(rest)
	case slashes && equalFold(head, "fd"):
		switch rest = rest[2:]; {
		case rest == "":
			return Address{kind: KindSystemd, str: sdAll}, ""
		case isDigits(rest):
			return parseFDNumber(rest)
		}
		return parseSystemdName(rest)
	case equalFold(head, "accept-from-fd"):
		return parseFDNumber(rest)
	case equalFold(head, "vsock"):
		return parseVsock(strings.TrimPrefix(rest, "//"))
	case slashes && equalFold(head, "npipe"):
		return parseNpipeScheme(rest[2:])
	case equalFold(head, "npipe"):
		return Address{}, `write npipe://NAME (with //) or \\.\pipe\NAME for a Windows named pipe`
	case slashes:
		return Address{}, "unknown scheme " + strconv.Quote(s[:colon+3]) + "; " + forms
	case equalFold(head, "tcp"), equalFold(head, "udp"):
		scheme := strings.ToLower(head)
		return Address{}, "write " + scheme + "://" + rest + " (with //) for a " + strings.ToUpper(scheme) + " address"
	case equalFold(head, "fd") && isDigits(rest):
		return Address{}, "write fd://" + rest + " for inherited fd " + rest + ", or tcp://" + s + " for a host named fd"
	case strings.HasPrefix(rest, "/"):
		return Address{}, "unknown scheme " + strconv.Quote(s[:colon+1]) + "; for a UNIX socket path write " +
			rest + " or unix:" + rest
	}
	return parseTCP(s, false)
}

// equalFold reports whether s and keyword (lower-case ASCII) are equal
// under ASCII case folding only: no Unicode lookalike (ſ, the Kelvin
// sign) passes for a keyword's letter.
func equalFold(s, keyword string) bool {
	if len(s) != len(keyword) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != keyword[i] {
			return false
		}
	}
	return true
}

// isSDListen reports whether s is one of the keywords of a plain systemd
// address, in any case.
func isSDListen(s string) bool {
	return equalFold(s, "sd-listen") || equalFold(s, "sd_listen") ||
		equalFold(s, "sd-listen-unix") || equalFold(s, "sd_listen_unix")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseUint parses a decimal number of at most max; what names it in the
// reason.
func parseUint(s, what string, max uint32) (uint32, string) {
	if s == "" {
		return 0, "missing " + what
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, what + " " + strconv.Quote(s) + " is not a decimal number"
		}
		if n = n*10 + uint64(c-'0'); n > uint64(max) {
			for _, c := range s[i+1:] { // a non-digit further on is the clearer error
				if c < '0' || c > '9' {
					return 0, what + " " + strconv.Quote(s) + " is not a decimal number"
				}
			}
			return 0, what + " " + s + " is out of range (0-" + strconv.FormatUint(uint64(max), 10) + ")"
		}
	}
	return uint32(n), ""
}

// parseTCP parses HOST:PORT, [IPv6]:PORT or a bare port; explicit says
// it followed tcp://, which makes any host a host. It splits as
// net.SplitHostPort does, by hand, since this is the hot path of parsing.
func parseTCP(s string, explicit bool) (Address, string) {
	if s == "" {
		return Address{}, "missing HOST:PORT after tcp://"
	}
	if isDigits(s) {
		port, reason := parseUint(s, "port", 65535)
		return Address{kind: KindTCP, num: port}, reason
	}
	var host, portStr string
	bracketed := s[0] == '['
	if bracketed {
		end := strings.IndexByte(s, ']')
		switch {
		case end < 0:
			return Address{}, "missing ']' after an IPv6 address; want [ADDR]:PORT, like [::1]:8080"
		case end == len(s)-1:
			return Address{}, "missing port; want [ADDR]:PORT, like [::1]:8080"
		case s[end+1] != ':':
			return Address{}, "want [ADDR]:PORT, like [::1]:8080, with nothing between ']' and ':'"
		}
		host, portStr = s[1:end], s[end+2:]
	} else {
		colon := strings.LastIndexByte(s, ':')
		switch {
		case colon < 0:
			return Address{}, "missing port; want HOST:PORT, like 127.0.0.1:8080 or :8080"
		case strings.IndexByte(s[:colon], ':') >= 0:
			return Address{}, "an IPv6 address needs brackets: [ADDR]:PORT, like [::1]:8080"
		}
		host, portStr = s[:colon], s[colon+1:]
	}
	var port uint32
	var svc, reason string
	if isServiceName(portStr) {
		if schemeLike[strings.ToLower(host)] && !bracketed && !explicit {
			// unixgram:app, fd:three, systemd:http: a scheme that is not
			// one, more likely than a host of that name.
			return Address{}, strconv.Quote(host) + " is not a scheme anylisten knows; " + forms
		}
		svc = portStr
	} else if port, reason = parseUint(portStr, "port", 65535); reason != "" {
		return Address{}, reason + "; want HOST:PORT with a port number or a service name, like 127.0.0.1:8080 or localhost:http"
	}
	if reason := checkHost(host, bracketed); reason != "" {
		return Address{}, reason
	}
	return Address{kind: KindTCP, str: host, num: port, svc: svc}, ""
}

// isServiceName reports whether s is a service name as RFC 6335 defines
// one (letters, digits and single inner hyphens), as /etc/services lists
// them: "http", "https", "http-alt". Package net looks such a port up by
// name. Unlike the RFC, it must start with a letter, so that a mistyped
// number ("8080a", "0x50") is an error here and not an unknown service.
func isServiceName(s string) bool {
	if s == "" || len(s) > 63 || !('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	letter := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			letter = true
		case '0' <= c && c <= '9' || c == '-':
		default:
			return false
		}
	}
	return letter
}

// schemeLike are words that, before ':' and a service name, are more
// likely a mistyped or unknown scheme than a host.
var schemeLike = map[string]bool{
	"unix": true, "unixgram": true, "unixpacket": true, "unix-abstract": true, "abstract": true,
	"fd": true, "inetd": true, "systemd": true, "sd-listen": true, "vsock": true,
	"tcp": true, "tcp4": true, "tcp6": true, "udp": true, "udp4": true, "udp6": true,
	"file": true, "http": true, "https": true, "npipe": true,
}

// hostPort is the HOST:PORT of a TCP Address as package net takes it,
// with the port number or service name.
func (a Address) hostPort() string {
	port := a.svc
	if port == "" {
		port = strconv.FormatUint(uint64(a.num), 10)
	}
	return net.JoinHostPort(a.str, port)
}

// checkHost accepts an empty host, an IP literal (IPv6 only in brackets),
// or a syntactically valid DNS name.
func checkHost(host string, bracketed bool) string {
	if host == "" {
		return ""
	}
	if bracketed {
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() {
			return "host " + strconv.Quote(host) + " is not an IPv6 address; write [IPv6]:PORT"
		}
		return ""
	}
	if isIPv4ish(host) {
		if !isIPv4(host) {
			return "host " + strconv.Quote(host) + " is not a valid IPv4 address"
		}
		return ""
	}
	if len(host) > 253 {
		return "host name is longer than 253 bytes"
	}
	label := 0
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c == '.':
			if label == 0 {
				return "host " + strconv.Quote(host) + " has an empty label"
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return "host " + strconv.Quote(host) + " contains " + strconv.QuoteRune(rune(c)) +
				", which no host name or IP address does"
		}
		label++
		if label > 63 {
			return "host " + strconv.Quote(host) + " has a label longer than 63 bytes"
		}
	}
	return ""
}

// isIPv4ish reports whether host is made of digits and dots only, and so
// can only mean an IPv4 address.
func isIPv4ish(host string) bool {
	for i := 0; i < len(host); i++ {
		if c := host[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// isIPv4 reports whether s is a dotted-decimal IPv4 address as
// netip.ParseAddr takes it: four numbers 0 to 255, without leading zeros.
func isIPv4(s string) bool {
	parts, n, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || parts == 3 && i != len(s) {
				return false
			}
			parts, n, digits = parts+1, 0, 0
			continue
		}
		if digits > 0 && n == 0 {
			return false // a leading zero
		}
		if n = n*10 + int(s[i]-'0'); n > 255 {
			return false
		}
		digits++
	}
	return parts == 4
}

// parseUnixScheme parses what follows scheme: (unix, unixpacket or
// unixgram).
func parseUnixScheme(scheme, rest string) (Address, string) {
	if strings.HasPrefix(rest, "@") {
		return parseAbstract(rest[1:])
	}
	if after, ok := strings.CutPrefix(rest, "//"); ok {
		if strings.HasPrefix(after, "@") {
			return parseAbstract(after[1:])
		}
		if !strings.HasPrefix(after, "/") {
			return Address{}, scheme + ":// must be followed by an absolute path, like " + scheme + ":///run/app.sock; " +
				"for a relative path write " + scheme + ":" + after
		}
		rest = after
	}
	if rest == "" {
		return Address{}, "missing path after " + scheme + ":; want " + scheme + ":/run/app.sock, " + scheme + ":app.sock or " + scheme + ":@name"
	}
	return parseUnixPath(rest)
}

func parseUnixPath(p string) (Address, string) {
	if reason := checkSockName(p, "path"); reason != "" {
		return Address{}, reason
	}
	if strings.HasSuffix(p, "/") {
		return Address{}, "a UNIX socket path ends in a file name, not in /"
	}
	return Address{kind: KindUnix, str: p}, ""
}

func parseAbstract(name string) (Address, string) {
	if name == "" {
		return Address{}, "missing name after @; want @name"
	}
	if strings.HasPrefix(name, "//") {
		return Address{}, "write unix-abstract:NAME or @NAME, without //"
	}
	if reason := checkSockName(name, "abstract name"); reason != "" {
		return Address{}, reason
	}
	return Address{kind: KindAbstract, str: name}, ""
}

// maxSunPath is the longest UNIX socket path or abstract name that this
// platform's sun_path holds.
var maxSunPath = sunPathMax(runtime.GOOS)

// sunPathMax returns the longest UNIX socket path or abstract name that
// the sun_path of goos holds with its terminating (for abstract names,
// leading) NUL. Unknown systems get the smallest, the BSDs'.
func sunPathMax(goos string) int {
	switch goos {
	case "linux", "android", "windows", "solaris", "illumos":
		return 108 - 1
	case "aix":
		return 1023 - 1
	}
	return 104 - 1 // darwin, ios, dragonfly, freebsd, netbsd, openbsd
}

// checkSockName checks that s fits into sun_path with its terminating NUL
// (or, for abstract names, its leading NUL) and holds no NUL byte.
func checkSockName(s, what string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return "UNIX socket " + what + " contains a NUL byte"
	}
	if len(s) > maxSunPath {
		hint := "choose a shorter path or a relative one"
		if what != "path" {
			hint = "choose a shorter name"
		}
		return "UNIX socket " + what + " is " + strconv.Itoa(len(s)) + " bytes long; the kernel takes at most " +
			strconv.Itoa(maxSunPath) + " (sun_path); " + hint
	}
	return ""
}

func parseSystemdName(name string) (Address, string) {
	switch {
	case strings.HasPrefix(name, "//"):
		return Address{}, "write sd-listen:NAME or fd://NAME, without // after sd-listen:"
	case name == "":
		return Address{}, "missing socket name; want sd-listen:NAME (FileDescriptorName=NAME) or sd-listen:*"
	case name == sdAll:
		return Address{kind: KindSystemd, str: sdAll}, ""
	case len(name) > maxFDName:
		return Address{}, "socket name is longer than systemd's limit of 255 bytes"
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == ':':
			return Address{}, "socket name " + strconv.Quote(name) + " contains ':', which separates names in LISTEN_FDNAMES"
		case c <= ' ' || c >= 0x7f:
			return Address{}, "socket name " + strconv.Quote(name) + " must be printable ASCII without spaces, as systemd requires"
		}
	}
	return Address{kind: KindSystemd, str: name}, ""
}

func parseFDNumber(s string) (Address, string) {
	n, reason := parseUint(s, "file descriptor number", 1<<31-1)
	if reason != "" {
		return Address{}, reason
	}
	return Address{kind: KindSystemd, num: n, fd: true}, ""
}

func parseVsock(s string) (Address, string) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Address{}, "missing port; want vsock:CID:PORT, like vsock:any:1024"
	}
	cidStr, portStr := s[:i], s[i+1:]
	var cid uint32
	switch {
	case cidStr == "", equalFold(cidStr, "any"):
		cid = cidAny
	case equalFold(cidStr, "local"):
		cid = cidLocal
	case equalFold(cidStr, "host"):
		cid = cidHost
	default:
		var reason string
		if cid, reason = parseUint(cidStr, "CID", ^uint32(0)); reason != "" {
			return Address{}, reason + "; the CID is a number, host, local, any or empty"
		}
	}
	port, reason := parseUint(portStr, "port", ^uint32(0))
	if reason != "" {
		return Address{}, reason + "; want vsock:CID:PORT, like vsock:any:1024"
	}
	return Address{kind: KindVsock, cid: cid, num: port}, ""
}

// pipePrefix starts the path of every named pipe on this machine.
const pipePrefix = `\\.\pipe\`

// maxPipePath is the longest pipe path, \\.\pipe\NAME, that Windows
// takes, in UTF-16 code units.
const maxPipePath = 256

// parseNpipeScheme parses what follows npipe://: a pipe name, or a whole
// pipe path written with slashes (Docker's npipe:////./pipe/NAME) or
// backslashes.
func parseNpipeScheme(rest string) (Address, string) {
	switch {
	case rest == "":
		return Address{}, `missing pipe name after npipe://; want npipe://NAME or \\.\pipe\NAME`
	case strings.HasPrefix(rest, "//"), strings.HasPrefix(rest, `\\`):
		return parsePipePath(rest)
	case rest[0] == '/' || rest[0] == '\\':
		return Address{}, "npipe:// must be followed by a pipe name (npipe://NAME) or a whole pipe path (npipe:////./pipe/NAME)"
	}
	return parsePipeName(rest)
}

// parsePipePath parses a Windows pipe path: \\.\pipe\NAME, or (after
// npipe://) //./pipe/NAME, each with one kind of separator throughout. The
// device name pipe is taken in any case, as Windows does.
func parsePipePath(p string) (Address, string) {
	const want = `want \\.\pipe\NAME for a Windows named pipe`
	sep := p[0]
	if len(p) < 2 || p[1] != sep {
		return Address{}, "a path that starts with a single backslash names no socket; " + want +
			" (a UNIX socket path is written with /)"
	}
	host, rest, ok := strings.Cut(p[2:], p[:1])
	dev, name, _ := strings.Cut(rest, p[:1])
	switch {
	case host == "." && ok && equalFold(dev, "pipe"):
		return parsePipeName(name)
	case host == "." || host == "?":
		return Address{}, "of the Windows device paths only the named pipes " + pipePrefix + "NAME are taken; " + want
	case host != "" && ok && equalFold(dev, "pipe"):
		return Address{}, "a pipe on the machine " + strconv.Quote(host) + " (a server listens only on its own machine's pipes); " + want
	}
	return Address{}, "a network (UNC) path names no socket; " + want
}

// parsePipeName checks a pipe name, what follows \\.\pipe\.
func parsePipeName(name string) (Address, string) {
	if name == "" {
		return Address{}, `missing pipe name; want \\.\pipe\NAME, like \\.\pipe\app`
	}
	units := len(pipePrefix) // in UTF-16, as Windows counts
	for i := 0; i < len(name); {
		c := name[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(name[i:])
			if r == utf8.RuneError && size == 1 {
				return Address{}, "pipe name " + strconv.Quote(name) + " is not valid UTF-8"
			}
			units += utf16.RuneLen(r)
			i += size
			continue
		}
		switch {
		case c == '\\' || c == '/':
			return Address{}, "pipe name " + strconv.Quote(name) + " contains " + strconv.QuoteRune(rune(c)) +
				", which Windows reads as a path separator; want " + pipePrefix + "NAME with a name of one part"
		case c < ' ' || c == 0x7f:
			return Address{}, "pipe name " + strconv.Quote(name) + " contains a control character"
		}
		units++
		i++
	}
	if units > maxPipePath {
		return Address{}, "pipe path " + pipePrefix + "NAME is " + strconv.Itoa(units) + " UTF-16 code units long; Windows takes at most " +
			strconv.Itoa(maxPipePath) + ": choose a shorter name"
	}
	if c := name[len(name)-1]; c == '.' || c == ' ' {
		return Address{}, "pipe name " + strconv.Quote(name) + " ends in " + strconv.QuoteRune(rune(c)) +
			", which Windows trims from a path, so that it would name another pipe"
	}
	return Address{kind: KindNpipe, str: name}, ""
}

// Kind returns the kind of socket a names; the zero Address has Kind 0.
func (a Address) Kind() Kind { return a.kind }

// Network returns the name of a's network as package net (and, for vsock,
// github.com/mdlayher/vsock) names it, for handing a to another library
// together with HostPort or Path: "tcp" for a TCP address (which
// ListenPacket serves as "udp"), "udp" for udp://, "unix" for a UNIX path
// or an abstract name (which ListenPacket serves as "unixgram"),
// "unixpacket" and "unixgram" for those schemes, "vsock" for vsock,
// "npipe" for a Windows named pipe (as Docker names the scheme; the
// listener's Addr().Network(), go-winio's, says "pipe"), and "" for inetd,
// sd-listen and fd://N, whose network is known only once Listen has looked
// at the inherited socket (the listener's Addr().Network() says it then).
func (a Address) Network() string {
	switch a.kind {
	case KindTCP:
		return "tcp"
	case KindUDP:
		return "udp"
	case KindUnix, KindAbstract:
		switch a.typ {
		case typDgram:
			return "unixgram"
		case typSeqpacket:
			return "unixpacket"
		}
		return "unix"
	case KindVsock:
		return "vsock"
	case KindNpipe:
		return "npipe"
	}
	return ""
}

// HostPort returns a TCP or UDP address as net.Dial and net.Listen take
// it, HOST:PORT (an IPv6 host in brackets, an empty host for every
// interface, the port a number or a service name as given), and "" for
// other kinds.
func (a Address) HostPort() string {
	if a.kind != KindTCP && a.kind != KindUDP {
		return ""
	}
	return a.hostPort()
}

// Path returns the socket path of a UNIX address as given, the abstract
// name with its leading '@' (as net.Dial("unix", ...) takes it), the path
// \\.\pipe\NAME of a Windows named pipe (as go-winio's ListenPipe and
// DialPipe take it), and "" for other kinds.
func (a Address) Path() string {
	switch a.kind {
	case KindUnix:
		return a.str
	case KindAbstract:
		return "@" + a.str
	case KindNpipe:
		return pipePrefix + a.str
	}
	return ""
}

// String returns the canonical form of a, which ParseAddress turns back
// into a: TCP addresses as HOST:PORT (with tcp:// only where the bare form
// would read as another kind), udp://HOST:PORT, UNIX paths as given
// (unix:PATH for a relative path that does not start with ./ or ../),
// @name, unixpacket:PATH, unixpacket:@name, unixgram:PATH,
// unixgram:@name, inetd, sd-listen, sd-listen:NAME, sd-listen:*, fd://N,
// vsock:any:PORT, vsock:CID:PORT or \\.\pipe\NAME. The zero Address
// gives "".
func (a Address) String() string {
	switch a.kind {
	case KindTCP:
		bare := a.hostPort()
		if b, reason := parse(bare); reason != "" || b != a {
			return "tcp://" + bare
		}
		return bare
	case KindUDP:
		return "udp://" + a.hostPort()
	case KindUnix:
		if a.typ != 0 {
			if strings.HasPrefix(a.str, "//") { // not to be read as SCHEME://
				return a.Network() + "://" + a.str
			}
			return a.Network() + ":" + a.str
		}
		if strings.HasPrefix(a.str, "/") || strings.HasPrefix(a.str, "./") || strings.HasPrefix(a.str, "../") {
			return a.str
		}
		return "unix:" + a.str
	case KindAbstract:
		if a.typ != 0 {
			return a.Network() + ":@" + a.str
		}
		return "@" + a.str
	case KindInetd:
		return "inetd"
	case KindSystemd:
		switch {
		case a.fd:
			return "fd://" + strconv.FormatUint(uint64(a.num), 10)
		case a.str == "":
			return "sd-listen"
		}
		return "sd-listen:" + a.str
	case KindVsock:
		cid := "any"
		if a.cid != cidAny {
			cid = strconv.FormatUint(uint64(a.cid), 10)
		}
		return "vsock:" + cid + ":" + strconv.FormatUint(uint64(a.num), 10)
	case KindNpipe:
		return pipePrefix + a.str
	}
	return ""
}

// MarshalText implements encoding.TextMarshaler: the text is a.String().
func (a Address) MarshalText() ([]byte, error) {
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseAddress, so
// that an Address can be read from JSON, YAML or TOML as a string and used
// with flag.TextVar. On error a is left unchanged.
func (a *Address) UnmarshalText(text []byte) error {
	b, err := ParseAddress(string(text))
	if err != nil {
		return err
	}
	*a = b
	return nil
}

// Set implements flag.Value with ParseAddress, so that
// flag.Var(&addr, "listen", "...") works.
func (a *Address) Set(s string) error {
	return a.UnmarshalText([]byte(s))
}

// AddressHelp describes the address forms in a few lines, for the help
// text of a program's listen address argument or flag.
const AddressHelp = `Socket address to listen on; one of:
  * TCP host and port: 127.0.0.1:8080, [::]:80, localhost:8080, :8080 (every
    interface) or a bare port 8080; tcp://HOST:PORT also works
  * UNIX socket path: /run/app.sock, ./app.sock, ../app.sock or unix:PATH
  * Linux abstract UNIX socket: @name
  * inetd (or stdio, -): serve one connection on stdin/stdout
  * sd-listen: the socket passed by systemd (socket activation); sd-listen:NAME
    for the one named NAME (FileDescriptorName=), sd-listen:* for all of them;
    fd://, fd://NAME and fd://N (by fd number) also work
  * unixpacket:PATH, unixpacket:@name: a UNIX SOCK_SEQPACKET socket (messages)
  * vsock:CID:PORT: AF_VSOCK; CID is a number, host, local, any or empty
  * Windows named pipe (on Windows only): \\.\pipe\NAME or npipe://NAME`

// PacketAddressHelp is AddressHelp for a program that serves datagrams
// (ListenPacket).
const PacketAddressHelp = `Socket address to receive datagrams on; one of:
  * UDP host and port: 127.0.0.1:53, [::]:53, localhost:53, :53 (every
    interface) or a bare port 53; udp://HOST:PORT also works
  * UNIX datagram socket path: /run/app.sock, ./app.sock, ../app.sock,
    unix:PATH or unixgram:PATH
  * Linux abstract UNIX datagram socket: @name or unixgram:@name
  * sd-listen: the datagram socket passed by systemd (ListenDatagram=);
    sd-listen:NAME for the one named NAME (FileDescriptorName=), fd://N by
    fd number`
