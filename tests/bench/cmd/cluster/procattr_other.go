//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing here: see procattr_linux.go.
func dieWithParent(*exec.Cmd) {}
