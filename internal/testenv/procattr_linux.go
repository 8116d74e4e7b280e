package testenv

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child get SIGKILL if the test process dies first
// (a panic, a timeout), so no server outlives its test.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
