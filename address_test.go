package anylisten

import (
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// acceptedAddresses are the forms ParseAddress accepts, with their kind and
// canonical String.
var acceptedAddresses = []struct {
	in    string
	kind  Kind
	canon string
}{
	{"127.0.0.1:8080", KindTCP, "127.0.0.1:8080"},
	{"[::]:80", KindTCP, "[::]:80"},
	{"[::1]:0", KindTCP, "[::1]:0"},
	{"[fe80::1%eth0]:80", KindTCP, "[fe80::1%eth0]:80"},
	{":8080", KindTCP, ":8080"},
	{"localhost:8080", KindTCP, "localhost:8080"},
	{"my_host-1.example.com:443", KindTCP, "my_host-1.example.com:443"},
	{"8080", KindTCP, ":8080"},
	{"0", KindTCP, ":0"},
	{"127.0.0.1:08080", KindTCP, "127.0.0.1:8080"},
	{"tcp://127.0.0.1:8080", KindTCP, "127.0.0.1:8080"},
	{"TCP://[::1]:80", KindTCP, "[::1]:80"},
	{"tcp://8080", KindTCP, ":8080"},
	{"tcp://sd-listen:80", KindTCP, "tcp://sd-listen:80"},
	{"tcp://unix:80", KindTCP, "tcp://unix:80"},
	{"tcp://vsock:80", KindTCP, "tcp://vsock:80"},
	{"tcp://accept-from-fd:80", KindTCP, "tcp://accept-from-fd:80"},
	{"tcp://fd:80", KindTCP, "tcp://fd:80"},
	{"tcp://file:80", KindTCP, "file:80"},
	{"localhost:http", KindTCP, "localhost:http"}, // a service name, as net.Listen takes
	{":https", KindTCP, ":https"},
	{"[::1]:http-alt", KindTCP, "[::1]:http-alt"},
	{"tcp://unix:http", KindTCP, "tcp://unix:http"},
	{"tcp://unixgram:app", KindTCP, "tcp://unixgram:app"}, // tcp:// makes any host a host
	{"udp://127.0.0.1:53", KindUDP, "udp://127.0.0.1:53"},
	{"UDP://[::1]:53", KindUDP, "udp://[::1]:53"},
	{"udp://:53", KindUDP, "udp://:53"},
	{"udp://53", KindUDP, "udp://:53"},
	{"udp://localhost:domain", KindUDP, "udp://localhost:domain"},
	{"udp://unix:53", KindUDP, "udp://unix:53"},
	{"unixpacket:/run/app.sock", KindUnix, "unixpacket:/run/app.sock"},
	{"unixpacket:///run/app.sock", KindUnix, "unixpacket:/run/app.sock"},
	{"UNIXPACKET:app.sock", KindUnix, "unixpacket:app.sock"},
	{"unixpacket:@name", KindAbstract, "unixpacket:@name"},
	{"unixpacket://@name", KindAbstract, "unixpacket:@name"},
	{"unixgram:/run/app.sock", KindUnix, "unixgram:/run/app.sock"},
	{"unixgram:./app.sock", KindUnix, "unixgram:./app.sock"},
	{"unixgram:@name", KindAbstract, "unixgram:@name"},
	{"unixgram:////run/app.sock", KindUnix, "unixgram:////run/app.sock"},
	{"unixpacket:///./app.sock", KindUnix, "unixpacket:/./app.sock"},
	{"/run/app.sock", KindUnix, "/run/app.sock"},
	{"./app.sock", KindUnix, "./app.sock"},
	{"../app.sock", KindUnix, "../app.sock"},
	{"unix:/run/app.sock", KindUnix, "/run/app.sock"},
	{"unix:///run/app.sock", KindUnix, "/run/app.sock"},
	{"unix:app.sock", KindUnix, "unix:app.sock"},
	{"UNIX:./app.sock", KindUnix, "./app.sock"},
	{"unix:.app.sock", KindUnix, "unix:.app.sock"},
	{"/" + strings.Repeat("a", maxSunPath-1), KindUnix, "/" + strings.Repeat("a", maxSunPath-1)},
	{"@name", KindAbstract, "@name"},
	{"unix:@name", KindAbstract, "@name"},
	{"unix://@name", KindAbstract, "@name"},
	{"unix-abstract:name", KindAbstract, "@name"},
	{"@" + strings.Repeat("a", maxSunPath), KindAbstract, "@" + strings.Repeat("a", maxSunPath)},
	{"inetd", KindInetd, "inetd"},
	{"INETD", KindInetd, "inetd"},
	{"stdio", KindInetd, "inetd"},
	{"-", KindInetd, "inetd"},
	{"sd-listen", KindSystemd, "sd-listen"},
	{"sd_listen", KindSystemd, "sd-listen"},
	{"SD-Listen-Unix", KindSystemd, "sd-listen"},
	{"sd_listen_unix", KindSystemd, "sd-listen"},
	{"sd-listen:http", KindSystemd, "sd-listen:http"},
	{"sd_listen:http", KindSystemd, "sd-listen:http"},
	{"sd-listen:3", KindSystemd, "sd-listen:3"},
	{"sd-listen:*", KindSystemd, "sd-listen:*"},
	{"fd://", KindSystemd, "sd-listen:*"},
	{"fd://*", KindSystemd, "sd-listen:*"},
	{"fd://http", KindSystemd, "sd-listen:http"},
	{"fd://3", KindSystemd, "fd://3"},
	{"accept-from-fd:4", KindSystemd, "fd://4"},
	{"vsock:3:1024", KindVsock, "vsock:3:1024"},
	{"vsock://3:1024", KindVsock, "vsock:3:1024"},
	{"vsock:any:1024", KindVsock, "vsock:any:1024"},
	{"vsock::1024", KindVsock, "vsock:any:1024"},
	{"vsock://:9100", KindVsock, "vsock:any:9100"},
	{"vsock:4294967295:80", KindVsock, "vsock:any:80"},
	{"vsock:host:80", KindVsock, "vsock:2:80"},
	{"vsock:LOCAL:80", KindVsock, "vsock:1:80"},
	{"vsock:any:4294967295", KindVsock, "vsock:any:4294967295"},
	{`\\.\pipe\app`, KindNpipe, `\\.\pipe\app`},
	{`\\.\PIPE\App`, KindNpipe, `\\.\pipe\App`}, // the name as given, the prefix canonical
	{`\\.\Pipe\a:b c`, KindNpipe, `\\.\pipe\a:b c`},
	{`\\.\pipe\grüße-😀`, KindNpipe, `\\.\pipe\grüße-😀`},
	{`\\.\pipe\` + strings.Repeat("a", maxPipePath-len(pipePrefix)), KindNpipe, `\\.\pipe\` + strings.Repeat("a", maxPipePath-len(pipePrefix))},
	{`\\.\pipe\` + strings.Repeat("é", maxPipePath-len(pipePrefix)), KindNpipe, `\\.\pipe\` + strings.Repeat("é", maxPipePath-len(pipePrefix))},
	{"npipe://app", KindNpipe, `\\.\pipe\app`},
	{"NPIPE://docker_engine", KindNpipe, `\\.\pipe\docker_engine`},
	{"npipe:////./pipe/docker_engine", KindNpipe, `\\.\pipe\docker_engine`}, // Docker's DOCKER_HOST
	{"npipe:////./PIPE/app", KindNpipe, `\\.\pipe\app`},
	{`npipe://\\.\pipe\app`, KindNpipe, `\\.\pipe\app`},
	{"npipe://app.sock", KindNpipe, `\\.\pipe\app.sock`},
	{"//./pipe/app", KindUnix, "//./pipe/app"}, // without npipe://, a UNIX path, as on Unix
	{"unix:////./pipe/app", KindUnix, "//./pipe/app"},
	{`unix:\\.\pipe\app`, KindUnix, `unix:\\.\pipe\app`},
	{"tcp://npipe:80", KindTCP, "tcp://npipe:80"},
}

func TestParseAddressAccepted(t *testing.T) {
	for _, tt := range acceptedAddresses {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", tt.in, err)
			}
			if got := a.Kind(); got != tt.kind {
				t.Errorf("Kind() = %v, want %v", got, tt.kind)
			}
			if got := a.String(); got != tt.canon {
				t.Errorf("String() = %q, want %q", got, tt.canon)
			}
			b, err := ParseAddress(a.String())
			if err != nil || b != a {
				t.Errorf("ParseAddress(%q) = %#v, %v; want %#v (round trip)", a.String(), b, err, a)
			}
		})
	}
}

