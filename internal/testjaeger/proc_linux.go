//go:build linux

package testjaeger

import "syscall"

// sysProcAttr makes Linux kill Jaeger when the thread that started it ends
// (see process): no Jaeger outlives a test binary that died.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
