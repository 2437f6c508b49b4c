package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/anylisten/anylisten"
	"github.com/anylisten/anylisten/internal/testenv"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// parse runs the kingpin application on args and returns what it set.
func parse(args ...string) (*config, error) {
	var c config
	_, err := newApp(&c).Parse(args)
	return &c, err
}

// abstractName returns an abstract socket name no other test uses.
func abstractName(suffix string) string {
	return fmt.Sprintf("anylisten-kingpin-%d-%d-%s", os.Getpid(), time.Now().UnixNano(), suffix)
}

// TestServeBridgedFlags parses --web.listen-address and anylisten's
// options bridged into kingpin, listens on what they say (a TCP port 0, a
// UNIX socket file and two abstract names, each way of writing one that
// kingpin does not expand) and serves one HTTP request on each.
func TestServeBridgedFlags(t *testing.T) {
	sock := filepath.Join(testenv.SocketDir(t), "x.sock")
	args := []string{
		"--web.listen-address=127.0.0.1:0",
		"--web.listen-address", sock,
		"--unix-listen-chmod", "owner",
		"--tcp-keepalive=60000",
		"--unix-listen-unlink",
		"--no-tcp-reuse-port",
	}
	want := []string{sock}
	if runtime.GOOS == "linux" {
		a, b := abstractName("a"), abstractName("b")
		args = append(args, "--web.listen-address", "unix-abstract:"+a, "--web.listen-address=@"+b)
		want = append(want, "@"+a, "@"+b)
	}

	c, err := parse(args...)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	wantOpts := anylisten.Options{
		UnixListenUnlink: true,
		UnixListenChmod:  0o600,
		TCPKeepalive:     &anylisten.TCPKeepalive{Idle: 60 * time.Second},
	}
	if c.opts.UnixRefused == nil {
		t.Error("no UnixRefused hook: a refused peer would go unlogged")
	}
	if diff := cmp.Diff(wantOpts, c.opts, cmpopts.IgnoreFields(anylisten.Options{}, "UnixRefused")); diff != "" {
		t.Errorf("%q set the options (-want +got):\n%s", args, diff)
	}

	// An abstract name has no file: the socket file's mode is an error
	// there. Each address is opened with the options it takes, and the
	// listeners merged.
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Timeout)
	defer cancel()
	noFile := c.opts
	noFile.UnixListenChmod = 0
	var lns []net.Listener
	for _, a := range c.addrs {
		o := &c.opts
		if a.Kind() == anylisten.KindAbstract {
			o = &noFile
		}
		l, err := anylisten.Listen(ctx, a, o)
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, l)
	}
	ln, err := anylisten.Merge(lns...)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(hello)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
	}()

	// The TCP port is the one the kernel chose for port 0.
	var port int
	for _, a := range ln.Addr().(anylisten.MultiAddr) {
		if tcp, ok := a.(*net.TCPAddr); ok {
			port = tcp.Port
		}
	}
	if port == 0 {
		t.Fatalf("no TCP address with a port in %v", ln.Addr())
	}
	want = append(want, fmt.Sprintf("127.0.0.1:%d", port))

	for _, addr := range want {
		if got, want := get(t, anylisten.MustParseAddress(addr)), "Hello from "+addr+"\n"; got != want {
			t.Errorf("GET over %s: %q; want %q", addr, got, want)
		}
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v; want a socket with %v (--unix-listen-chmod owner)", sock, fi.Mode(), fs.FileMode(0o600))
	}
}

// get sends GET http://kingpin/ to the server on a and returns the body.
func get(t *testing.T, a anylisten.Address) string {
	t.Helper()
	return testenv.HTTPGet(t, a.DialContext, "http://kingpin/")
}

// TestListenAddressArgs checks how kingpin reads --web.listen-address: the
// default, repeats, and an abstract name, which kingpin's @file expansion
// takes as a file name unless it is written unix-abstract:NAME or
// --web.listen-address=@NAME; and that anylisten's options keep their
// errors.
func TestListenAddressArgs(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		want    string // the addresses
		wantErr string
	}{
		{args: nil, want: defaultAddress},
		{args: []string{"--web.listen-address", "9000"}, want: ":9000"},
		{args: []string{"--web.listen-address", "9000", "--web.listen-address=./x.sock"}, want: ":9000,./x.sock"},
		{args: []string{"--web.listen-address=@admin"}, want: "@admin"},
		{args: []string{"--web.listen-address", "unix-abstract:admin"}, want: "@admin"},
		{args: []string{"--web.listen-address", "@admin"}, wantErr: "expected argument for flag '--web.listen-address'"},
		{args: []string{"--web.listen-address", "x.sock"}, wantErr: `invalid listen address "x.sock"`},
		{args: []string{"--unix-listen-chmod=wheel"}, wantErr: `invalid UNIX socket mode "wheel"`},
		{args: []string{"--tcp-keepalive"}, wantErr: "expected argument for flag '--tcp-keepalive'"},
		{args: []string{"--tcp-reuse-port=yes"}, wantErr: "unexpected yes"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c, err := parse(tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("%q: error %v; want one with %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", tt.args, err)
			}
			if got := c.addrs.String(); got != tt.want {
				t.Errorf("%q gave the addresses %q; want %q", tt.args, got, tt.want)
			}
		})
	}
}

// TestHelp checks that -h and --help list --web.listen-address with its
// default and every flag of anylisten's Options with the name of its
// value.
func TestHelp(t *testing.T) {
	goFlags := flag.NewFlagSet("", flag.ContinueOnError)
	new(anylisten.Options).RegisterFlags(goFlags)
	want := []string{"--web.listen-address=" + defaultAddress + " ...", "unix-abstract:NAME"}
	goFlags.VisitAll(func(f *flag.Flag) {
		name, _ := flag.UnquoteUsage(f)
		if name == "" {
			want = append(want, "--[no-]"+f.Name)
		} else {
			want = append(want, "--"+f.Name+"="+name)
		}
	})
	if len(want) < 2+11 {
		t.Fatalf("RegisterFlags registered %d flags: %q; want at least tokio-listener's 11", len(want)-2, want)
	}

	for _, arg := range []string{"--help", "-h"} {
		t.Run(arg, func(t *testing.T) {
			var c config
			app := newApp(&c)
			var out strings.Builder
			status := -1
			app.UsageWriter(&out).Terminate(func(code int) { status = code })
			app.Parse([]string{arg})
			if status != 0 {
				t.Errorf("exit status %d; want 0", status)
			}
			for _, w := range want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("help lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
