package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FreePorts returns n different ports of network ("tcp" or "udp") on
// 127.0.0.1 that were free a moment ago, with FreePort's caveat.
func FreePorts(t testing.TB, network string, n int) []int {
	t.Helper()
	free := FreePort
	switch network {
	case "tcp":
	case "udp":
		free = FreeUDPPort
	default:
		t.Fatalf("FreePorts: unknown network %q", network)
	}
	var ports []int
	for len(ports) < n {
		if p := free(t); !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports
}

// SocketActivation is a command line of the real systemd-socket-activate,
// which SocketActivate runs:
//
//	systemd-socket-activate [--datagram] -l LISTEN(PORT)... FLAGS... -- COMMAND(PORTS)...
type SocketActivation struct {
	Datagram bool                         // --datagram, on UDP ports; else TCP ports
	Ports    int                          // how many ports of the test's choosing it listens on
	Listen   func(port int) string        // the -l argument for a port; nil for the bare port: [::]:PORT, dual stack
	Flags    []string                     // more options; the sockets of their -l options are waited for too
	Command  func(ports []int) []string   // the program it runs and its arguments, given the ports
	Start    func(cmd *exec.Cmd) *Process // starts cmd; nil for StartProcess with no kill function
}

// SocketActivate runs systemd-socket-activate as sa says, on ports it
// chooses (systemd-socket-activate does not take port 0), and waits until
// it listens on all its sockets. Ports that another process took in the
// meantime are replaced by new ones. It returns the process and the ports.
// The test is skipped outside Linux, and where the tool is missing (see
// NeedTool).
func SocketActivate(t testing.TB, sa SocketActivation) (*Process, []int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("systemd-socket-activate is for Linux, not %s", runtime.GOOS)
	}
	tool := NeedTool(t, "systemd-socket-activate")
	network, listen, start := "tcp", strconv.Itoa, sa.Start
	if sa.Datagram {
		network = "udp"
	}
	if sa.Listen != nil {
		listen = sa.Listen
	}
	if start == nil {
		start = func(cmd *exec.Cmd) *Process { return StartProcess(t, cmd, nil) }
	}
	nsockets := sa.Ports
	for _, f := range sa.Flags {
		if f == "-l" {
			nsockets++
		}
	}
	for attempt := 1; ; attempt++ {
		ports := FreePorts(t, network, sa.Ports)
		var args []string
		if sa.Datagram {
			args = append(args, "--datagram")
		}
		for _, p := range ports {
			args = append(args, "-l", listen(p))
		}
		args = append(append(append(args, sa.Flags...), "--"), sa.Command(ports)...)
		p := start(exec.Command(tool, args...))
		err := p.WaitFor(fmt.Sprintf("listening on %d sockets", nsockets), func(stderr string) bool {
			return strings.Count(stderr, "Listening on ") >= nsockets
		})
		if err == nil {
			return p, ports
		}
		if attempt < 5 && p.HasExited() && strings.Contains(p.Stderr.String(), "Address already in use") {
			t.Logf("a port of %v was taken meanwhile, trying others: %v", ports, err)
			continue
		}
		t.Fatalf("systemd-socket-activate %q: %v", args, err)
	}
}

// CheckExecd checks that the process still runs, and runs the program at
// path: what systemd-socket-activate without -a becomes, by exec, once a
// connection or datagram comes. It reads /proc, so it is for Linux.
func (p *Process) CheckExecd(t testing.TB, path string) {
	t.Helper()
	if p.HasExited() {
		t.Fatalf("%s exited: %v; stderr:\n%s", filepath.Base(path), p.Err(), p.Stderr.String())
	}
	pid := p.Cmd.Process.Pid
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatal(err)
	}
	if exe != path {
		t.Errorf("process %d runs %s, want %s", pid, exe, path)
	}
}

// VerifyUnits runs systemd-analyze verify on the unit files units (in the
// test's directory) and fails the test if it says anything: verify reports
// unknown keys and the like as warnings, with exit status 0. As verify
// checks that ExecStart= is executable, the units are verified in a copy
// in which the path installed, where they run the program from, is built,
// the program the test built. The test is skipped outside Linux, and where
// systemd is missing (see NeedTool).
func VerifyUnits(t testing.TB, installed, built string, units ...string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("systemd is Linux's, not %s's", runtime.GOOS)
	}
	// systemd-analyze comes with systemd-socket-activate, in the package
	// systemd: NeedTool names that package.
	NeedTool(t, "systemd-socket-activate")
	tool := NeedTool(t, "systemd-analyze")
	dir := t.TempDir()
	args := []string{"verify", "--man=no"}
	for _, name := range units {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(installed), []byte(built))
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "./"+name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
