package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
)

// answerTimeout is how long a client of the load waits for each echo: a
// datagram with no echo by then counts as lost.
const answerTimeout = 5 * time.Second

// restartServer is a udp-echo started for a restart test, and the
// processes that took over from it since.
type restartServer struct {
	*testenv.LogFile        // the log of all of them
	pid              int    // the process that serves now
	addr             string // where it listens: 127.0.0.1:PORT or a socket path
	dir              string // a directory for the clients' socket files
}

// Kinds of socket a restart test serves on.
const (
	restartUDP      = "udp"       // 127.0.0.1:PORT
	restartUnixgram = "unixgram"  // a socket path udp-echo binds
	restartSystemd  = "sd-listen" // a socket path systemd-socket-activate -d binds
)

// startRestartable starts udp-echo on a socket of the kind on, with its
// logs in a file, in a new process group that is killed when the test
// ends (see testenv.StartLogged). Under systemd-socket-activate, udp-echo
// starts with the first datagram sent.
func startRestartable(t *testing.T, bin, on string, extra ...string) *restartServer {
	t.Helper()
	s := &restartServer{dir: testenv.SocketDir(t)}
	// A restart waits for the old udp-echo to exit: no -race delay.
	env := testenv.ExitAtOnce(nil)
	listening := "udp-echo: listening on "
	if on == restartSystemd {
		listening = "Listening on "
	}
	log, cmd := testenv.StartLogged(t, filepath.Join(s.dir, "log"), listening, func() *exec.Cmd {
		var cmd *exec.Cmd
		switch on {
		case restartUDP:
			s.addr = localUDP(testenv.FreeUDPPort(t))
			cmd = exec.Command(bin, append([]string{s.addr}, extra...)...)
		case restartUnixgram:
			s.addr = filepath.Join(s.dir, "echo.sock")
			cmd = exec.Command(bin, append([]string{s.addr}, extra...)...)
		case restartSystemd:
			s.addr = filepath.Join(s.dir, "echo.sock")
			tool := testenv.NeedTool(t, "systemd-socket-activate")
			args := []string{"-d", "-l", s.addr, "-E", env[len(env)-1], "--", bin, "sd-listen"}
			cmd = exec.Command(tool, append(args, extra...)...)
		default:
			t.Fatalf("unknown kind %q", on)
		}
		cmd.Env = env
		return cmd
	})
	s.LogFile, s.pid = log, cmd.Process.Pid
	return s
}

