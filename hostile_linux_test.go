package anylisten

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Hostile and mistaken inputs, and the exact error each gets. Every case
// also checks that it leaves no fd open and that nothing on disk was
// created, removed or changed. In the wanted messages, {dir} stands for the
// case's own directory (a short one from testenv.SocketDir).

// wantForms is the list of accepted forms that many parse errors end with.
const wantForms = "want HOST:PORT, :PORT, PORT, tcp://HOST:PORT, udp://HOST:PORT, /path, ./path, unix:PATH, @name, " +
	"unixpacket:PATH, unixgram:PATH, inetd, sd-listen, sd-listen:NAME, sd-listen:*, fd://, fd://NAME, fd://N, vsock:CID:PORT, " +
	`\\.\pipe\NAME or npipe://NAME`

func TestHostileAddresses(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string   // the address as a user writes it
		opts *Options // for Listen
		// setup makes what is on disk before Listen; what it makes must
		// be there, unchanged, afterwards.
		setup func(t *testing.T, dir string)
		// want is the exact error, of ParseAddress if it fails, else of
		// Listen; "" if Listen must succeed.
		want string
		is   error // what the Listen error wraps, if anything in particular
		// ok checks the listener of a Listen that succeeds; it is then
		// closed again.
		ok func(t *testing.T, dir string, ln net.Listener)
		// after checks the case's files once Listen has returned.
		after func(t *testing.T, dir string)
	}{
		// Wrong port numbers.
		{name: "port 65536", in: "127.0.0.1:65536",
			want: `anylisten: invalid listen address "127.0.0.1:65536": port 65536 is out of range (0-65535); want HOST:PORT with a port number or a service name, like 127.0.0.1:8080 or localhost:http`},
		{name: "bare port 65536", in: "65536",
			want: `anylisten: invalid listen address "65536": port 65536 is out of range (0-65535)`},
		{name: "port 65536 on every interface", in: ":65536",
			want: `anylisten: invalid listen address ":65536": port 65536 is out of range (0-65535); want HOST:PORT with a port number or a service name, like 127.0.0.1:8080 or localhost:http`},
		{name: "huge port", in: "127.0.0.1:99999999999999999999",
			want: `anylisten: invalid listen address "127.0.0.1:99999999999999999999": port 99999999999999999999 is out of range (0-65535); want HOST:PORT with a port number or a service name, like 127.0.0.1:8080 or localhost:http`},
		{name: "port -1", in: "127.0.0.1:-1",
			want: `anylisten: invalid listen address "127.0.0.1:-1": port "-1" is not a decimal number; want HOST:PORT with a port number or a service name, like 127.0.0.1:8080 or localhost:http`},
		// Reported as unclear: a negative bare port is taken for a host
		// name without a port.
		{name: "bare port -1", in: "-1",
			want: `anylisten: invalid listen address "-1": port -1 is out of range (0-65535)`},
		// A service name is a port, as for net.Listen; an unknown one
		// fails at Listen.
		{name: "unknown service name", in: "127.0.0.1:no-such-service",
			want: `listen tcp 127.0.0.1:no-such-service: unknown service name "no-such-service" (looked up as package net does, in /etc/services); give a port number: lookup tcp/no-such-service: unknown port`},
		{name: "service name only", in: "http",
			want: `anylisten: invalid listen address "http": missing port (write http:PORT for TCP); ` + wantForms},
		{name: "hex port", in: "127.0.0.1:0x50",
			want: `anylisten: invalid listen address "127.0.0.1:0x50": port "0x50" is not a decimal number; want HOST:PORT with a port number or a service name, like 127.0.0.1:8080 or localhost:http`},
		// A scheme anylisten does not have, before a word, reads as a host
		// and a service name; it is refused as what it more likely is.
		{name: "unknown scheme", in: "udp6:app",
			want: `anylisten: invalid listen address "udp6:app": "udp6" is not a scheme anylisten knows; ` + wantForms},
		{name: "space before port", in: "127.0.0.1: 80",
			want: `anylisten: invalid listen address "127.0.0.1: 80": port " 80" is not a decimal number; want HOST:PORT with a port number or a service name, like 127.0.0.1:8080 or localhost:http`},
		{name: "empty port", in: "127.0.0.1:",
			want: `anylisten: invalid listen address "127.0.0.1:": missing port; want HOST:PORT with a port number or a service name, like 127.0.0.1:8080 or localhost:http`},
		{name: "colon only", in: ":",
			want: `anylisten: invalid listen address ":": missing port; want HOST:PORT with a port number or a service name, like 127.0.0.1:8080 or localhost:http`},
		{name: "no port", in: "localhost",
			want: `anylisten: invalid listen address "localhost": missing port (write localhost:PORT for TCP); ` + wantForms},
		{name: "IPv4 without port", in: "127.0.0.1",
			want: `anylisten: invalid listen address "127.0.0.1": missing port; want HOST:PORT, like 127.0.0.1:8080 or :8080`},
		{name: "empty", in: "",
			want: `anylisten: invalid listen address "": empty address; ` + wantForms},
		{name: "tcp scheme without address", in: "tcp://",
			want: `anylisten: invalid listen address "tcp://": missing HOST:PORT after tcp://`},

		// IPv6 without brackets, and brackets gone wrong.
		{name: "IPv6 loopback without brackets", in: "::1",
			want: `anylisten: invalid listen address "::1": an IPv6 address needs brackets: [ADDR]:PORT, like [::1]:8080`},
		{name: "IPv6 and port without brackets", in: "::1:8080",
			want: `anylisten: invalid listen address "::1:8080": an IPv6 address needs brackets: [ADDR]:PORT, like [::1]:8080`},
		{name: "IPv6 starting with a letter", in: "fe80::1:8080",
			want: `anylisten: invalid listen address "fe80::1:8080": an IPv6 address needs brackets: [ADDR]:PORT, like [::1]:8080`},
		{name: "IPv6 starting with a digit", in: "2001:db8::1:443",
			want: `anylisten: invalid listen address "2001:db8::1:443": an IPv6 address needs brackets: [ADDR]:PORT, like [::1]:8080`},
		{name: "IPv6 with zone without brackets", in: "fe80::1%eth0:80",
			want: `anylisten: invalid listen address "fe80::1%eth0:80": an IPv6 address needs brackets: [ADDR]:PORT, like [::1]:8080`},
		{name: "IPv6 in brackets without port", in: "[::1]",
			want: `anylisten: invalid listen address "[::1]": missing port; want [ADDR]:PORT, like [::1]:8080`},
		{name: "IPv6 missing closing bracket", in: "[::1:8080",
			want: `anylisten: invalid listen address "[::1:8080": missing ']' after an IPv6 address; want [ADDR]:PORT, like [::1]:8080`},
		{name: "IPv4 in brackets", in: "[127.0.0.1]:80",
			want: `anylisten: invalid listen address "[127.0.0.1]:80": host "127.0.0.1" is not an IPv6 address; write [IPv6]:PORT`},
		{name: "IPv4 out of range", in: "256.0.0.1:80",
			want: `anylisten: invalid listen address "256.0.0.1:80": host "256.0.0.1" is not a valid IPv4 address`},

		// Unknown schemes, and known ones misspelt.
		{name: "http scheme", in: "http://127.0.0.1:8080",
			want: `anylisten: invalid listen address "http://127.0.0.1:8080": unknown scheme "http://"; ` + wantForms},
		{name: "udp scheme", in: "udp://127.0.0.1:53",
			want: `listen udp 127.0.0.1:53: udp://127.0.0.1:53 is a datagram address: serve it with ListenPacket (a net.PacketConn), not Listen`},
		{name: "unixgram scheme", in: "unixgram:{dir}/app.sock",
			want: `listen unixgram {dir}/app.sock: unixgram:{dir}/app.sock is a datagram address: serve it with ListenPacket (a net.PacketConn), not Listen`},
		{name: "udp4 scheme", in: "udp4://127.0.0.1:53",
			want: `anylisten: invalid listen address "udp4://127.0.0.1:53": unknown scheme "udp4://"; ` + wantForms},
		{name: "tcp6 scheme", in: "tcp6://[::1]:80",
			want: `anylisten: invalid listen address "tcp6://[::1]:80": unknown scheme "tcp6://"; ` + wantForms},
		{name: "file scheme", in: "file:///run/app.sock",
			want: `anylisten: invalid listen address "file:///run/app.sock": unknown scheme "file://"; ` + wantForms},
		// Reported as unclear: a scheme without // is read as a host name.
		{name: "file scheme without slashes", in: "file:/run/app.sock",
			want: `anylisten: invalid listen address "file:/run/app.sock": unknown scheme "file:"; for a UNIX socket path write /run/app.sock or unix:/run/app.sock`},
		{name: "tcp scheme without slashes", in: "tcp:127.0.0.1:80",
			want: `anylisten: invalid listen address "tcp:127.0.0.1:80": write tcp://127.0.0.1:80 (with //) for a TCP address`},
		{name: "unix scheme with relative path after slashes", in: "unix://app.sock",
			want: `anylisten: invalid listen address "unix://app.sock": unix:// must be followed by an absolute path, like unix:///run/app.sock; for a relative path write unix:app.sock`},
		{name: "relative path without dot", in: "app.sock",
			want: `anylisten: invalid listen address "app.sock": neither a TCP address (HOST:PORT needs a port) nor a UNIX socket path (a relative path must start with ./ or ../: write ./app.sock or unix:app.sock)`},

		// UNIX paths: too long, with NUL, where they cannot be.
		{name: "path too long", in: "/tmp/" + strings.Repeat("a", 103),
			want: `anylisten: invalid listen address "/tmp/` + strings.Repeat("a", 103) + `": UNIX socket path is 108 bytes long; the kernel takes at most 107 (sun_path); choose a shorter path or a relative one`},
		{name: "path with NUL", in: "{dir}/a\x00b.sock",
			want: `anylisten: invalid listen address "{dir}/a\x00b.sock": UNIX socket path contains a NUL byte`},
		{name: "unix path with NUL", in: "unix:{dir}/a\x00b.sock",
			want: `anylisten: invalid listen address "unix:{dir}/a\x00b.sock": UNIX socket path contains a NUL byte`},
		{name: "abstract name with NUL", in: "@a\x00b",
			want: `anylisten: invalid listen address "@a\x00b": UNIX socket abstract name contains a NUL byte`},
		{name: "missing directory", in: "{dir}/nodir/x.sock",
			want: "listen unix {dir}/nodir/x.sock: the directory {dir}/nodir does not exist", is: fs.ErrNotExist},
		{name: "parent is a regular file", in: "{dir}/file/x.sock",
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "file"), "precious") },
			want:  "listen unix {dir}/file/x.sock: {dir}/file is not a directory", is: syscall.ENOTDIR},
		// A directory given with a trailing slash.
		{name: "directory with trailing slash", in: "{dir}/",
			want: `anylisten: invalid listen address "{dir}/": a UNIX socket path ends in a file name, not in /`},

		// Something already at the path: never removed, whatever it is.
		{name: "regular file", in: "{dir}/x.sock",
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "x.sock"), "precious") },
			want:  "listen unix {dir}/x.sock: bind: address already in use: a regular file is at this path; only a stale socket file is ever removed, so it is left alone: choose another path",
			is:    syscall.EADDRINUSE},
		{name: "regular file with unlink", in: "{dir}/x.sock", opts: &Options{UnixListenUnlink: true},
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "x.sock"), "precious") },
			want:  "listen unix {dir}/x.sock: bind: address already in use: a regular file is at this path; only a stale socket file is ever removed, so it is left alone: choose another path",
			is:    syscall.EADDRINUSE},
		{name: "directory with unlink", in: "{dir}/x.sock", opts: &Options{UnixListenUnlink: true},
			setup: func(t *testing.T, dir string) {
				if err := os.Mkdir(filepath.Join(dir, "x.sock"), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "x.sock", "inside"), "precious")
			},
			want: "listen unix {dir}/x.sock: bind: address already in use: a directory is at this path; only a stale socket file is ever removed, so it is left alone: choose another path",
			is:   syscall.EADDRINUSE},
		{name: "named pipe with unlink", in: "{dir}/x.sock", opts: &Options{UnixListenUnlink: true},
			setup: func(t *testing.T, dir string) {
				if err := syscall.Mkfifo(filepath.Join(dir, "x.sock"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: "listen unix {dir}/x.sock: bind: address already in use: a named pipe is at this path; only a stale socket file is ever removed, so it is left alone: choose another path",
			is:   syscall.EADDRINUSE},
		{name: "symlink to a live socket with unlink", in: "{dir}/x.sock", opts: &Options{UnixListenUnlink: true},
			setup: func(t *testing.T, dir string) {
				liveSocket(t, filepath.Join(dir, "live.sock"))
				symlink(t, "live.sock", filepath.Join(dir, "x.sock"))
			},
			want: "listen unix {dir}/x.sock: bind: address already in use: a symbolic link is at this path; only a stale socket file is ever removed, so it is left alone: choose another path",
			is:   syscall.EADDRINUSE,
			after: func(t *testing.T, dir string) {
				// The server behind the link still takes connections.
				c, err := net.DialTimeout("unix", filepath.Join(dir, "x.sock"), 5*time.Second)
				if err != nil {
					t.Fatalf("the live server behind the symlink: %v", err)
				}
				c.Close()
			}},
		{name: "symlink to a stale socket with unlink", in: "{dir}/x.sock", opts: &Options{UnixListenUnlink: true},
			setup: func(t *testing.T, dir string) {
				staleSocket(t, filepath.Join(dir, "stale.sock"))
				symlink(t, "stale.sock", filepath.Join(dir, "x.sock"))
			},
			want: "listen unix {dir}/x.sock: bind: address already in use: a symbolic link is at this path; only a stale socket file is ever removed, so it is left alone: choose another path",
			is:   syscall.EADDRINUSE},
		{name: "symlink to a regular file with unlink", in: "{dir}/x.sock", opts: &Options{UnixListenUnlink: true},
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "data"), "precious")
				symlink(t, filepath.Join(dir, "data"), filepath.Join(dir, "x.sock"))
			},
			want: "listen unix {dir}/x.sock: bind: address already in use: a symbolic link is at this path; only a stale socket file is ever removed, so it is left alone: choose another path",
			is:   syscall.EADDRINUSE},
		// bind would create the link's target: it must not get that far.
		{name: "dangling symlink", in: "{dir}/x.sock",
			setup: func(t *testing.T, dir string) { symlink(t, "target.sock", filepath.Join(dir, "x.sock")) },
			want:  "listen unix {dir}/x.sock: bind: address already in use: a symbolic link is at this path; only a stale socket file is ever removed, so it is left alone: choose another path",
			is:    syscall.EADDRINUSE},
		{name: "stale socket without unlink", in: "{dir}/x.sock",
			setup: func(t *testing.T, dir string) { staleSocket(t, filepath.Join(dir, "x.sock")) },
			want:  "listen unix {dir}/x.sock: bind: address already in use: a stale socket file (nobody accepts on it) is in the way; remove it, or set the unix_listen_unlink option (--unix-listen-unlink) to have it removed",
			is:    syscall.EADDRINUSE},

		// Options that contradict the address are ignored, as documented.
		{name: "UNIX options on TCP", in: "127.0.0.1:0",
			opts: &Options{UnixListenChmod: 0o600, UnixListenUnlink: true, UnixListenUID: ptr[uint32](4242), UnixListenGID: ptr[uint32](4242)},
			ok: func(t *testing.T, _ string, ln net.Listener) {
				if _, ok := ln.(*net.TCPListener); !ok {
					t.Errorf("Listen returned %T, want *net.TCPListener", ln)
				}
			}},
		{name: "TCP options on a UNIX path", in: "unix:{dir}/x.sock",
			opts: &Options{TCPReusePort: true, TCPOnlyV6: true, TCPListenBacklog: 1, TCPKeepalive: &TCPKeepalive{Idle: time.Second}},
			ok: func(t *testing.T, dir string, ln net.Listener) {
				ul, ok := ln.(*UnixListener)
				if !ok {
					t.Fatalf("Listen returned %T, want *UnixListener", ln)
				}
				if v := sockopt(t, ul, unix.SOL_SOCKET, unix.SO_REUSEPORT); v != 0 {
					t.Errorf("SO_REUSEPORT = %d on a UNIX socket, want it not set", v)
				}
				if fi, err := os.Lstat(filepath.Join(dir, "x.sock")); err != nil || fi.Mode().Type() != fs.ModeSocket {
					t.Errorf("socket file: %v, %v", fi, err)
				}
			}},
		// An abstract name has no file: the options that would restrict
		// who connects are an error, not silently a wider access.
		{name: "file options on an abstract name", in: "@anylisten-hostile{dir}",
			opts: &Options{UnixListenChmod: 0o600, UnixListenUnlink: true, UnixListenUID: ptr[uint32](4242), TCPReusePort: true},
			want: "listen unix @anylisten-hostile{dir}: an abstract socket has no file, so the unix_listen_chmod, unix_listen_uid and unix_listen_gid options " +
				"(--unix-listen-chmod, --unix-listen-uid, --unix-listen-gid) cannot restrict who connects to it: " +
				"admit peers with unix_allow_uid or unix_allow_gid (--unix-allow-uid, --unix-allow-gid), or listen on a socket path"},
		{name: "other options on an abstract name", in: "@anylisten-hostile{dir}",
			opts: &Options{UnixListenUnlink: true, TCPReusePort: true, TCPKillPort: true},
			ok: func(t *testing.T, _ string, ln net.Listener) {
				if _, ok := ln.(*UnixListener); !ok {
					t.Errorf("Listen returned %T, want *UnixListener", ln)
				}
			}},

		// Negative and absurd sizes: Validate's errors, before anything
		// is opened.
		{name: "negative receive buffer", in: "127.0.0.1:0", opts: &Options{RecvBufferSize: -1},
			want: "anylisten: option recv_buffer_size is -1; want 0 (the OS default) to 2147483647"},
		{name: "huge send buffer", in: "127.0.0.1:0", opts: &Options{SendBufferSize: 1 << 40},
			want: "anylisten: option send_buffer_size is 1099511627776; want 0 (the OS default) to 2147483647"},
		{name: "most negative buffer on a UNIX path", in: "{dir}/x.sock", opts: &Options{RecvBufferSize: math.MinInt},
			want: "anylisten: option recv_buffer_size is -9223372036854775808; want 0 (the OS default) to 2147483647"},
		{name: "negative backlog", in: "127.0.0.1:0", opts: &Options{TCPListenBacklog: -1},
			want: "anylisten: option tcp_listen_backlog is -1; want 0 (the OS default) to 2147483647"},
		{name: "backlog beyond int32", in: "127.0.0.1:0", opts: &Options{TCPListenBacklog: math.MaxInt32 + 1},
			want: "anylisten: option tcp_listen_backlog is 2147483648; want 0 (the OS default) to 2147483647"},
		{name: "setuid bit in mode", in: "{dir}/x.sock", opts: &Options{UnixListenChmod: 0o4755},
			want: "anylisten: option unix_listen_chmod is 04755; want permission bits only (at most 0777)"},
		// Reported as unclear: it does not say which of the two it is.
		{name: "gid that means no change", in: "{dir}/x.sock", opts: &Options{UnixListenGID: ptr[uint32](math.MaxUint32)},
			want: `anylisten: option unix_listen_gid is 4294967295, which chown reads as "no change"; leave it unset instead`},
		{name: "negative keep-alive count", in: "127.0.0.1:0", opts: &Options{TCPKeepalive: &TCPKeepalive{Count: -1}},
			want: "anylisten: option tcp_keepalive: count -1 is out of range (0 to 127)"},
		{name: "negative keep-alive time", in: "127.0.0.1:0", opts: &Options{TCPKeepalive: &TCPKeepalive{Idle: -time.Second}},
			want: "anylisten: option tcp_keepalive: time -1s is out of range (0 to 32767 s)"},
		{name: "huge keep-alive interval", in: "127.0.0.1:0", opts: &Options{TCPKeepalive: &TCPKeepalive{Interval: 1 << 62}},
			want: "anylisten: option tcp_keepalive: interval 1281023h53m38.427387904s is out of range (0 to 32767 s)"},
		// The largest sizes Validate takes: the kernel caps them.
		{name: "largest backlog and buffers on TCP", in: "127.0.0.1:0",
			opts: &Options{TCPListenBacklog: math.MaxInt32, RecvBufferSize: math.MaxInt32, SendBufferSize: math.MaxInt32},
			ok: func(t *testing.T, _ string, ln net.Listener) {
				if got, max := listenBacklog(t, ln), readSysctl(t, "net.core.somaxconn"); got != max {
					t.Errorf("backlog = %d, want it capped at somaxconn %d", got, max)
				}
				c := roundTrip(t, ln).(syscall.Conn)
				if got, want := sockopt(t, c, unix.SOL_SOCKET, unix.SO_RCVBUF), kernelBufSize(t, unix.SO_RCVBUF, math.MaxInt32); got != want {
					t.Errorf("accepted SO_RCVBUF = %d, want the kernel's cap %d", got, want)
				}
			}},
		{name: "largest buffers on a UNIX path", in: "{dir}/x.sock",
			opts: &Options{RecvBufferSize: math.MaxInt32, SendBufferSize: math.MaxInt32}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := testenv.SocketDir(t)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			watchDir(t, dir)
			checkNoFDLeak(t)
			in := strings.ReplaceAll(tt.in, "{dir}", dir)
			want := strings.ReplaceAll(tt.want, "{dir}", dir)

			a, err := ParseAddress(in)
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Input != in {
					t.Errorf("ParseAddress(%q): error %v is not a *ParseError quoting the input", in, err)
				}
				if err.Error() != want {
					t.Errorf("ParseAddress(%q) error:\n got %s\nwant %s", in, err, want)
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ln, err := Listen(ctx, a, tt.opts)
			if tt.after != nil {
				defer tt.after(t, dir)
			}
			if want == "" {
				if err != nil {
					t.Fatalf("Listen(%q): %v", in, err)
				}
				defer ln.Close()
				if tt.ok != nil {
					tt.ok(t, dir, ln)
				}
				roundTrip(t, ln)
				if err := ln.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			if ln != nil || err == nil {
				if ln != nil {
					ln.Close()
				}
				t.Fatalf("Listen(%q) = %v, %v; want the error %q", in, ln, err, want)
			}
			if err.Error() != want {
				t.Errorf("Listen(%q) error:\n got %s\nwant %s", in, err, want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Listen(%q) error %v does not wrap %v", in, err, tt.is)
			}
			// Errors about the socket are *net.OpErrors; those of
			// Validate (anylisten: option ...) are not.
			var op *net.OpError
			if strings.HasPrefix(want, "listen ") && !errors.As(err, &op) {
				t.Errorf("Listen(%q) error %v is a %T, want a *net.OpError", in, err, err)
			}
		})
	}
}

