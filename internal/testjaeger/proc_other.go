//go:build !linux

package testjaeger

import "syscall"

// sysProcAttr: only Linux has Pdeathsig; elsewhere Cleanup alone stops Jaeger.
func sysProcAttr() *syscall.SysProcAttr { return nil }
