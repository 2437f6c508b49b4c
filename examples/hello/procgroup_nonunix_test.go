//go:build !unix

package main

import (
	"os"
	"os/exec"
)

func inOwnProcessGroup(cmd *exec.Cmd) {}

// killProcessGroup kills p; outside Unix its children are not reached.
func killProcessGroup(p *os.Process) { p.Kill() }