func TestParseAddressRejected(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // a part of the error message
	}{
		{"", "empty address"},
		{"127.0.0.1", "missing port"},
		{"localhost", "missing port"},
		{"[::1]", "missing port"},
		{"::1", "IPv6 address needs brackets"},
		{"::1:80", "IPv6 address needs brackets"},
		{"127.0.0.1:65536", "port 65536 is out of range (0-65535)"},
		{"65536", "port 65536 is out of range"},
		{"127.0.0.1:", "missing port"},
		{"127.0.0.1:a--b", `port "a--b" is not a decimal number`},
		{"localhost:8080a", `port "8080a" is not a decimal number`},
		{"udp6:app", `"udp6" is not a scheme anylisten knows`},
		{"udp:127.0.0.1:53", "write udp://127.0.0.1:53 (with //) for a UDP address"},
		{"udp://", "missing HOST:PORT"},
		{"unixpacket:", "missing path after unixpacket:"},
		{"unixgram://app.sock", "unixgram:// must be followed by an absolute path"},
		{"unixpacket:@", "missing name"},
		{"fd:three", `"fd" is not a scheme anylisten knows`},
		{"systemd:http", `"systemd" is not a scheme anylisten knows`},
		{"127.0.0.1:-http", `port "-http" is not a decimal number`},
		{"127.0.0.1:ht_tp", `port "ht_tp" is not a decimal number`},
		{"127.0.0.1:-1", `port "-1" is not a decimal number`},
		{"999.1.1.1:80", "not a valid IPv4 address"},
		{"[127.0.0.1]:80", "not an IPv6 address"},
		{"bad host:80", "contains ' '"},
		{"a..b:80", "empty label"},
		{"app.sock", "write ./app.sock or unix:app.sock"},
		{".app.sock", "write ./.app.sock or unix:.app.sock"},
		{"/" + strings.Repeat("a", maxSunPath), "sun_path"},
		{"/run/a\x00b.sock", "NUL"},
		{"unix:", "missing path"},
		{"tcp://", "missing HOST:PORT"},
		{"[::1", "missing ']'"},
		{"[::1]x80", "nothing between ']' and ':'"},
		{"unix://app.sock", "unix:// must be followed by an absolute path"},
		{"@", "missing name"},
		{"@" + strings.Repeat("a", maxSunPath+1), "sun_path"},
		{"sd-listen:a:b", "contains ':'"},
		{"sd-listen:", "missing socket name"},
		{"sd-listen:a b", "printable ASCII"},
		{"sd-listen:" + strings.Repeat("n", 256), "255 bytes"},
		{"fd://99999999999", "out of range"},
		{"accept-from-fd:x", "not a decimal number"},
		{"vsock:42", "missing port"},
		{"vsock:42:", "missing port"},
		{"vsock:x:80", `CID "x" is not a decimal number`},
		{"vsock:42:4294967296", "out of range"},
		{"http://example.com/", `unknown scheme "http://"`},
		{"udp4://127.0.0.1:53", `unknown scheme "udp4://"`},
		{`\\.\pipe\`, "missing pipe name"},
		{`\\.\pipe`, "missing pipe name"},
		{"npipe://", "missing pipe name after npipe://"},
		{"npipe:////./pipe/", "missing pipe name"},
		{"npipe:app", "write npipe://NAME (with //)"},
		{"npipe:///app", "npipe:// must be followed by a pipe name"},
		{`\\server\pipe\app`, `a pipe on the machine "server"`},
		{"npipe:////server/pipe/app", `a pipe on the machine "server"`},
		{`\\server\share\app.sock`, "network (UNC) path"},
		{`\\?\pipe\app`, "only the named pipes"},
		{`\\.\COM1`, "only the named pipes"},
		{`\\.\pipe\a\b`, `contains '\\'`},
		{`\\.\pipe\a/b`, `contains '/'`},
		{"npipe://a/b", `contains '/'`},
		{`\\.\pipe\app.`, `ends in '.'`},
		{`\\.\pipe\..`, `ends in '.'`},
		{`\\.\pipe\app `, `ends in ' '`},
		{`\\.\pipe\a` + "\x00", "control character"},
		{`\\.\pipe\a` + "\n", "control character"},
		{`\\.\pipe\` + "\xff", "not valid UTF-8"},
		{`\\.\pipe\` + strings.Repeat("a", maxPipePath-len(pipePrefix)+1), "257 UTF-16 code units long; Windows takes at most 256"},
		{`\\.\pipe\` + strings.Repeat("😀", 124), "257 UTF-16 code units"},
		{`\\`, "network (UNC) path"},
		{`\app.sock`, "single backslash"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if err == nil {
				t.Fatalf("ParseAddress(%q) = %v, want an error", tt.in, a)
			}
			if a != (Address{}) {
				t.Errorf("ParseAddress(%q) returned %#v with its error, want the zero Address", tt.in, a)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Input != tt.in {
				t.Errorf("error %v is not a *ParseError for %q", err, tt.in)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
		})
	}
}

func TestParseAddressErrorQuotesInput(t *testing.T) {
	_, err := ParseAddress("app.sock")
	want := `anylisten: invalid listen address "app.sock": `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error = %v, want it to start with %q", err, want)
	}
}

func TestMustParseAddressPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParseAddress(\"app.sock\") did not panic")
		}
	}()
	MustParseAddress("app.sock")
}

func TestAddressComparable(t *testing.T) {
	seen := map[Address]string{}
	for _, tt := range acceptedAddresses {
		a := MustParseAddress(tt.in)
		if prev, ok := seen[a]; ok && MustParseAddress(prev).String() != a.String() {
			t.Errorf("%q and %q are == but print as %q and %q", prev, tt.in, MustParseAddress(prev), a)
		}
		seen[a] = tt.in
	}
	if MustParseAddress("8080") != MustParseAddress(":8080") {
		t.Error(`"8080" != ":8080"`)
	}
	if MustParseAddress("sd-listen:3") == MustParseAddress("fd://3") {
		t.Error(`the socket named "3" == the socket with fd 3`)
	}
	if MustParseAddress("./a.sock") == MustParseAddress("unix:a.sock") {
		t.Error(`"./a.sock" == "unix:a.sock": the round trip of either would break`)
	}
}

func TestKindString(t *testing.T) {
	got := []string{}
	for k := KindTCP; k <= KindNpipe; k++ {
		got = append(got, k.String())
	}
	want := []string{"tcp", "unix", "abstract", "inetd", "systemd", "vsock", "udp", "npipe"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Kind names (-want +got):\n%s", diff)
	}
	if s := Kind(0).String(); s != "Kind(0)" {
		t.Errorf("Kind(0).String() = %q", s)
	}
}

func TestAddressFlag(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	var byVar Address
	byText := MustParseAddress("127.0.0.1:8080")
	fs.Var(&byVar, "listen", "")
	fs.TextVar(&byText, "admin", MustParseAddress("127.0.0.1:8080"), "")
	if err := fs.Parse([]string{"--listen", "unix:///run/app.sock", "--admin=@admin"}); err != nil {
		t.Fatal(err)
	}
	if byVar != MustParseAddress("/run/app.sock") || byText != MustParseAddress("@admin") {
		t.Errorf("flags gave %v and %v", byVar, byText)
	}
	err := fs.Parse([]string{"--listen", "app.sock"})
	if err == nil || !strings.Contains(err.Error(), `invalid listen address "app.sock"`) {
		t.Errorf("bad flag value: err = %v", err)
	}
	if byVar != MustParseAddress("/run/app.sock") {
		t.Errorf("a failed Set changed the Address to %v", byVar)
	}
}

func TestAddressJSON(t *testing.T) {
	type config struct {
		Addr  Address   `json:"addr"`
		Addrs []Address `json:"addrs"`
	}
	var c config
	in := `{"addr":"unix:app.sock","addrs":["8080","@x","sd-listen:http"]}`
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"addr":"unix:app.sock","addrs":[":8080","@x","sd-listen:http"]}`
	if string(out) != want {
		t.Errorf("json round trip = %s, want %s", out, want)
	}
	err = json.Unmarshal([]byte(`{"addr":"http://x"}`), &c)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Errorf("bad JSON address: err = %v, want a *ParseError", err)
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, tt := range acceptedAddresses {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if a != (Address{}) {
				t.Fatalf("ParseAddress(%q) returned %#v with an error", s, a)
			}
			return
		}
		c := a.String()
		b, err := ParseAddress(c)
		if err != nil {
			t.Fatalf("ParseAddress(%q) = %#v, whose String %q does not parse: %v", s, a, c, err)
		}
		if b != a {
			t.Fatalf("ParseAddress(%q) = %#v; its String %q parses to %#v", s, a, c, b)
		}
		if b.String() != c {
			t.Fatalf("String is not stable: %q then %q", c, b.String())
		}
	})
}

