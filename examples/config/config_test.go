package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten"
	"github.com/anylisten/anylisten/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// sampleTCP is the TCP address in the sample configs, which the tests
// replace by a free port.
const sampleTCP = "127.0.0.1:7000"

// TestSampleConfigs runs the server on each sample config, with its TCP
// port replaced by a free one and its ./echo.sock in a new directory, and
// checks the echo over both, concurrent connections, the socket file's
// mode from unix_listen_chmod, and the clean exit on SIGTERM.
func TestSampleConfigs(t *testing.T) {
	for _, tt := range []struct {
		file string
		mode fs.FileMode // what its unix_listen_chmod says
	}{
		{"echo.toml", 0o660}, // "group"
		{"echo.json", 0o600}, // "owner"
	} {
		t.Run(tt.file, func(t *testing.T) {
			sample, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(sample, []byte(sampleTCP)) {
				t.Fatalf("%s does not contain %s, which the test replaces by a free port", tt.file, sampleTCP)
			}
			cfg, err := loadConfig(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if got := fs.FileMode(cfg.UnixListenChmod); got != tt.mode {
				t.Fatalf("%s: unix_listen_chmod is %v; the test expects %v", tt.file, got, tt.mode)
			}

			p, dir, port := startListening(t, tt.file, func(port int) string {
				return strings.ReplaceAll(string(sample), sampleTCP, "127.0.0.1:"+strconv.Itoa(port))
			})
			tcp := anylisten.MustParseAddress("127.0.0.1:" + strconv.Itoa(port))
			sock := filepath.Join(dir, "echo.sock")
			unix := anylisten.MustParseAddress(sock)

			fi, err := os.Lstat(sock)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != tt.mode {
				t.Errorf("%s has mode %v; want a socket with %v", sock, fi.Mode(), tt.mode)
			}

			// held stays open while the others are served: connections
			// are served concurrently.
			held := dial(t, tcp)
			roundTrip(t, held, "first\n")
			big := make([]byte, 1<<20)
			for i := range big {
				big[i] = byte(rand.N(256))
			}
			for _, a := range []anylisten.Address{tcp, unix} {
				checkEcho(t, a, []byte("hello over "+a.String()+"\n"))
				checkEcho(t, a, big)
			}
			roundTrip(t, held, "second\n")

			// SIGTERM closes the listeners, removing the socket file, and
			// the connection still open.
			if code := p.Stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("exit status %d after SIGTERM; want 0; stderr:\n%s", code, p.Stderr.String())
			}
			held.SetReadDeadline(time.Now().Add(timeout))
			if n, err := held.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("read on a connection open at SIGTERM: %d, %v; want 0, EOF", n, err)
			}
			if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after exit, Lstat(%s): %v; want the socket file removed", sock, err)
			}
		})
	}
}

// TestUnlinkStaleSocket checks that unix_listen_unlink from the config
// takes effect: a socket file left by a killed server makes the next start
// fail without it and succeed with it.
func TestUnlinkStaleSocket(t *testing.T) {
	dir := testenv.SocketDir(t)
	sock := filepath.Join(dir, "echo.sock")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("keep.toml", "addr = "+strconv.Quote(sock)+"\n")
	write("unlink.json", `{"addr": `+strconv.Quote(sock)+`, "unix_listen_unlink": true}`)

	p := start(t, dir, "keep.toml")
	if err := p.WaitListening(); err != nil {
		t.Fatal(err)
	}
	p.Stop(t, syscall.SIGKILL) // leaves the socket file behind
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("after SIGKILL: %v; want the socket file left behind", err)
	}

	p = start(t, dir, "keep.toml")
	if code := p.WaitExit(t); code != 1 || !strings.Contains(p.Stderr.String(), "unix_listen_unlink") {
		t.Errorf("with a stale socket file and no unix_listen_unlink: exit status %d; want 1 and an error naming unix_listen_unlink; stderr:\n%s",
			code, p.Stderr.String())
	}

	p = start(t, dir, "unlink.json")
	if err := p.WaitListening(); err != nil {
		t.Fatal(err)
	}
	checkEcho(t, anylisten.MustParseAddress(sock), []byte("after the unlink\n"))
	if code := p.Stop(t, os.Interrupt); code != 0 {
		t.Errorf("exit status %d after SIGINT; want 0; stderr:\n%s", code, p.Stderr.String())
	}
}

