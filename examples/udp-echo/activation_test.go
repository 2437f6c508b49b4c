package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/anylisten/anylisten/internal/testenv"
)

// activation is a running systemd-socket-activate -d and the UDP ports it
// listens on. It execs udp-echo on the first datagram: from then on the
// process is udp-echo.
type activation struct {
	*testenv.Process
	ports []int
}

// socketActivate runs systemd-socket-activate -d -l 127.0.0.1:PORT...
// FLAGS... -- udp-echo ARGS..., with nports UDP ports of its own choosing
// (it does not take port 0), and waits until it listens on all of them and
// on those of the -l options in flags. args gives udp-echo's arguments for
// the ports. Ports that another process took in the meantime are replaced
// by new ones.
func socketActivate(t *testing.T, nports int, flags []string, args func(ports []int) []string) *activation {
	t.Helper()
	return socketActivateOn(t, nports, localUDP, flags, args)
}

// socketActivateOn is socketActivate with -l listen(PORT) for each port.
func socketActivateOn(t *testing.T, nports int, listen func(port int) string, flags []string, args func(ports []int) []string) *activation {
	t.Helper()
	p, ports := testenv.SocketActivate(t, testenv.SocketActivation{
		Datagram: true,
		Ports:    nports,
		Listen:   listen,
		Flags:    flags,
		Command:  func(ports []int) []string { return append([]string{echoPath}, args(ports)...) },
	})
	return &activation{p, ports}
}

// localUDP is 127.0.0.1:port.
func localUDP(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// checkIsEcho checks that a has become udp-echo, by exec, and still runs;
// then stops it with SIGTERM and checks that it exits with status 0.
func (a *activation) checkIsEcho(t *testing.T) {
	t.Helper()
	waitLog(t, a.Process, "udp-echo: listening on ")
	a.CheckExecd(t, echoPath)
	if code := a.Stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("udp-echo exited with %d after SIGTERM, want 0; stderr:\n%s", code, a.Stderr.String())
	}
}

// TestSocketActivation runs udp-echo under the real
// systemd-socket-activate --datagram, which execs it on the first
// datagram (that datagram waits in the socket), as systemd does for a
// ListenDatagram= socket:
//
//	systemd-socket-activate -d -l 127.0.0.1:PORT udp-echo sd-listen
//	systemd-socket-activate -d -l 127.0.0.1:PORT udp-echo 127.0.0.1:PORT
//	systemd-socket-activate -d -l 127.0.0.1:P1 -l 127.0.0.1:P2 --fdname=foo:bar udp-echo sd-listen:bar
//	systemd-socket-activate -d -l 127.0.0.1:P1 -l 127.0.0.1:P2 udp-echo 127.0.0.1:P2
//	systemd-socket-activate -d -l /DIR/echo.sock udp-echo sd-listen
//	systemd-socket-activate -d -l /DIR/echo.sock udp-echo /DIR/echo.sock
//	systemd-socket-activate -d -l @NAME udp-echo sd-listen
func TestSocketActivation(t *testing.T) {
	t.Run("sd-listen", func(t *testing.T) {
		t.Parallel()
		a := socketActivate(t, 1, nil, func([]int) []string { return []string{"sd-listen"} })
		socatEcho(t, "UDP:"+localUDP(a.ports[0]), messages...)
		waitLog(t, a.Process, "udp-echo: listening on "+localUDP(a.ports[0])+"\n")
		a.checkIsEcho(t)
	})
	t.Run("a plain address takes the passed socket", func(t *testing.T) {
		t.Parallel()
		// Binding anew would fail: the passed socket holds the port.
		a := socketActivate(t, 1, nil, func(ports []int) []string { return []string{localUDP(ports[0])} })
		socatEcho(t, "UDP:"+localUDP(a.ports[0]), messages...)
		a.checkIsEcho(t)
	})
	t.Run("named", func(t *testing.T) {
		t.Parallel()
		a := socketActivate(t, 2, []string{"--fdname=foo:bar"}, func([]int) []string { return []string{"sd-listen:bar"} })
		socatEcho(t, "UDP:"+localUDP(a.ports[1]), messages...)
		waitLog(t, a.Process, "udp-echo: listening on "+localUDP(a.ports[1])+"\n")
		a.checkIsEcho(t)
	})
	t.Run("unclaimed socket", func(t *testing.T) {
		t.Parallel()
		// Two sockets passed, one asked for: udp-echo serves that one,
		// and says which passed socket nobody listens on.
		a := socketActivate(t, 2, nil, func(ports []int) []string { return []string{localUDP(ports[1])} })
		socatEcho(t, "UDP:"+localUDP(a.ports[1]), messages...)
		waitLog(t, a.Process, fmt.Sprintf("udp-echo: passed socket fd 3 (unknown) on %s is not listened on\n", localUDP(a.ports[0])))
		a.checkIsEcho(t)
	})
	for _, arg := range []string{"sd-listen", "PATH"} {
		t.Run("unixgram path, "+arg, func(t *testing.T) {
			t.Parallel()
			testenv.NeedTool(t, "socat")
			dir := testenv.SocketDir(t)
			path := filepath.Join(dir, "echo.sock")
			if arg == "PATH" {
				arg = path
			}
			a := socketActivate(t, 0, []string{"-l", path}, func([]int) []string { return []string{arg} })
			// Bound at its path by systemd-socket-activate, the socket
			// answers from that path, as socat's UNIX-SENDTO wants.
			socatEcho(t, "UNIX-SENDTO:"+path+",bind="+filepath.Join(dir, "client.sock"), messages...)
			waitLog(t, a.Process, "udp-echo: listening on "+path+"\n")
			a.checkIsEcho(t)
			if _, err := os.Lstat(path); err != nil {
				t.Errorf("udp-echo removed the socket file systemd-socket-activate made: %v", err)
			}
		})
	}
	t.Run("abstract", func(t *testing.T) {
		t.Parallel()
		testenv.NeedTool(t, "socat")
		name := fmt.Sprintf("anylisten-test-%016x", rand.Uint64())
		a := socketActivate(t, 0, []string{"-l", "@" + name}, func([]int) []string { return []string{"sd-listen"} })
		socatEcho(t, "ABSTRACT-SENDTO:"+name+",bind="+name+"-client", messages...)
		waitLog(t, a.Process, "udp-echo: listening on @"+name+"\n")
		a.checkIsEcho(t)
	})
}