// A host name that does not resolve: the error names it. The reserved TLD
// .invalid never resolves (RFC 6761), and what the resolver says (no such
// host, or a timeout without a network) depends on the machine: the
// message is checked with the resolver's part substituted. And the lookup
// is bounded by Listen's context: cancelled while the query is out, Listen
// returns the cancellation (a child process, mode "resolve", points its
// resolver at a server that never answers, which it cannot do to this
// process's other tests).
func TestHostileUnresolvableHost(t *testing.T) {
	checkNoFDLeak(t)
	const host = "anylisten-hostile.invalid"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ln, err := Listen(ctx, MustParseAddress(host+":0"), nil)
	if ln != nil || err == nil {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("Listen(%s:0) = %v, %v; want a lookup error", host, ln, err)
	}
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || dnsErr.Name != host {
		t.Fatalf("Listen error %v (%T) is not a *net.DNSError naming %s", err, err, host)
	}
	on := ""
	if dnsErr.Server != "" {
		on = " on " + dnsErr.Server
	}
	if want := "listen tcp: lookup " + host + on + ": " + dnsErr.Err; err.Error() != want {
		t.Errorf("Listen error:\n got %s\nwant %s", err, want)
	}
	if !dnsErr.IsNotFound && !dnsErr.IsTimeout && !dnsErr.IsTemporary {
		t.Logf("resolver's answer: %v", dnsErr)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childModeEnv("resolve", "ANYLISTEN_TEST_ADDRS="+host+":0")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v; stdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	line, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "RESOLVE-RESULT ")
	var r resolveResult
	if !ok || json.Unmarshal([]byte(line), &r) != nil {
		t.Fatalf("child printed %q, want RESOLVE-RESULT and JSON; stderr:\n%s", out, stderr.String())
	}
	if !r.Asked {
		t.Fatalf("Listen(%s:0) returned %q before its query reached the resolver", host, r.Err)
	}
	// Without the context the lookup would end in the resolver's own
	// timeout, 10 s later, with "i/o timeout".
	if want := "listen tcp: lookup " + host + ": operation was canceled"; r.Err != want || !r.Canceled || r.Name != host {
		t.Errorf("Listen cancelled during the lookup: %q (wraps context.Canceled: %v, *net.DNSError for %q);\nwant %q, wrapping context.Canceled, for %q",
			r.Err, r.Canceled, r.Name, want, host)
	}
}