// TestExitStatus checks the exit status and message of a bad command
// line, a bad config and an option that Listen refuses.
func TestExitStatus(t *testing.T) {
	for _, tt := range []struct {
		name    string
		file    string // written into the working directory when content is set
		content string
		args    []string
		code    int
		want    string // in standard error
	}{
		{name: "no argument", code: 2, want: "want one argument"},
		{name: "two arguments", args: []string{"a.toml", "b.toml"}, code: 2, want: "want one argument"},
		{name: "missing file", args: []string{"missing.toml"}, code: 2, want: "missing.toml: no such file"},
		{name: "bad address", file: "bad.toml", content: `addr = "echo.sock"`, args: []string{"bad.toml"}, code: 2,
			want: `bad.toml: toml: line 1 (last key "addr"): anylisten: invalid listen address "echo.sock"`},
		{name: "bad chmod", file: "bad.json", content: `{"addr": "./echo.sock", "unix_listen_chmod": "wheel"}`, args: []string{"bad.json"}, code: 2,
			want: `bad.json: anylisten: invalid UNIX socket mode "wheel"`},
		{name: "negative buffer size", file: "neg.toml", content: "addr = \"./echo.sock\"\nrecv_buffer_size = -1", args: []string{"neg.toml"}, code: 1,
			want: "option recv_buffer_size is -1"},
		{name: "negative backlog", file: "neg.json", content: `{"addr": "./echo.sock", "tcp_listen_backlog": -5}`, args: []string{"neg.json"}, code: 1,
			want: "option tcp_listen_backlog is -5"},
		{name: "uid that means no change", file: "uid.toml", content: "addr = \"./echo.sock\"\nunix_listen_uid = 4294967295", args: []string{"uid.toml"}, code: 1,
			want: "option unix_listen_uid is 4294967295"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := testenv.SocketDir(t)
			if tt.content != "" {
				if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := start(t, dir, tt.args...)
			code := p.WaitExit(t)
			if stderr := p.Stderr.String(); code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("config %q: exit status %d, stderr:\n%s\nwant status %d and %q", tt.args, code, stderr, tt.code, tt.want)
			}
			if _, err := os.Lstat(filepath.Join(dir, "echo.sock")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Lstat(echo.sock): %v; want nothing left behind", err)
			}
		})
	}
}

