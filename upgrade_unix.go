//go:build unix

package anylisten

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// upgrade starts the successor, waits for it, and stops it if it fails;
// u.mu is held.
//
// LISTEN_PID must be the successor's own pid, which Go cannot put into
// the environment between fork and exec. So the successor is started
// through /bin/sh, which sets LISTEN_PID to its own pid ($$) and execs the
// program in the same process: the pid stays, and LISTEN_PID is right
// from the program's first instruction. Nothing else runs in between.
func (u *Upgrader) upgrade(ctx context.Context) (int, error) {
	h, closed, err := newHandover(u.handed)
	if err != nil {
		return 0, err
	}
	defer h.close()
	u.forget(closed)
	path := u.Path
	if path == "" {
		if path = startedAs; path == "" {
			return 0, errors.New("anylisten: finding this program for its successor: the path it was started as is unknown; set Upgrader.Path")
		}
	}
	if err := checkExecutable(path); err != nil {
		return 0, fmt.Errorf("anylisten: cannot start the successor: %w; this process keeps serving", err)
	}
	args := u.Args
	if args == nil && len(os.Args) > 0 {
		args = os.Args[1:]
	}
	env := u.Env
	if env == nil {
		env = os.Environ()
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, path}, args...)...)
	cmd.Env = h.env(env)
	cmd.ExtraFiles = h.files
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Start()
	h.started()
	if err != nil {
		return 0, fmt.Errorf("anylisten: starting the successor: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan error, 1)
	go h.readyWord(ready)
	timeout := u.ReadyTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	exitedEarly := func(err error) (int, error) {
		return 0, fmt.Errorf("anylisten: the successor (pid %d) exited before it was ready (%v); this process keeps serving", pid, err)
	}
	fail := func(why error) (int, error) {
		// No "go" will come: a ready said from now on counts for nothing.
		h.ready.Close()
		// SIGTERM first: a successor that serves already finishes the
		// connections it took from the shared queue.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(killGrace):
			cmd.Process.Kill()
			<-exited
		}
		return 0, fmt.Errorf("anylisten: the successor (pid %d) was stopped: %w; this process keeps serving", pid, why)
	}
	select {
	case err := <-ready:
		if err != nil {
			select { // an exit closes the socket: say so, rather than EOF
			case werr := <-exited:
				return exitedEarly(werr)
			case <-time.After(time.Second):
			}
			return fail(fmt.Errorf("it did not say it was ready: %w", err))
		}
		if err := h.accept(); err != nil {
			return fail(fmt.Errorf("answering its ready: %w", err))
		}
		h.end(true)
		return pid, nil
	case err := <-exited:
		return exitedEarly(err)
	case <-timer.C:
		return fail(fmt.Errorf("it was not ready within %v", timeout))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// startedAs is the absolute path this program was started as, found when
// the package initialised: os.Args[0] (looked up in PATH if it has no
// slash) if that is the file that runs, else what os.Executable said then.
// Upgrade starts what is at that path at the time, such as a new binary a
// deploy put there, even if the deploy first moved the old file away
// (os.Executable then names the moved file) or switched a symbolic link.
var startedAs = pathStartedAs(os.Args, os.Executable, exec.LookPath)

// pathStartedAs finds startedAs from the arguments and the system's answers.
// An os.Args[0] whose meaning depends on the process that looks it up
// (/proc/self/exe, /dev/fd/N: the successor's starter is /bin/sh, where
// /proc/self/exe is the shell) is not used.
func pathStartedAs(args []string, executable func() (string, error), lookPath func(string) (string, error)) string {
	exe, err := executable()
	if err != nil || len(args) == 0 {
		return ""
	}
	arg := args[0]
	if !strings.Contains(arg, "/") {
		if arg, err = lookPath(arg); err != nil {
			return exe
		}
	}
	abs, err := filepath.Abs(arg)
	if err != nil || perProcess(abs) {
		return exe
	}
	a, err1 := os.Stat(abs)
	b, err2 := os.Stat(exe)
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		return exe
	}
	return abs
}

// perProcess reports whether path names a different file in each process
// (/proc/self, /proc/thread-self, /dev/fd, /dev/std*), or may through a
// symbolic link into /proc or /dev, of its directory or of itself.
func perProcess(path string) bool {
	// A directory on the way may be a link into /proc (/tmp/l -> /proc/self).
	if dir, err := filepath.EvalSymlinks(filepath.Dir(path)); err != nil || strings.HasPrefix(dir+"/", "/proc/") || strings.HasPrefix(dir+"/", "/dev/") {
		return true
	}
	for hops := 0; hops < 40; hops++ {
		if strings.HasPrefix(path, "/proc/") || strings.HasPrefix(path, "/dev/") {
			return true
		}
		target, err := os.Readlink(path)
		if err != nil {
			return false
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return true // a loop of links
}

// checkExecutable says why path cannot be run, before a shell says it
// less clearly.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a program", path)
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return &os.PathError{Op: "execute", Path: path, Err: err}
	}
	return nil
}

// killGrace is how long a failed successor has to stop after SIGTERM
// before it is killed.
const killGrace = 2 * time.Second