// resolveResult is what resolveChild prints.
type resolveResult struct {
	Asked    bool   // the query reached the resolver before Listen returned
	Err      string // Listen's error
	Canceled bool   // it wraps context.Canceled
	Name     string // the name of the *net.DNSError it wraps
}

// resolveChild is the child of TestHostileUnresolvableHost, mode
// "resolve": it makes its resolver send every query to a UDP socket of its
// own that never answers, starts Listen on the address in
// ANYLISTEN_TEST_ADDRS, cancels Listen's context once the query arrived,
// and prints "RESOLVE-RESULT" and a resolveResult as JSON.
func resolveChild() int {
	addr, err := ParseAddress(os.Getenv("ANYLISTEN_TEST_ADDRS"))
	if err != nil {
		return childBadEnv("ANYLISTEN_TEST_ADDRS: %v", err)
	}
	server, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return childFatalf("%v", err)
	}
	defer server.Close()
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", server.LocalAddr().String())
	}}
	asked := make(chan struct{})
	go func() {
		if _, _, err := server.ReadFrom(make([]byte, 512)); err == nil {
			close(asked)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listened := make(chan error, 1)
	go func() {
		ln, err := Listen(ctx, addr, nil)
		if ln != nil {
			ln.Close()
		}
		listened <- err
	}()
	var r resolveResult
	select {
	case <-asked:
		r.Asked = true
		cancel()
		err = <-listened
	case err = <-listened:
	}
	if err != nil {
		r.Err = err.Error()
	}
	r.Canceled = errors.Is(err, context.Canceled)
	if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) {
		r.Name = dnsErr.Name
	}
	line, err := json.Marshal(r)
	if err != nil {
		return childFatalf("%v", err)
	}
	fmt.Printf("RESOLVE-RESULT %s\n", line)
	return 0
}