// dial returns a client socket connected to the server, bound (for a
// UNIX socket) to a path of its own so that it gets the echoes.
func (s *restartServer) dial(t *testing.T, i int) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if filepath.IsAbs(s.addr) {
		local := &net.UnixAddr{Name: filepath.Join(s.dir, fmt.Sprintf("client%d.sock", i)), Net: "unixgram"}
		c, err = net.DialUnix("unixgram", local, &net.UnixAddr{Name: s.addr, Net: "unixgram"})
	} else {
		c, err = net.Dial("udp", s.addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// restart sends the serving udp-echo SIGHUP, which must make it the
// restart-th restart's: the successor serves, and the old one exits.
func (s *restartServer) restart(t *testing.T, restart int) {
	t.Helper()
	if err := syscall.Kill(s.pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitLines(t, "restarted as pid", restart); err != nil {
		t.Fatalf("restart %d: %v; log:\n%s", restart, err, s.Read(t))
	}
	m := restartedAs.FindAllStringSubmatch(s.Read(t), -1)
	next, _ := strconv.Atoi(m[restart-1][1])
	s.waitExit(t, s.pid)
	if next == s.pid {
		t.Fatalf("restart %d: pid %d restarted as itself", restart, next)
	}
	s.pid = next
}

var restartedAs = regexp.MustCompile(`restarted as pid (\d+);`)

// waitExit waits until process pid has ended (gone, or a zombie).
func (s *restartServer) waitExit(t *testing.T, pid int) {
	t.Helper()
	if err := testenv.WaitExited(pid); err != nil {
		t.Fatalf("udp-echo (pid %d) did not exit; log:\n%s", pid, s.Read(t))
	}
}

// stop ends the serving udp-echo with SIGTERM and returns how many
// datagrams each process answered, as their logs say.
func (s *restartServer) stop(t *testing.T) map[int]int {
	t.Helper()
	syscall.Kill(s.pid, syscall.SIGTERM)
	s.waitExit(t, s.pid)
	answered := map[int]int{}
	for _, m := range answeredLine.FindAllStringSubmatch(s.Read(t), -1) {
		pid, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		answered[pid] += n
	}
	return answered
}

// expectedLog matches the lines udp-echo logs in a restart that works,
// and in one whose successor fails; and those of systemd-socket-activate.
var expectedLog = regexp.MustCompile(`^(udp-echo: (listening on \S+|restarted as pid \d+; answering what was read|signal received, stopping|datagrams answered by pid \d+: \d+|restart failed, serving on: anylisten: the successor \(pid \d+\) .*)|Listening on \S+ as 3\.|Communication attempt on fd 3\.|Execing .*)\n$`)

var answeredLine = regexp.MustCompile(`datagrams answered by pid (\d+): (\d+)\n`)

// load runs clients that each send numbered datagrams in a loop, one at a
// time, each waiting for its echo, until stop is closed.
type load struct {
	stop           chan struct{}
	wg             sync.WaitGroup
	sent, answered atomic.Int64
	mu             sync.Mutex
	failures       []string
}

func startLoad(t *testing.T, s *restartServer, clients int) *load {
	l := &load{stop: make(chan struct{})}
	for i := range clients {
		c := s.dial(t, i)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			buf := make([]byte, 100)
			for seq := 1; ; seq++ {
				select {
				case <-l.stop:
					return
				default:
				}
				msg := fmt.Sprintf("client %d datagram %d", i, seq)
				c.SetDeadline(time.Now().Add(answerTimeout))
				if _, err := c.Write([]byte(msg)); err != nil {
					l.fail(fmt.Sprintf("sending %q: %v", msg, err))
					continue
				}
				l.sent.Add(1)
				n, err := c.Read(buf)
				if err != nil || string(buf[:n]) != msg {
					l.fail(fmt.Sprintf("sent %q, got %q back: %v", msg, buf[:n], err))
					continue
				}
				l.answered.Add(1)
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

func (l *load) fail(s string) {
	l.mu.Lock()
	l.failures = append(l.failures, s)
	l.mu.Unlock()
}

// waitAnswers waits until the clients have had n more echoes.
func (l *load) waitAnswers(t *testing.T, n int64) {
	t.Helper()
	want := l.answered.Load() + n
	deadline := time.Now().Add(timeout)
	for l.answered.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the clients had %d echoes in %v, want %d more", l.answered.Load(), timeout, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// end stops the clients, once their last datagrams are answered or lost.
func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// check fails the test unless every datagram sent was answered, by the
// processes that served (answered, from their logs) and by nobody else,
// and each of pids answered some.
func (l *load) check(t *testing.T, s *restartServer, answered map[int]int, pids []int) {
	t.Helper()
	sent, got := l.sent.Load(), l.answered.Load()
	t.Logf("%d datagrams sent, %d answered; answers per pid %v, pids in order %v", sent, got, answered, pids)
	if len(l.failures) > 0 {
		t.Errorf("%d of %d datagrams failed; first: %q", len(l.failures), sent, l.failures[:min(5, len(l.failures))])
	}
	if got != sent {
		t.Errorf("%d datagrams sent, %d answered", sent, got)
	}
	total := 0
	for _, n := range answered {
		total += n
	}
	if int64(total) != got {
		t.Errorf("the processes say they answered %d datagrams, the clients got %d echoes; log:\n%s", total, got, s.Read(t))
	}
	// Nothing went wrong that a process noticed: an error reading or
	// answering, a failed restart, is a line of its own.
	for _, line := range strings.SplitAfter(s.Read(t), "\n") {
		if line != "" && !expectedLog.MatchString(line) {
			t.Errorf("unexpected log line %q; log:\n%s", line, s.Read(t))
		}
	}
	for _, pid := range pids {
		if answered[pid] == 0 {
			t.Errorf("pid %d answered no datagram; log:\n%s", pid, s.Read(t))
		}
	}
	if len(answered) != len(pids) {
		t.Errorf("pids %v answered, want %v", answered, pids)
	}
}

// TestRestartUnderLoad restarts udp-echo with SIGHUP several times while
// clients send numbered datagrams, each waiting for its echo, over UDP,
// over a UNIX datagram socket, and over one systemd-socket-activate passed
// (its file must outlive udp-echo): not one datagram may go unanswered or
// come back changed, every restart must hand over to a new process that
// answers, and the old ones must exit.
func TestRestartUnderLoad(t *testing.T) {
	restarts, clients := 10, 8
	if testing.Short() {
		restarts, clients = 3, 4
	}
	for _, on := range []string{restartUDP, restartUnixgram, restartSystemd} {
		t.Run(on, func(t *testing.T) {
			s := startRestartable(t, echoPath, on)
			pids := []int{s.pid}
			l := startLoad(t, s, clients)
			for i := 1; i <= restarts; i++ {
				l.waitAnswers(t, 50) // by the process that serves now
				s.restart(t, i)
				pids = append(pids, s.pid)
			}
			l.waitAnswers(t, 50)
			if on != restartUDP {
				if _, err := os.Lstat(s.addr); err != nil {
					t.Errorf("the UNIX socket file is gone after the restarts: %v", err)
				}
			}
			l.end()
			l.check(t, s, s.stop(t), pids)
			switch _, err := os.Lstat(s.addr); {
			case on == restartUnixgram && !errors.Is(err, os.ErrNotExist):
				t.Errorf("socket file after the last udp-echo stopped: %v", err)
			case on == restartSystemd && err != nil:
				t.Errorf("the socket file systemd-socket-activate made is gone after the last udp-echo stopped: %v", err)
			}
		})
	}
}

// TestRestartBadSuccessor: a successor that exits, or hangs, before it is
// ready is killed, and the old udp-echo serves on without losing a
// datagram; a good one after them takes over.
func TestRestartBadSuccessor(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "udp-echo")
	testenv.CopyExecutable(t, echoPath, bin)
	s := startRestartable(t, bin, restartUDP, "--restart-timeout", "1s")
	pids := []int{s.pid}
	l := startLoad(t, s, 4)
	for i, script := range []string{"#!/bin/sh\nexit 3\n", "#!/bin/sh\nexec sleep 60\n"} {
		l.waitAnswers(t, 50)
		// A bad deploy: the binary on disk is replaced.
		testenv.WriteExecutable(t, bin, []byte(script))
		syscall.Kill(s.pid, syscall.SIGHUP)
		if err := s.WaitLines(t, "restart failed, serving on", i+1); err != nil {
			t.Fatalf("%v; log:\n%s", err, s.Read(t))
		}
	}
	l.waitAnswers(t, 50) // the old one still answers
	// A good deploy after the bad ones still works.
	testenv.CopyExecutable(t, echoPath, bin)
	s.restart(t, 1)
	pids = append(pids, s.pid)
	l.waitAnswers(t, 50)
	l.end()
	l.check(t, s, s.stop(t), pids)
}
