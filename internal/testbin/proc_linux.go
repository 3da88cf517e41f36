//go:build linux

package testbin

import "syscall"

// sysProcAttr makes Linux kill a tool when the thread that started it ends
// (see process): no tool outlives a test binary that died.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
