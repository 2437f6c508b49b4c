package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/anylisten/anylisten/internal/testenv"
)

// unitFiles are the systemd units shipped with hello.
var unitFiles = []string{"hello.socket", "hello-unix.socket", "hello.service", "hello-inetd.socket", "hello-inetd@.service"}

// installedHello is the path the units run hello from.
const installedHello = "/usr/local/bin/hello"

// unit is a parsed unit file: section -> key -> values, in order.
type unit map[string]map[string][]string

// readUnit parses the unit file name with the syntax of systemd.syntax(7)
// that these units use: sections, key=value lines, comments. A line
// continued with a backslash is an error, as it is not needed here.
func readUnit(t *testing.T, name string) unit {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: continued lines are not supported by this test", name, n)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", name, n, line)
			}
			key = strings.TrimSpace(key)
			u[section][key] = append(u[section][key], strings.TrimSpace(value))
		}
	}
	return u
}

// get returns the one value of key in section, failing the test unless
// there is exactly one.
func (u unit) get(t *testing.T, name, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("%s: [%s] %s= is set %d times, want once: %q", name, section, key, len(v), v)
	}
	return v[0]
}

// splitCommand splits an ExecStart= line into words as systemd does for
// the forms these units use: words separated by spaces, a word in double
// quotes with C escapes.
func splitCommand(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	for s := strings.TrimLeft(line, " "); s != ""; s = strings.TrimLeft(s, " ") {
		if s[0] != '"' {
			w, rest, _ := strings.Cut(s, " ")
			if strings.ContainsAny(w, `"'\$%`) {
				t.Fatalf("ExecStart=%s: the word %q needs systemd's full unquoting, which this test lacks", line, w)
			}
			words, s = append(words, w), rest
			continue
		}
		end := 1
		for end < len(s) && s[end] != '"' {
			if s[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(s) || (end+1 < len(s) && s[end+1] != ' ') {
			t.Fatalf("ExecStart=%s: unterminated quoted word", line)
		}
		w, err := strconv.Unquote(s[:end+1])
		if err != nil {
			t.Fatalf("ExecStart=%s: %q: %v", line, s[:end+1], err)
		}
		words, s = append(words, w), s[end+1:]
	}
	return words
}

// helloArgs returns the arguments ExecStart= of the service name gives
// hello.
func helloArgs(t *testing.T, name string, u unit) []string {
	t.Helper()
	cmd := splitCommand(t, u.get(t, name, "Service", "ExecStart"))
	if cmd[0] != installedHello {
		t.Fatalf("%s: ExecStart= runs %s, want %s", name, cmd[0], installedHello)
	}
	return cmd[1:]
}

// TestSystemdUnits checks the unit files: the settings they rely on, that
// their command lines work when started the way their sockets say (under
// systemd-socket-activate, since systemd is not necessarily PID 1 here),
// and, where systemd-analyze exists, systemd-analyze verify.
func TestSystemdUnits(t *testing.T) {
	units := map[string]unit{}
	for _, name := range unitFiles {
		units[name] = readUnit(t, name)
	}

	t.Run("hello.socket and hello-unix.socket", func(t *testing.T) {
		t.Parallel()
		sock, unixSock, svc := units["hello.socket"], units["hello-unix.socket"], units["hello.service"]
		// The settings the README and the service rely on.
		if got := sock.get(t, "hello.socket", "Socket", "ListenStream"); got != "8080" {
			t.Errorf("hello.socket: ListenStream=%s, want 8080", got)
		}
		sockPath := unixSock.get(t, "hello-unix.socket", "Socket", "ListenStream")
		if sockPath != "/run/hello/hello.sock" {
			t.Errorf("hello-unix.socket: ListenStream=%s, want /run/hello/hello.sock", sockPath)
		}
		names := []string{
			sock.get(t, "hello.socket", "Socket", "FileDescriptorName"),
			unixSock.get(t, "hello-unix.socket", "Socket", "FileDescriptorName"),
		}
		if !slices.Equal(names, []string{"http", "unix"}) {
			t.Errorf("FileDescriptorName= of hello.socket and hello-unix.socket: %q, want http and unix", names)
		}
		for _, name := range []string{"hello.socket", "hello-unix.socket"} {
			if got := units[name].get(t, name, "Socket", "Service"); got != "hello.service" {
				t.Errorf("%s: Service=%s, want hello.service", name, got)
			}
			if got := units[name]["Socket"]["Accept"]; len(got) != 0 {
				t.Errorf("%s: Accept=%q, want it unset (no)", name, got)
			}
			if got := units[name].get(t, name, "Install", "WantedBy"); got != "sockets.target" {
				t.Errorf("%s: WantedBy=%s, want sockets.target", name, got)
			}
		}
		if got := strings.Fields(svc.get(t, "hello.service", "Service", "Sockets")); !slices.Equal(got, []string{"hello.socket", "hello-unix.socket"}) {
			t.Errorf("hello.service: Sockets=%q, want hello.socket hello-unix.socket", got)
		}
		if got := svc["Service"]["StandardInput"]; len(got) != 0 {
			t.Errorf("hello.service: StandardInput=%q, want it unset", got)
		}
		args := helloArgs(t, "hello.service", svc)
		if len(args) != 2 || args[0] != "sd-listen:*" {
			t.Fatalf("hello.service runs hello %q, want sd-listen:* and a text", args)
		}

		// Run it as systemd would: both sockets (a TCP port of the
		// test's choosing for 8080, a socket file in a new directory
		// for /run/hello/hello.sock), named, as fds 3 and 4.
		testenv.NeedTool(t, "curl")
		path := filepath.Join(testenv.SocketDir(t), filepath.Base(sockPath))
		a := socketActivate(t, 1, []string{"-l", path, "--fdname=" + strings.Join(names, ":")}, args...)
		text := args[1]
		checkBody(t, fetch(t, localURL(a.ports[0])), text)
		checkBody(t, fetch(t, "--unix-socket", path, "http://x/"), text)
		a.checkIsHello(t)
	})

	t.Run("hello-inetd.socket", func(t *testing.T) {
		t.Parallel()
		sock, svc := units["hello-inetd.socket"], units["hello-inetd@.service"]
		if got := sock.get(t, "hello-inetd.socket", "Socket", "ListenStream"); got != "8081" {
			t.Errorf("hello-inetd.socket: ListenStream=%s, want 8081", got)
		}
		if got := sock.get(t, "hello-inetd.socket", "Socket", "Accept"); got != "yes" {
			t.Errorf("hello-inetd.socket: Accept=%s, want yes", got)
		}
		if got := sock.get(t, "hello-inetd.socket", "Install", "WantedBy"); got != "sockets.target" {
			t.Errorf("hello-inetd.socket: WantedBy=%s, want sockets.target", got)
		}
		// With Accept=yes systemd passes the connection as fd 3, unless
		// StandardInput=socket puts it on stdin and stdout.
		flags := []string{"-a"}
		want := "sd-listen"
		if v := svc["Service"]["StandardInput"]; slices.Equal(v, []string{"socket"}) {
			flags, want = append(flags, "--inetd"), "inetd"
		}
		args := helloArgs(t, "hello-inetd@.service", svc)
		if len(args) != 2 || args[0] != want {
			t.Fatalf("hello-inetd@.service runs hello %q, want %s and a text", args, want)
		}

		testenv.NeedTool(t, "curl")
		a := socketActivate(t, 1, flags, args...)
		for range 2 {
			checkBody(t, fetch(t, localURL(a.ports[0])), args[1])
		}
		a.checkChildren(t, 2)
	})

	t.Run("systemd-analyze verify", func(t *testing.T) {
		t.Parallel()
		testenv.VerifyUnits(t, installedHello, helloPath, unitFiles...)
	})
}