// The longest path and abstract name that fit sun_path listen; one byte
// more is a parse error.
func TestHostileUnixPathLength(t *testing.T) {
	dir := testenv.SocketDir(t)
	watchDir(t, dir)
	checkNoFDLeak(t)
	longest := dir + "/" + strings.Repeat("s", maxSunPath-len(dir)-1)
	roundTrip(t, listenT(t, longest, nil))
	// The kernel takes an abstract name of 107 bytes (sun_path less the
	// leading NUL), and ParseAddress accepts it; but Listen binds with
	// golang.org/x/sys/unix, whose SockaddrUnix refuses 108 bytes with
	// the '@', so this fails with "bind: invalid argument" until the
	// library binds it another way or limits the name to 106 bytes.
	abstract := "@" + strings.Repeat("a", maxSunPath-len(dir)) + dir
	if ln, err := Listen(context.Background(), MustParseAddress(abstract), nil); err != nil {
		t.Errorf("Listen on an abstract name of %d bytes, which ParseAddress accepts: %v", len(abstract)-1, err)
	} else {
		roundTrip(t, ln)
		ln.Close()
	}
	for _, tt := range []struct{ in, want string }{
		{longest + "s", `anylisten: invalid listen address "` + longest + `s": UNIX socket path is 108 bytes long; the kernel takes at most 107 (sun_path); choose a shorter path or a relative one`},
		{"unix:" + longest + "s", `anylisten: invalid listen address "unix:` + longest + `s": UNIX socket path is 108 bytes long; the kernel takes at most 107 (sun_path); choose a shorter path or a relative one`},
		// Reported as wrong: an abstract name has no path to shorten or
		// make relative.
		{abstract + "a", `anylisten: invalid listen address "` + abstract + `a": UNIX socket abstract name is 108 bytes long; the kernel takes at most 107 (sun_path); choose a shorter name`},
	} {
		if _, err := ParseAddress(tt.in); err == nil || err.Error() != tt.want {
			t.Errorf("ParseAddress(%q) error:\n got %v\nwant %s", tt.in, err, tt.want)
		}
	}
}

