package main

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/anylisten/anylisten"
	"github.com/anylisten/anylisten/internal/testenv"
)

// TestListenTCPAndUnix runs the server on a TCP port and a UNIX socket at
// once, with options in pflag's syntax, and asks both over HTTP.
func TestListenTCPAndUnix(t *testing.T) {
	p, dir, port := startListening(t, func(port int) []string {
		return []string{
			"--listen", "127.0.0.1:" + strconv.Itoa(port),
			"--listen", "./x.sock",
			"--unix-listen-chmod", "owner",
			"--tcp-keepalive=60000",
		}
	})
	sock := filepath.Join(dir, "x.sock")
	tcpAddr := "127.0.0.1:" + strconv.Itoa(port)

	for _, tt := range []struct {
		addr string
		want string // the response body
	}{
		{tcpAddr, "Hello from tcp " + tcpAddr + "\n"},
		{sock, "Hello from unix ./x.sock\n"},
	} {
		if got := get(t, anylisten.MustParseAddress(tt.addr)); got != tt.want {
			t.Errorf("GET over %s: %q; want %q", tt.addr, got, tt.want)
		}
	}

	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v; want a socket with %v (--unix-listen-chmod owner)", sock, fi.Mode(), fs.FileMode(0o600))
	}

	if code := p.Stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit status %d after SIGTERM; want 0; stderr:\n%s", code, p.Stderr.String())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after exit, Lstat(%s): %v; want the socket file removed", sock, err)
	}
}

// get sends GET http://pflag/ to the server on a and returns the body.
func get(t *testing.T, a anylisten.Address) string {
	t.Helper()
	return testenv.HTTPGet(t, a.DialContext, "http://pflag/")
}

// TestHelp checks that --help and -h list --listen and every flag of
// anylisten's Options, with the names of their values.
func TestHelp(t *testing.T) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	new(anylisten.Options).RegisterFlags(fs)
	var want []string
	fs.VisitAll(func(f *flag.Flag) {
		name, _ := flag.UnquoteUsage(f)
		want = append(want, strings.TrimSpace("--"+f.Name+" "+name))
	})
	if len(want) < 11 {
		t.Fatalf("RegisterFlags registered %d flags: %q; want at least tokio-listener's 11", len(want), want)
	}
	want = append(want, "--listen ADDRESS", "Usage: pflag [--listen ADDRESS]... [OPTIONS]", "sd-listen:NAME")

	for _, arg := range []string{"--help", "-h"} {
		t.Run(arg, func(t *testing.T) {
			p := start(t, testenv.SocketDir(t), arg)
			if code := p.WaitExit(t); code != 0 {
				t.Errorf("exit status %d; want 0", code)
			}
			help := p.Stderr.String()
			for _, w := range want {
				if !strings.Contains(help, w) {
					t.Errorf("help lacks %q:\n%s", w, help)
				}
			}
		})
	}
}

// TestBadFlags checks that a bad flag is a one-line error that quotes it,
// with exit status 2.
func TestBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--unix-listen-chmod", "wheel"},
			`pflag: invalid argument "wheel" for "--unix-listen-chmod" flag: anylisten: invalid UNIX socket mode "wheel": want owner, group, everybody or octal`},
		{[]string{"--unix-listen-chmod=0999"}, `invalid argument "0999" for "--unix-listen-chmod" flag: anylisten: invalid UNIX socket mode "0999"`},
		{[]string{"--listen", "x.sock"}, `invalid argument "x.sock" for "--listen" flag: anylisten: invalid listen address "x.sock"`},
		{[]string{"--listen=127.0.0.1:99999"}, `invalid argument "127.0.0.1:99999" for "--listen" flag: anylisten: invalid listen address "127.0.0.1:99999"`},
		{[]string{"--tcp-keepalive=1:2:3:4"}, `invalid argument "1:2:3:4" for "--tcp-keepalive" flag: anylisten: invalid TCP keepalive "1:2:3:4"`},
		{[]string{"--unix-listen-uid=-1"}, `invalid argument "-1" for "--unix-listen-uid" flag: anylisten: invalid user or group id "-1"`},
		{[]string{"--recv-buffer-size=big"}, `invalid argument "big" for "--recv-buffer-size" flag`},
		{[]string{"--tcp-keepalive"}, "flag needs an argument: --tcp-keepalive"},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
		// Single-dash long flags, which the standard flag package takes,
		// are clusters of one-letter flags to pflag.
		{[]string{"-listen", "./x.sock"}, "unknown shorthand flag: 'l' in -listen"},
		{[]string{"./x.sock"}, `unexpected argument "./x.sock"`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			dir := testenv.SocketDir(t)
			p := start(t, dir, tt.args...)
			code := p.WaitExit(t)
			stderr := p.Stderr.String()
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("pflag %q: exit status %d, stderr:\n%s\nwant status 2 and %q", tt.args, code, stderr, tt.want)
			}
			if lines := strings.Count(stderr, "\n"); lines != 1 {
				t.Errorf("pflag %q wrote %d lines; want the error alone, in one line:\n%s", tt.args, lines, stderr)
			}
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
				t.Errorf("left behind in the working directory: %v, %v", entries, err)
			}
		})
	}
}

// TestListenFails checks that an address or option Listen refuses exits
// with status 1, closing what was already opened.
func TestListenFails(t *testing.T) {
	port := strconv.Itoa(testenv.FreePort(t))
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"port twice", []string{"--listen", "./x.sock", "--listen", "127.0.0.1:" + port, "--listen", "127.0.0.1:" + port},
			"127.0.0.1:" + port + ": the address is given twice (addresses 2 and 3 of 3; a flag set parsed twice repeats every --listen): address already in use"},
		{"negative buffer size", []string{"--listen", "./x.sock", "--recv-buffer-size=-1"}, "option recv_buffer_size is -1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := testenv.SocketDir(t)
			p := start(t, dir, tt.args...)
			if code := p.WaitExit(t); code != 1 || !strings.Contains(p.Stderr.String(), tt.want) {
				t.Errorf("pflag %q: exit status %d, stderr:\n%s\nwant status 1 and %q", tt.args, code, p.Stderr.String(), tt.want)
			}
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
				t.Errorf("left behind in the working directory: %v, %v", entries, err)
			}
		})
	}
}
