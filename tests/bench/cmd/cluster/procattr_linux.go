package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill cmd's process if this one dies
// without stopping it (SIGKILL, a crash).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