// The --unix-listen-chmod option: the words in any case, and invalid octal.
func TestHostileUnixMode(t *testing.T) {
	const invalid = `want owner, group, everybody or octal permission bits 0001 to 0777, like 0660`
	for _, tt := range []struct {
		in   string
		want fs.FileMode // the socket file's mode, if accepted
		err  string      // the exact error, if not
	}{
		{in: "OWNER", want: 0o600},
		{in: "Group", want: 0o660},
		{in: "eVeRyBoDy", want: 0o666},
		{in: "0O640", want: 0o640},
		{in: "0000000000000000000000000751", want: 0o751},
		{in: "0800", err: `anylisten: invalid UNIX socket mode "0800": ` + invalid},
		{in: "999", err: `anylisten: invalid UNIX socket mode "999": ` + invalid},
		{in: "0o", err: `anylisten: invalid UNIX socket mode "0o": ` + invalid},
		{in: "0o0o7", err: `anylisten: invalid UNIX socket mode "0o0o7": ` + invalid},
		{in: "4755", err: `anylisten: invalid UNIX socket mode "4755": ` + invalid},
		{in: "+640", err: `anylisten: invalid UNIX socket mode "+640": ` + invalid},
		{in: "-640", err: `anylisten: invalid UNIX socket mode "-640": ` + invalid},
		{in: " 0640", err: `anylisten: invalid UNIX socket mode " 0640": ` + invalid},
		{in: "0x1a4", err: `anylisten: invalid UNIX socket mode "0x1a4": ` + invalid},
		{in: "rw-rw----", err: `anylisten: invalid UNIX socket mode "rw-rw----": ` + invalid},
		{in: "owners", err: `anylisten: invalid UNIX socket mode "owners": ` + invalid},
		{in: "0", err: `anylisten: invalid UNIX socket mode "0": mode 0 lets nobody connect; leave the option unset to keep the mode bind gives`},
		{in: "0o000", err: `anylisten: invalid UNIX socket mode "0o000": mode 0 lets nobody connect; leave the option unset to keep the mode bind gives`},
	} {
		t.Run(tt.in, func(t *testing.T) {
			dir := testenv.SocketDir(t)
			watchDir(t, dir)
			checkNoFDLeak(t)
			var o Options
			fset := flag.NewFlagSet("test", flag.ContinueOnError)
			fset.SetOutput(io.Discard)
			o.RegisterFlags(fset)
			err := fset.Parse([]string{"--unix-listen-chmod", tt.in})
			var jo Options
			jerr := json.Unmarshal([]byte(`{"unix_listen_chmod":`+strconv.Quote(tt.in)+`}`), &jo)
			if tt.err != "" {
				if want := `invalid value "` + tt.in + `" for flag -unix-listen-chmod: ` + tt.err; err == nil || err.Error() != want {
					t.Errorf("flag error:\n got %v\nwant %s", err, want)
				}
				if jerr == nil || jerr.Error() != tt.err {
					t.Errorf("JSON error:\n got %v\nwant %s", jerr, tt.err)
				}
				if o.UnixListenChmod != 0 || jo.UnixListenChmod != 0 {
					t.Errorf("a rejected mode set the option: flag %#o, JSON %#o", o.UnixListenChmod, jo.UnixListenChmod)
				}
				return
			}
			if err != nil || jerr != nil || o.UnixListenChmod != jo.UnixListenChmod {
				t.Fatalf("flag gave %#o, %v; JSON gave %#o, %v", o.UnixListenChmod, err, jo.UnixListenChmod, jerr)
			}
			path := filepath.Join(dir, "m.sock")
			ln := listenT(t, "unix:"+path, &o)
			fi, err := os.Lstat(path)
			if err != nil || fi.Mode().Perm() != tt.want {
				t.Errorf("socket file: %v, %v; want mode %#o", fi, err, tt.want)
			}
			roundTrip(t, ln)
			ln.Close()
		})
	}
}

