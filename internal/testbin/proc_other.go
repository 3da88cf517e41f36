//go:build !linux

package testbin

import "syscall"

// sysProcAttr: only Linux has Pdeathsig; elsewhere Stop alone stops a tool.
func sysProcAttr() *syscall.SysProcAttr { return nil }
