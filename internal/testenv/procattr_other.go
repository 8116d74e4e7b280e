//go:build !linux

package testenv

import "os/exec"

// dieWithParent is Linux-only; elsewhere the cleanup's signal must do.
func dieWithParent(*exec.Cmd) {}
