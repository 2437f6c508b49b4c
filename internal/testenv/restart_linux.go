package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartLogged starts the server that newCmd returns, with its standard
// output and standard error going to a new log file at path, and waits
// until the log says listening. The server leads a process group of its
// own, which its successors join: when the test ends, or the test binary
// dies, the whole group is killed, the server and every successor it
// started. If the server exited because its address was taken ("address
// already in use" in the log), StartLogged asks newCmd for another, on a
// new address, up to five times in all. It returns the log and the
// command that started the server.
func StartLogged(t testing.TB, path, listening string, newCmd func() *exec.Cmd) (*LogFile, *exec.Cmd) {
	t.Helper()
	l := &LogFile{Path: path}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the servers hold their own copies
	for attempt := 1; ; attempt++ {
		cmd := newCmd()
		cmd.Stdout, cmd.Stderr = f, f
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Setpgid = true
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pgid := cmd.Process.Pid
		go cmd.Wait()
		t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
		if l.WaitLines(t, listening, 1) == nil {
			return l, cmd
		}
		if attempt == 5 || !strings.Contains(l.Read(t), "address already in use") {
			t.Fatalf("%s did not start; log:\n%s", filepath.Base(cmd.Path), l.Read(t))
		}
	}
}

// WaitExited polls until process pid has ended: it is gone, or a zombie,
// as a process the test did not start (a server's successor) stays until
// its parent waits for it. It returns an error if the process still runs
// after Timeout.
func WaitExited(pid int) error {
	deadline := time.Now().Add(Timeout)
	for !exited(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d did not exit within %v", pid, Timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// exited reports whether process pid has ended (gone, or a zombie).
func exited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}