// User and group ids are numbers: they need not exist in /etc/passwd or
// /etc/group. The library chowns to the number as given (there is no name
// lookup and no check that the id exists): as root that works for any id
// up to 4294967294; 4294967295 is chown's "no change" and an error. (As
// another user, a chown to another id fails: TestHostileUnprivileged.)
func TestHostileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root: run the tests as root (TestHostileUnprivileged covers a normal user)")
	}
	uid := unusedID(t, func(id string) error { _, err := user.LookupId(id); return err })
	gid := unusedID(t, func(id string) error { _, err := user.LookupGroupId(id); return err })
	dir := testenv.SocketDir(t)
	watchDir(t, dir)
	checkNoFDLeak(t)
	path := filepath.Join(dir, "own.sock")
	ln := listenT(t, "unix:"+path, &Options{UnixListenUID: ptr(uid), UnixListenGID: ptr(gid), UnixListenChmod: 0o600})
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file is %d:%d %#o, want %d:%d 0600", st.Uid, st.Gid, fi.Mode().Perm(), uid, gid)
	}
	roundTrip(t, ln) // root connects whatever the owner
	ln.Close()

	for _, tt := range []struct{ flag, in, want string }{
		{"unix-listen-uid", "nobody", `invalid value "nobody" for flag -unix-listen-uid: anylisten: invalid user or group id "nobody": want a decimal number 0 to 4294967294`},
		{"unix-listen-gid", "-1", `invalid value "-1" for flag -unix-listen-gid: anylisten: invalid user or group id "-1": want a decimal number 0 to 4294967294`},
		{"unix-listen-uid", "4294967295", `invalid value "4294967295" for flag -unix-listen-uid: anylisten: invalid user or group id "4294967295": want a decimal number 0 to 4294967294`},
		{"unix-listen-gid", "0x10", `invalid value "0x10" for flag -unix-listen-gid: anylisten: invalid user or group id "0x10": want a decimal number 0 to 4294967294`},
	} {
		var o Options
		fset := flag.NewFlagSet("test", flag.ContinueOnError)
		fset.SetOutput(io.Discard)
		o.RegisterFlags(fset)
		if err := fset.Parse([]string{"--" + tt.flag, tt.in}); err == nil || err.Error() != tt.want {
			t.Errorf("--%s %s:\n got %v\nwant %s", tt.flag, tt.in, err, tt.want)
		}
		if o.UnixListenUID != nil || o.UnixListenGID != nil {
			t.Errorf("--%s %s set the option", tt.flag, tt.in)
		}
	}
	var o Options
	want := "json: cannot unmarshal number -1 into Go struct field Options.unix_listen_uid of type uint32"
	if err := json.Unmarshal([]byte(`{"unix_listen_uid":-1}`), &o); err == nil || err.Error() != want {
		t.Errorf("JSON uid -1:\n got %v\nwant %s", err, want)
	}
}

