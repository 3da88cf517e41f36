//go:build linux

package tests3

import "syscall"

// sysProcAttr makes Linux kill the server when the thread that started it ends
// (see process): no server outlives a test binary that died.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
