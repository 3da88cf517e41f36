//go:build !linux

package tests3

import "syscall"

// sysProcAttr: only Linux has Pdeathsig; elsewhere Cleanup alone stops the server.
func sysProcAttr() *syscall.SysProcAttr { return nil }
