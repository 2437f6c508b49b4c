//go:build unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// inOwnProcessGroup makes cmd the leader of a new process group, which
// its children join, so that killProcessGroup reaches them all. Where the
// platform has it, the leader is also killed when the test binary dies
// without cleaning up (on a panic, a -timeout, or ^C, which no longer
// reaches a process outside the terminal's foreground group).
func inOwnProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
}

// killProcessGroup kills the process group that p leads: p, if it still
// runs, and every process it started that still runs, even after p has
// exited.
func killProcessGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
}
