//go:build unix

package anylisten

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readyFDVar names the fd of the pipe on which a successor says it is
// ready. Its value is only trusted when LISTEN_PID names the process (see
// readSDEnv).
const readyFDVar = "ANYLISTEN_READY_FD"

// upgrade starts the successor and waits for it; u.mu is held.
//
// LISTEN_PID must be the successor's own pid, which Go cannot put into
// the environment between fork and exec. So the successor is started
// through /bin/sh, which sets LISTEN_PID to its own pid ($$) and execs the
// program in the same process: the pid stays, and LISTEN_PID is right
// from the program's first instruction. Nothing else runs in between.
func (u *Upgrader) upgrade(ctx context.Context) (int, error) {
	var files []*os.File
	var names []string
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, h := range u.handed {
		fs, err := listenerFiles(h.ln)
		files = append(files, fs...)
		if err != nil {
			return 0, fmt.Errorf("anylisten: cannot hand over %s: %w", h.ln.Addr(), err)
		}
		for range fs {
			names = append(names, h.name)
		}
	}
	path := u.Path
	if path == "" {
		var err error
		if path, err = os.Executable(); err != nil {
			return 0, fmt.Errorf("anylisten: finding this program for its successor: %w", err)
		}
	}
	args := u.Args
	if args == nil && len(os.Args) > 0 {
		args = os.Args[1:]
	}
	env := u.Env
	if env == nil {
		env = os.Environ()
	}
	var childEnv []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", readyFDVar:
		default:
			childEnv = append(childEnv, kv)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	childEnv = append(childEnv,
		"LISTEN_FDS="+strconv.Itoa(len(files)),
		"LISTEN_FDNAMES="+strings.Join(names, ":"),
		readyFDVar+"="+strconv.Itoa(3+len(files)))
	cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, path}, args...)...)
	cmd.Env = childEnv
	cmd.ExtraFiles = append(files, w)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("anylisten: starting the successor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, len(readyMessage))
		_, err := io.ReadFull(r, b)
		if err == nil && string(b) != readyMessage {
			err = fmt.Errorf("it said %q", b)
		}
		ready <- err
	}()
	timeout := u.ReadyTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	fail := func(why error) (int, error) {
		// SIGTERM first: a successor that serves already finishes the
		// connections it took from the shared queue.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(killGrace):
			cmd.Process.Kill()
			<-exited
		}
		return 0, fmt.Errorf("anylisten: the successor (pid %d) was stopped: %w; this process keeps serving", cmd.Process.Pid, why)
	}
	select {
	case err := <-ready:
		if err != nil {
			select { // an exit closes the pipe: say so, rather than EOF
			case werr := <-exited:
				return 0, fmt.Errorf("anylisten: the successor (pid %d) exited before it was ready (%v); this process keeps serving", cmd.Process.Pid, werr)
			case <-time.After(time.Second):
			}
			return fail(fmt.Errorf("it did not say it was ready: %w", err))
		}
		return cmd.Process.Pid, nil
	case err := <-exited:
		return 0, fmt.Errorf("anylisten: the successor (pid %d) exited before it was ready (%v); this process keeps serving", cmd.Process.Pid, err)
	case <-timer.C:
		return fail(fmt.Errorf("it was not ready within %v", timeout))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// killGrace is how long a failed successor has to stop after SIGTERM
// before it is killed.
const killGrace = 2 * time.Second

// readyMessage is what a successor writes on its ready pipe.
const readyMessage = "ready\n"

// listenerFiles returns duplicates of the sockets of ln, in order.
func listenerFiles(ln net.Listener) ([]*os.File, error) {
	switch l := ln.(type) {
	case *multiListener:
		var files []*os.File
		for _, c := range l.lns {
			fs, err := listenerFiles(c)
			files = append(files, fs...)
			if err != nil {
				return files, err
			}
		}
		return files, nil
	case *oneConnListener:
		return nil, errors.New("a single inherited connection cannot be handed over")
	case syscall.Conn:
		rc, err := l.SyscallConn()
		if err != nil {
			return nil, err
		}
		var nfd int
		err = rawControl(rc, func(fd uintptr) error {
			var err error
			nfd, err = dupCloexec(int(fd))
			return err
		})
		if err != nil {
			return nil, err
		}
		return []*os.File{os.NewFile(uintptr(nfd), ln.Addr().String())}, nil
	}
	return nil, fmt.Errorf("a %T cannot be handed over", ln)
}