// unusedID returns an id from 4242 up that lookup does not know.
func unusedID(t *testing.T, lookup func(string) error) uint32 {
	t.Helper()
	for id := uint32(4242); id < 4342; id++ {
		if lookup(strconv.FormatUint(uint64(id), 10)) != nil {
			return id
		}
	}
	t.Fatal("ids 4242 to 4341 all exist")
	return 0
}

// The unprivileged cases, run as uid and gid 65534 (nobody), since root
// ignores permissions: the test binary is copied where nobody can run it
// and run in mode "hostile" (see childModes) with the cases as JSON in
// ANYLISTEN_TEST_CASES; the child prints one result line per case.

type hostileChildCase struct {
	Addr string
	Opts Options
}

type hostileChildResult struct {
	Err        string
	Permission bool // errors.Is(err, fs.ErrPermission)
	OpError    bool
	Owner      int // uid of the socket file while listening, for a success
}

const nobody = 65534

func TestHostileUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to re-run the test binary as uid 65534 (nobody); run the tests as root")
	}
	base := testenv.SocketDir(t)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	mkdir := func(name string, mode fs.FileMode, owner int) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		if err := os.Chown(p, owner, owner); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ro := mkdir("ro", 0o755, 0)           // nobody may not write into it
	rw := mkdir("rw", 0o755, nobody)      // nobody's own
	private := mkdir("private", 0o700, 0) // nobody may not even look into it
	staleSocket(t, filepath.Join(ro, "stale-0700.sock"))
	staleSocket(t, filepath.Join(ro, "stale-0777.sock"))
	for name, mode := range map[string]fs.FileMode{"stale-0700.sock": 0o700, "stale-0777.sock": 0o777} {
		if err := os.Chmod(filepath.Join(ro, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(base, "anylisten.test")
	copyExecutable(t, bin)
	watchDir(t, base)
	checkNoFDLeak(t)

	cases := []struct {
		name string
		hostileChildCase
		want       string // the exact error; "" for a success
		permission bool   // the error wraps fs.ErrPermission
	}{
		{name: "control: nobody's own directory", hostileChildCase: hostileChildCase{Addr: rw + "/x.sock"}},
		{name: "directory without write permission", hostileChildCase: hostileChildCase{Addr: ro + "/x.sock"},
			want: "listen unix " + ro + "/x.sock: cannot create files in the directory " + ro + " (the socket is made in a private directory there first): permission denied", permission: true},
		{name: "directory without search permission", hostileChildCase: hostileChildCase{Addr: private + "/x.sock"},
			want: "listen unix " + private + "/x.sock: lstat " + private + "/x.sock: permission denied", permission: true},
		// The socket file is removed again after the failed chown.
		{name: "chown to root", hostileChildCase: hostileChildCase{Addr: rw + "/x.sock", Opts: Options{UnixListenUID: ptr[uint32](0)}},
			want: "listen unix " + rw + "/x.sock: lchown " + rw + "/x.sock: operation not permitted", permission: true},
		{name: "chgrp to root", hostileChildCase: hostileChildCase{Addr: rw + "/x.sock", Opts: Options{UnixListenGID: ptr[uint32](0)}},
			want: "listen unix " + rw + "/x.sock: lchown " + rw + "/x.sock: operation not permitted", permission: true},
		// Root's stale socket that nobody may connect to: it cannot be
		// told stale, and stays.
		{name: "unconnectable stale socket with unlink", hostileChildCase: hostileChildCase{Addr: ro + "/stale-0700.sock", Opts: Options{UnixListenUnlink: true}},
			want: "listen unix " + ro + "/stale-0700.sock: cannot tell whether the socket file at this path is stale: connect: permission denied", permission: true},
		// A stale socket in a directory nobody may write to: it cannot be
		// replaced, and stays.
		{name: "stale socket in a read-only directory with unlink", hostileChildCase: hostileChildCase{Addr: ro + "/stale-0777.sock", Opts: Options{UnixListenUnlink: true}},
			want: "listen unix " + ro + "/stale-0777.sock: cannot create files in the directory " + ro + " (the socket is made in a private directory there first): permission denied", permission: true},
	}
	var in []hostileChildCase
	for _, c := range cases {
		in = append(in, c.hostileChildCase)
	}
	results := runHostileChild(t, bin, in)
	for i, c := range cases {
		r := results[i]
		if c.want == "" {
			if r.Err != "" || r.Owner != nobody {
				t.Errorf("%s: Listen as nobody: %q, socket owner %d; want success, owner %d", c.name, r.Err, r.Owner, nobody)
			}
			continue
		}
		if r.Err != c.want {
			t.Errorf("%s: Listen error:\n got %s\nwant %s", c.name, r.Err, c.want)
		}
		if r.Permission != c.permission || !r.OpError {
			t.Errorf("%s: error wraps fs.ErrPermission: %v, is a *net.OpError: %v; want %v, true", c.name, r.Permission, r.OpError, c.permission)
		}
	}
}

// runHostileChild runs bin, a copy of the test binary (copyExecutable)
// in a directory that uid 65534 may enter, as uid and gid 65534 in mode
// "hostile", in bin's directory, and returns its result for each case.
func runHostileChild(t *testing.T, bin string, cases []hostileChildCase) []hostileChildResult {
	t.Helper()
	js, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), childModeEnv("hostile", "ANYLISTEN_TEST_CASES="+string(js))...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as uid %d: %v\n%s", nobody, err, out)
	}
	t.Logf("child as uid %d:\n%s", nobody, out)
	var results []hostileChildResult
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "HOSTILE-RESULT "); ok {
			var r hostileChildResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("child result %q: %v", line, err)
			}
			results = append(results, r)
		}
	}
	if len(results) != len(cases) {
		t.Fatalf("child printed %d results for %d cases:\n%s", len(results), len(cases), out)
	}
	return results
}