// TestDecodeOptionKeys decodes every key of anylisten.Options from TOML and
// JSON, as users write them in their config files, through loadConfig.
func TestDecodeOptionKeys(t *testing.T) {
	id := func(n uint32) *uint32 { return &n }
	keepalive := func(idle time.Duration, count int, interval time.Duration) *anylisten.TCPKeepalive {
		return &anylisten.TCPKeepalive{Idle: idle, Count: count, Interval: interval}
	}
	tests := []struct {
		key        string
		toml, json string // the value as written in each format; "" leaves that format out
		want       anylisten.Options
	}{
		{"unix_listen_unlink", "true", "true", anylisten.Options{UnixListenUnlink: true}},
		{"unix_listen_unlink", "false", "false", anylisten.Options{}},
		{"unix_listen_chmod", `"owner"`, `"owner"`, anylisten.Options{UnixListenChmod: 0o600}},
		{"unix_listen_chmod", `"group"`, `"group"`, anylisten.Options{UnixListenChmod: 0o660}},
		{"unix_listen_chmod", `"everybody"`, `"everybody"`, anylisten.Options{UnixListenChmod: 0o666}},
		{"unix_listen_chmod", `"Group"`, `"Group"`, anylisten.Options{UnixListenChmod: 0o660}},
		{"unix_listen_chmod", `"0640"`, `"0640"`, anylisten.Options{UnixListenChmod: 0o640}},
		{"unix_listen_chmod", `"640"`, `"640"`, anylisten.Options{UnixListenChmod: 0o640}},
		{"unix_listen_chmod", `"0o750"`, `"0o750"`, anylisten.Options{UnixListenChmod: 0o750}},
		{"unix_listen_chmod", `""`, `""`, anylisten.Options{}},
		// TOML has octal integers, made for file modes: 0o660 is the
		// mode 0660. (JSON has no octal numbers; see TestBadConfig.)
		{"unix_listen_chmod", "0o660", "", anylisten.Options{UnixListenChmod: 0o660}},
		{"unix_listen_chmod", "0o600", "", anylisten.Options{UnixListenChmod: 0o600}},
		{"unix_listen_uid", "1000", "1000", anylisten.Options{UnixListenUID: id(1000)}},
		{"unix_listen_uid", "0", "0", anylisten.Options{UnixListenUID: id(0)}}, // root, not "unset"
		{"unix_listen_gid", "1000", "1000", anylisten.Options{UnixListenGID: id(1000)}},
		{"unix_listen_gid", "0", "0", anylisten.Options{UnixListenGID: id(0)}},
		{"unix_allow_uid", "[0, 1000]", "[0, 1000]", anylisten.Options{UnixAllowUID: []uint32{0, 1000}}},
		{"unix_allow_uid", "[]", "[]", anylisten.Options{UnixAllowUID: []uint32{}}},
		{"unix_allow_gid", "[4242]", "[4242]", anylisten.Options{UnixAllowGID: []uint32{4242}}},
		{"sd_accept_ignore_environment", "true", "true", anylisten.Options{SDAcceptIgnoreEnvironment: true}},
		{"no_adopt", "true", "true", anylisten.Options{NoAdopt: true}},
		{"tcp_keepalive", `"60000:3:5000"`, `"60000:3:5000"`, anylisten.Options{TCPKeepalive: keepalive(time.Minute, 3, 5*time.Second)}},
		{"tcp_keepalive", `"60000"`, `"60000"`, anylisten.Options{TCPKeepalive: keepalive(time.Minute, 0, 0)}},
		{"tcp_keepalive", `":3:"`, `":3:"`, anylisten.Options{TCPKeepalive: keepalive(0, 3, 0)}},
		{"tcp_keepalive", `"::5000"`, `"::5000"`, anylisten.Options{TCPKeepalive: keepalive(0, 0, 5*time.Second)}},
		// Empty: keep-alive on with the OS's timers, unlike a missing key.
		{"tcp_keepalive", `""`, `""`, anylisten.Options{TCPKeepalive: keepalive(0, 0, 0)}},
		// A TOML integer is the text of its decimal digits: time_ms.
		// (JSON refuses a number; see TestBadConfig.)
		{"tcp_keepalive", "60000", "", anylisten.Options{TCPKeepalive: keepalive(time.Minute, 0, 0)}},
		{"tcp_reuse_port", "true", "true", anylisten.Options{TCPReusePort: true}},
		{"recv_buffer_size", "65536", "65536", anylisten.Options{RecvBufferSize: 65536}},
		{"send_buffer_size", "65536", "65536", anylisten.Options{SendBufferSize: 65536}},
		{"tcp_only_v6", "true", "true", anylisten.Options{TCPOnlyV6: true}},
		{"tcp_listen_backlog", "128", "128", anylisten.Options{TCPListenBacklog: 128}},
		{"tcp_kill_port", "true", "true", anylisten.Options{TCPKillPort: true}},
		{"npipe_security_descriptor", `"D:P(A;;GA;;;OW)"`, `"D:P(A;;GA;;;OW)"`, anylisten.Options{NpipeSecurityDescriptor: "D:P(A;;GA;;;OW)"}},
	}
	covered := make(map[string]bool)
	for _, tt := range tests {
		for _, ext := range []string{".toml", ".json"} {
			value := tt.toml
			if ext == ".json" {
				value = tt.json
			}
			if value == "" {
				continue
			}
			covered[ext+" "+tt.key] = true
			t.Run(ext[1:]+"/"+tt.key+"="+value, func(t *testing.T) {
				path := writeConfig(t, ext, tt.key, value)
				cfg, err := loadConfig(path)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, cfg.Options); diff != "" {
					t.Errorf("%s = %s decodes to the wrong Options (-want +got):\n%s", tt.key, value, diff)
				}
			})
		}
	}
	for _, key := range optionKeys(t) {
		for _, ext := range []string{".toml", ".json"} {
			if !covered[ext+" "+key] {
				t.Errorf("no %s case for the Options key %s", ext, key)
			}
		}
	}
}

