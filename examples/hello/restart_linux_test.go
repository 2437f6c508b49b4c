package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anylisten/anylisten/internal/testenv"
)

// restartServer is a hello started for a restart test, and the processes
// that took over from it since.
type restartServer struct {
	*testenv.LogFile        // the log of all of them
	tcp              string // 127.0.0.1:PORT
	sock             string // the UNIX socket path
}

// startRestartable starts hello on a TCP port and a UNIX socket, with its
// logs in a file, in a new process group that is killed when the test
// ends (see testenv.StartLogged).
func startRestartable(t *testing.T, bin string, extra ...string) *restartServer {
	t.Helper()
	dir := testenv.SocketDir(t)
	s := &restartServer{sock: filepath.Join(dir, "hello.sock")}
	s.LogFile, _ = testenv.StartLogged(t, filepath.Join(dir, "log"), "listening on", func() *exec.Cmd {
		s.tcp = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
		args := append([]string{"--listen", s.tcp, "--listen", s.sock}, extra...)
		cmd := exec.Command(bin, append(args, "restart test\n")...)
		cmd.Env = testenv.ExitAtOnce(nil) // a restart waits for the old hello to exit
		return cmd
	})
	return s
}

// startCopy starts a copy of hello, in a new directory, as
// startRestartable does, and returns it and the copy's path: a deploy
// there is what a restart starts.
func startCopy(t *testing.T, extra ...string) (*restartServer, string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hello")
	testenv.CopyExecutable(t, helloPath, bin)
	return startRestartable(t, bin, extra...), bin
}

// servingPid asks hello over TCP which process answers.
func (s *restartServer) servingPid(t *testing.T) int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: timeout}
	resp, err := c.Get("http://" + s.tcp + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pid, err := strconv.Atoi(resp.Header.Get("X-Hello-Pid"))
	if err != nil {
		t.Fatalf("X-Hello-Pid: %v", err)
	}
	return pid
}

// fdCounts counts the open fds of process pid: sockets, and the others.
// (The merge of ListenAll holds two fds of each socket: the listener's
// and the duplicate it watches the socket through.)
func fdCounts(t *testing.T, pid int) (sockets, others int) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if target, _ := os.Readlink(dir + "/" + e.Name()); strings.HasPrefix(target, "socket:") {
			sockets++
		} else {
			others++
		}
	}
	return sockets, others
}

// load runs keep-alive and connection-per-request clients over TCP and
// the UNIX socket until stop is closed, and counts failures and the pids
// that answered.
type load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	requests int
	failures []string
	pids     map[string]int
}