func TestParseAddressAllocs(t *testing.T) {
	for _, s := range []string{"127.0.0.1:8080", ":8080", "[::1]:80", "8080", "/run/app.sock", "./app.sock", "@name", "sd-listen:http", "vsock:any:80", "udp://127.0.0.1:53", "unixpacket:/run/app.sock", "unixgram:@name",
		`\\.\pipe\app`, "npipe://app", "npipe:////./pipe/app"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = ParseAddress(s) }); n != 0 {
			t.Errorf("ParseAddress(%q) allocates %v times, want 0", s, n)
		}
	}
}

// isIPv4 is the parser's own fast check; it must agree with netip.
func FuzzIsIPv4(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "0.0.0.0", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5",
		"01.2.3.4", "1..2.3", ".1.2.3", "1.2.3.", "", "00.0.0.0", "0.0.0.00", "999", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isIPv4ish(s) {
			return
		}
		ip, err := netip.ParseAddr(s)
		if want := err == nil && ip.Is4(); isIPv4(s) != want {
			t.Fatalf("isIPv4(%q) = %v, netip says %v", s, !want, want)
		}
	})
}

// The accessors hand an Address to another library without re-parsing
// its String.
func TestAddressAccessors(t *testing.T) {
	for _, tt := range []struct {
		in, network, hostPort, path string
	}{
		{"127.0.0.1:8080", "tcp", "127.0.0.1:8080", ""},
		{":8080", "tcp", ":8080", ""},
		{"tcp://[::1]:http", "tcp", "[::1]:http", ""},
		{"/run/app.sock", "unix", "", "/run/app.sock"},
		{"unix:app.sock", "unix", "", "app.sock"},
		{"@app", "unix", "", "@app"},
		{"vsock:2:80", "vsock", "", ""},
		{"udp://127.0.0.1:53", "udp", "127.0.0.1:53", ""},
		{"unixpacket:/run/app.sock", "unixpacket", "", "/run/app.sock"},
		{"unixpacket:@app", "unixpacket", "", "@app"},
		{"unixgram:app.sock", "unixgram", "", "app.sock"},
		{"unixgram:@app", "unixgram", "", "@app"},
		{"sd-listen:http", "", "", ""},
		{"fd://3", "", "", ""},
		{"inetd", "", "", ""},
		{"npipe://app", "npipe", "", `\\.\pipe\app`},
		{`\\.\PIPE\App`, "npipe", "", `\\.\pipe\App`},
		{"//./pipe/app", "unix", "", "//./pipe/app"},
	} {
		a := MustParseAddress(tt.in)
		if got := a.Network(); got != tt.network {
			t.Errorf("%s: Network() = %q, want %q", tt.in, got, tt.network)
		}
		if got := a.HostPort(); got != tt.hostPort {
			t.Errorf("%s: HostPort() = %q, want %q", tt.in, got, tt.hostPort)
		}
		if got := a.Path(); got != tt.path {
			t.Errorf("%s: Path() = %q, want %q", tt.in, got, tt.path)
		}
	}
	var zero Address
	if zero.Network() != "" || zero.HostPort() != "" || zero.Path() != "" {
		t.Error("the zero Address has a network, host:port or path")
	}
}

// TestSunPathMax checks the sun_path limit of each platform, and that a
// path of exactly that length parses here.
func TestSunPathMax(t *testing.T) {
	for goos, want := range map[string]int{
		"linux": 107, "android": 107, "windows": 107, "solaris": 107, "illumos": 107,
		"darwin": 103, "ios": 103, "freebsd": 103, "openbsd": 103, "netbsd": 103, "dragonfly": 103,
		"aix": 1022,
	} {
		if got := sunPathMax(goos); got != want {
			t.Errorf("sunPathMax(%q) = %d, want %d", goos, got, want)
		}
	}
	path := "/" + strings.Repeat("a", maxSunPath-1)
	if _, err := ParseAddress(path); err != nil {
		t.Errorf("ParseAddress of a %d-byte path: %v", len(path), err)
	}
}