// optionKeys returns the config keys of anylisten.Options, from the toml
// tags, and checks that the json tags agree.
func optionKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	typ := reflect.TypeFor[anylisten.Options]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		j, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if key == "-" && j == "-" {
			continue // not configuration (the UnixRefused hook)
		}
		if key == "" || j != key {
			t.Errorf("Options.%s: toml key %q, json key %q; want both the same", f.Name, key, j)
		}
		keys = append(keys, key)
	}
	return keys
}

// writeConfig writes a config file (TOML or JSON by ext) with an address
// and key = value, and returns its path.
func writeConfig(t *testing.T, ext, key, value string) string {
	t.Helper()
	content := "addr = \"./echo.sock\"\n" + key + " = " + value + "\n"
	if ext == ".json" {
		content = `{"addr": "./echo.sock", ` + strconv.Quote(key) + ": " + value + "}\n"
	}
	path := filepath.Join(t.TempDir(), "echo"+ext)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDecodeAddresses decodes addr and addrs from TOML and JSON.
func TestDecodeAddresses(t *testing.T) {
	for _, tt := range []struct {
		name, ext, content string
		want               []string // the addresses' canonical forms
	}{
		{"addr", ".toml", `addr = "./echo.sock"`, []string{"./echo.sock"}},
		{"addr", ".json", `{"addr": "./echo.sock"}`, []string{"./echo.sock"}},
		{"canonical", ".toml", `addr = "unix:///run/echo.sock"`, []string{"/run/echo.sock"}},
		{"canonical", ".json", `{"addr": "tcp://127.0.0.1:7000"}`, []string{"127.0.0.1:7000"}},
		{"addrs", ".toml", `addrs = ["127.0.0.1:7000", "./echo.sock", "@echo"]`, []string{"127.0.0.1:7000", "./echo.sock", "@echo"}},
		{"addrs", ".json", `{"addrs": ["127.0.0.1:7000", "./echo.sock", "@echo"]}`, []string{"127.0.0.1:7000", "./echo.sock", "@echo"}},
		{"addrs one string", ".toml", `addrs = "127.0.0.1:7000"`, []string{"127.0.0.1:7000"}},
		{"addrs one string", ".json", `{"addrs": "127.0.0.1:7000"}`, []string{"127.0.0.1:7000"}},
		{"addr and addrs", ".toml", "addr = \"./echo.sock\"\naddrs = [\"127.0.0.1:7000\"]", []string{"./echo.sock", "127.0.0.1:7000"}},
		{"addr and addrs", ".json", `{"addr": "./echo.sock", "addrs": ["127.0.0.1:7000"]}`, []string{"./echo.sock", "127.0.0.1:7000"}},
	} {
		t.Run(tt.ext[1:]+"/"+tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "echo"+tt.ext)
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range cfg.addresses() {
				got = append(got, a.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s: wrong addresses (-want +got):\n%s", tt.content, diff)
			}
		})
	}
}