func startLoad(s *restartServer, clients int) *load {
	l := &load{stop: make(chan struct{}), pids: map[string]int{}}
	for i := range clients {
		unixSock := i%2 == 1
		keepAlive := i%4 < 2
		tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}
		url := "http://" + s.tcp + "/"
		if unixSock {
			tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", s.sock)
			}
			url = "http://hello/"
		}
		client := &http.Client{Transport: tr, Timeout: timeout}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer tr.CloseIdleConnections()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				var reused bool
				req, _ := http.NewRequest("GET", url, nil)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(ci httptrace.GotConnInfo) { reused = ci.Reused },
				}))
				resp, err := client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || string(body) != "restart test\n") {
						err = fmt.Errorf("status %d, body %q", resp.StatusCode, body)
					}
				}
				l.mu.Lock()
				l.requests++
				if err != nil {
					l.failures = append(l.failures, fmt.Sprintf("%v (keep-alive %v, reused %v)", err, keepAlive, reused))
				} else {
					l.pids[resp.Header.Get("X-Hello-Pid")]++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

// TestRestartUnderLoad restarts hello ten times with SIGHUP while 50
// clients send requests over TCP and a UNIX socket, half of them on
// keep-alive connections: not one request may fail, every restart must
// hand over to a new process, and the old ones must exit.
func TestRestartUnderLoad(t *testing.T) {
	restarts, clients := 10, 50
	if testing.Short() {
		restarts, clients = 3, 20
	}
	s := startRestartable(t, helloPath)
	pid := s.servingPid(t)
	othersBefore := -1 // of the first successor, started as every later one is
	l := startLoad(s, clients)
	defer func() {
		if l.stop != nil {
			l.end()
		}
	}()
	seen := []int{pid}
	for i := 1; i <= restarts; i++ {
		time.Sleep(50 * time.Millisecond) // let the load hit this process
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitLines(t, "restarted as pid", i); err != nil {
			t.Fatalf("restart %d: %v; log:\n%s", i, err, s.Read(t))
		}
		if err := testenv.WaitExited(pid); err != nil {
			t.Fatalf("restart %d: the old hello (pid %d) did not exit; log:\n%s", i, pid, s.Read(t))
		}
		next := s.servingPid(t)
		if next == pid {
			t.Fatalf("restart %d: pid %d still serves", i, pid)
		}
		pid = next
		seen = append(seen, pid)
		if othersBefore < 0 {
			_, othersBefore = fdCounts(t, pid)
		}
	}
	time.Sleep(50 * time.Millisecond)
	l.end()
	l.stop = nil
	t.Logf("%d requests, %d restarts, pids %v, answers per pid %v", l.requests, restarts, seen, l.pids)
	if len(l.failures) > 0 {
		t.Errorf("%d of %d requests failed; first: %v", len(l.failures), l.requests, l.failures[:min(5, len(l.failures))])
	}
	for _, p := range seen {
		if l.pids[strconv.Itoa(p)] == 0 && p != seen[0] {
			t.Errorf("pid %d answered no request", p)
		}
	}
	// No fd piles up across restarts: the last hello, idle again, holds
	// its two listening sockets (two fds each, see fdCounts) and no more
	// other fds than the first successor had when it started (the runtime
	// closes some later).
	deadline := time.Now().Add(timeout)
	for {
		sockets, others := fdCounts(t, pid)
		if sockets == 4 && others <= othersBefore {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the last hello holds %d sockets and %d other fds, want 2 listening sockets (4 fds) and at most the %d others of the first successor",
				sockets, others, othersBefore)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Lstat(s.sock); err != nil {
		t.Errorf("the UNIX socket file is gone after the restarts: %v", err)
	}
	// The last one still stops cleanly, and removes its socket file.
	syscall.Kill(pid, syscall.SIGTERM)
	if err := testenv.WaitExited(pid); err != nil {
		t.Fatalf("the last hello did not exit on SIGTERM")
	}
	if _, err := os.Lstat(s.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after the last hello stopped: %v", err)
	}
}

// TestRestartBadSuccessor: a successor that exits, or hangs, before it is
// ready is killed, and the old hello serves on without a failed request.
func TestRestartBadSuccessor(t *testing.T) {
	s, bin := startCopy(t, "--restart-timeout", "1s")
	pid := s.servingPid(t)
	l := startLoad(s, 20)
	defer func() {
		if l.stop != nil {
			l.end()
		}
	}()
	for i, script := range []string{"#!/bin/sh\nexit 3\n", "#!/bin/sh\nexec sleep 60\n"} {
		// A bad deploy: the binary on disk is replaced.
		testenv.WriteExecutable(t, bin, []byte(script))
		syscall.Kill(pid, syscall.SIGHUP)
		if err := s.WaitLines(t, "restart failed, serving on", i+1); err != nil {
			t.Fatalf("%v; log:\n%s", err, s.Read(t))
		}
		if got := s.servingPid(t); got != pid {
			t.Fatalf("pid %d serves, want the old %d", got, pid)
		}
	}
	// A good deploy after the bad ones still works.
	testenv.CopyExecutable(t, helloPath, bin)
	syscall.Kill(pid, syscall.SIGHUP)
	if err := s.WaitLines(t, "restarted as pid", 1); err != nil {
		t.Fatalf("%v; log:\n%s", err, s.Read(t))
	}
	l.end()
	l.stop = nil
	if len(l.failures) > 0 {
		t.Errorf("%d of %d requests failed; first: %v", len(l.failures), l.requests, l.failures[:min(5, len(l.failures))])
	}
	t.Logf("%d requests; log:\n%s", l.requests, s.Read(t))
}

// TestRestartStartsWhatIsAtThePath: a deploy that moves the running binary
// away and puts a new one at its path gets the new one started, not the
// moved file the process runs (which os.Executable names): here the new
// one is a bad deploy, which must be what runs, and fail.
func TestRestartStartsWhatIsAtThePath(t *testing.T) {
	s, bin := startCopy(t, "--restart-timeout", "5s")
	pid := s.servingPid(t)
	if err := os.Rename(bin, bin+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGHUP)
	if err := s.WaitLines(t, "restart failed, serving on", 1); err != nil {
		t.Fatalf("%v; log:\n%s", err, s.Read(t))
	}
	if !strings.Contains(s.Read(t), "exit status 3") {
		t.Errorf("the successor was not the binary at %s; log:\n%s", bin, s.Read(t))
	}
	// The fixed deploy: a good binary at the path again.
	testenv.CopyExecutable(t, helloPath, bin)
	syscall.Kill(pid, syscall.SIGHUP)
	if err := s.WaitLines(t, "restarted as pid", 1); err != nil {
		t.Fatalf("%v; log:\n%s", err, s.Read(t))
	}
}