// hostileChild runs the cases of TestHostileUnprivileged, mode "hostile".
func hostileChild() int {
	var cases []hostileChildCase
	if err := json.Unmarshal([]byte(os.Getenv("ANYLISTEN_TEST_CASES")), &cases); err != nil {
		return childBadEnv("ANYLISTEN_TEST_CASES: %v", err)
	}
	startPoller()
	before := openFDSet()
	for _, c := range cases {
		var r hostileChildResult
		ln, err := Listen(context.Background(), MustParseAddress(c.Addr), &c.Opts)
		if err != nil {
			var op *net.OpError
			r = hostileChildResult{Err: err.Error(), Permission: errors.Is(err, fs.ErrPermission), OpError: errors.As(err, &op)}
		} else {
			if fi, err := os.Lstat(c.Addr); err == nil {
				r.Owner = int(fi.Sys().(*syscall.Stat_t).Uid)
			}
			client, server, err := exchange(ln)
			for _, conn := range []net.Conn{client, server} {
				if conn != nil {
					conn.Close()
				}
			}
			ln.Close()
			if err != nil {
				return childFatalf("a connection to %s: %v", c.Addr, err)
			}
		}
		line, err := json.Marshal(r)
		if err != nil {
			return childFatalf("%v", err)
		}
		os.Stdout.Write([]byte("HOSTILE-RESULT " + string(line) + "\n"))
	}
	if leaked := childFDLeaks(before); len(leaked) > 0 {
		childErrorf("fds left open: %v; before: %v", leaked, before)
	}
	return 0
}

// A JSON null in a config file. For an Address it changes nothing, as
// encoding/json does for null. For an AddressList it must too, and a null
// element is an error; instead the list gets the zero Address, which
// Listen then refuses with a message about Go values, not the config.
// This test fails until AddressList.UnmarshalJSON handles null.
func TestHostileAddressListJSONNull(t *testing.T) {
	type config struct {
		Addr   Address     `json:"addr"`
		Listen AddressList `json:"listen"`
	}
	var c config
	if err := json.Unmarshal([]byte(`{"addr":null}`), &c); err != nil || c.Addr != (Address{}) {
		t.Errorf(`{"addr":null} gave %#v, %v; want the zero Address, no error`, c.Addr, err)
	}
	for _, tt := range []struct {
		in      string
		wantErr bool
	}{
		{`{"listen":null}`, false},
		{`{"listen":[null]}`, true},
		{`{"listen":["8080",null]}`, true},
	} {
		c := config{Listen: AddressList{MustParseAddress("@before")}}
		err := json.Unmarshal([]byte(tt.in), &c)
		if (err != nil) != tt.wantErr || len(c.Listen) != 1 || c.Listen[0] != MustParseAddress("@before") {
			t.Errorf("%s gave %#v, %v; want the list unchanged and an error: %v", tt.in, c.Listen, err, tt.wantErr)
		}
	}
	checkNoFDLeak(t)
	want := "listen: the zero Address names nothing to listen on; make one with ParseAddress"
	if ln, err := Listen(context.Background(), Address{}, nil); ln != nil || err == nil || err.Error() != want {
		t.Errorf("Listen(zero Address) = %v, %v; want %q", ln, err, want)
	}
}

// watchDir fails t at cleanup if anything under dir was created, removed
// or changed by then.
func watchDir(t *testing.T, dir string) {
	t.Helper()
	before := snapshotDir(t, dir)
	t.Cleanup(func() {
		if diff := cmp.Diff(before, snapshotDir(t, dir)); diff != "" {
			t.Errorf("files under %s changed (-before +after):\n%s", dir, diff)
		}
	})
}

// fileState is what watchDir compares of a file.
type fileState struct {
	Mode     fs.FileMode
	Ino      uint64
	UID, GID uint32
	Size     int64  // a regular file's size
	Link     string // a symlink's target
	Data     string // a small regular file's content
}

// snapshotDir returns the state of everything under dir, by path relative
// to it, without following symlinks.
func snapshotDir(t testing.TB, dir string) map[string]fileState {
	t.Helper()
	m := map[string]fileState{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		s := fileState{Mode: fi.Mode(), Ino: st.Ino, UID: st.Uid, GID: st.Gid}
		switch fi.Mode().Type() {
		case fs.ModeSymlink:
			s.Link, err = os.Readlink(path)
		case 0:
			s.Size = fi.Size()
			if s.Size < 1<<16 {
				var b []byte
				b, err = os.ReadFile(path)
				s.Data = string(b)
			}
		}
		rel, _ := filepath.Rel(dir, path)
		m[rel] = s
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// liveSocket leaves a listening socket at path until the test ends.
func liveSocket(t testing.TB, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
}

// copyExecutable copies the running test binary to path, mode 0755.
func copyExecutable(t testing.TB, path string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