// TestBadConfig checks that a config the server cannot use is an error
// that names the file and quotes the bad value or key.
func TestBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name, ext, content string
		want               string // in the error, besides the file's path
	}{
		{"relative path without ./", ".toml", `addr = "echo.sock"`, `invalid listen address "echo.sock"`},
		{"port out of range", ".toml", `addr = "127.0.0.1:99999"`, `invalid listen address "127.0.0.1:99999"`},
		{"bad address in addrs", ".toml", `addrs = ["127.0.0.1:7000", "echo.sock"]`, `invalid listen address "echo.sock"`},
		{"empty address", ".toml", `addr = ""`, `invalid listen address ""`},
		{"chmod word", ".toml", "addr = \"./echo.sock\"\nunix_listen_chmod = \"wheel\"", `invalid UNIX socket mode "wheel"`},
		{"chmod not octal", ".toml", "addr = \"./echo.sock\"\nunix_listen_chmod = \"0999\"", `invalid UNIX socket mode "0999"`},
		{"keepalive parts", ".toml", "addr = \"./echo.sock\"\ntcp_keepalive = \"1:2:3:4\"", `invalid TCP keepalive "1:2:3:4"`},
		{"keepalive word", ".toml", "addr = \"./echo.sock\"\ntcp_keepalive = \"soon\"", `invalid TCP keepalive "soon"`},
		{"negative uid", ".toml", "addr = \"./echo.sock\"\nunix_listen_uid = -1", `"unix_listen_uid"): -1 is out of range`},
		{"uid as string", ".toml", "addr = \"./echo.sock\"\nunix_listen_uid = \"1000\"", `(last key "unix_listen_uid"): incompatible types`},
		{"misspelt key", ".toml", "addr = \"./echo.sock\"\nunix_listen_chmode = \"group\"", `unknown key "unix_listen_chmode"`},
		{"no address", ".toml", "unix_listen_unlink = true", "no listen address"},
		{"syntax", ".toml", "addr = ", "line 1"},
		{"relative path without ./", ".json", `{"addr": "echo.sock"}`, `invalid listen address "echo.sock"`},
		{"bad address in addrs", ".json", `{"addrs": ["127.0.0.1:7000", "echo.sock"]}`, `invalid listen address "echo.sock"`},
		{"chmod word", ".json", `{"addr": "./echo.sock", "unix_listen_chmod": "wheel"}`, `invalid UNIX socket mode "wheel"`},
		{"chmod number", ".json", `{"addr": "./echo.sock", "unix_listen_chmod": 432}`, `cannot unmarshal number into Go struct field Config.Options.unix_listen_chmod`},
		{"keepalive parts", ".json", `{"addr": "./echo.sock", "tcp_keepalive": "1:2:3:4"}`, `invalid TCP keepalive "1:2:3:4"`},
		{"keepalive number", ".json", `{"addr": "./echo.sock", "tcp_keepalive": 60000}`, `cannot unmarshal number into Go struct field Config.Options.tcp_keepalive`},
		{"uid as string", ".json", `{"addr": "./echo.sock", "unix_listen_uid": "1000"}`, `line 1, column 49: json: cannot unmarshal string`},
		{"misspelt key", ".json", `{"addr": "./echo.sock", "unix_listen_chmode": "group"}`, `unknown field "unix_listen_chmode"`},
		{"no address", ".json", `{"unix_listen_unlink": true}`, "no listen address"},
		{"syntax", ".json", "{\n\"addr\": }", "line 2, column 9"},
		{"two objects", ".json", `{"addr": "./echo.sock"} {}`, "line 1, column 25: more data after the JSON object"},
		{"unknown extension", ".yaml", `addr: ./echo.sock`, `unknown config file type ".yaml"`},
	} {
		t.Run(tt.ext[1:]+"/"+tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "echo"+tt.ext)
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(path)
			if err == nil {
				t.Fatalf("%s: no error, Config %+v; want one with %q", tt.content, cfg, tt.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, path+": ") || !strings.Contains(msg, tt.want) {
				t.Errorf("%s: error %q; want it to start with the path and contain %q", tt.content, msg, tt.want)
			}
		})
	}
}

// dial connects to a.
func dial(t *testing.T, a anylisten.Address) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := anylisten.Dial(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg on c, which stays open, and checks that it comes back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo of %q: %v", msg, err)
	}
	if string(got) != msg {
		t.Errorf("echo of %q: %q", msg, got)
	}
}

// checkEcho sends msg on a new connection to a while reading, closes the
// sending side, and checks that exactly msg comes back before EOF.
func checkEcho(t *testing.T, a anylisten.Address, msg []byte) {
	t.Helper()
	c := dial(t, a)
	c.SetDeadline(time.Now().Add(timeout))
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		sent <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Errorf("%s: reading the echo: %v", a, err)
	}
	if err := <-sent; err != nil {
		t.Errorf("%s: sending: %v", a, err)
	}
	if !bytes.Equal(got, msg) {
		t.Errorf("%s: sent %d bytes, got %d back (equal prefix: %d bytes)", a, len(msg), len(got), commonPrefix(got, msg))
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