// installedEcho is the path the units run udp-echo from.
const installedEcho = "/usr/local/bin/udp-echo"

// unitSetting returns the one value of key in the unit file name (this
// directory's), failing the test unless it is set exactly once. Sections
// are not told apart: no key of these units is in two.
func unitSetting(t *testing.T, name, key string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") && strings.TrimSpace(k) == key {
			values = append(values, strings.TrimSpace(v))
		}
	}
	if len(values) != 1 {
		t.Fatalf("%s: %s= is set %d times, want once: %q", name, key, len(values), values)
	}
	return values[0]
}

// TestSystemdUnits checks udp-echo.socket and udp-echo.service: the
// settings they rely on, that the service's command line serves the
// socket when started the way systemd starts it (under
// systemd-socket-activate, since systemd is not necessarily PID 1 here),
// and systemd-analyze verify.
func TestSystemdUnits(t *testing.T) {
	const socket, service = "udp-echo.socket", "udp-echo.service"
	if got := unitSetting(t, socket, "ListenDatagram"); got != "8080" {
		t.Errorf("%s: ListenDatagram=%s, want 8080", socket, got)
	}
	for key, want := range map[string]string{
		"Type": "notify", "NotifyAccess": "all", "ExecReload": "/bin/kill -HUP $MAINPID", "DynamicUser": "yes",
	} {
		if got := unitSetting(t, service, key); got != want {
			t.Errorf("%s: %s=%s, want %s", service, key, got, want)
		}
	}
	cmd := strings.Fields(unitSetting(t, service, "ExecStart"))
	if cmd[0] != installedEcho {
		t.Fatalf("%s: ExecStart= runs %s, want %s", service, cmd[0], installedEcho)
	}

	t.Run("serves", func(t *testing.T) {
		t.Parallel()
		// ListenDatagram=8080 is [::]:8080, dual stack, as -l PORT is.
		testenv.NeedTool(t, "socat")
		a := socketActivateOn(t, 1, strconv.Itoa, nil, func([]int) []string { return cmd[1:] })
		port := a.ports[0]
		socatEcho(t, "UDP:"+localUDP(port), messages...)
		waitLog(t, a.Process, fmt.Sprintf("udp-echo: listening on [::]:%d\n", port))
		a.checkIsEcho(t)
	})

	t.Run("systemd-analyze verify", func(t *testing.T) {
		t.Parallel()
		testenv.VerifyUnits(t, installedEcho, echoPath, socket, service)
	})
}
