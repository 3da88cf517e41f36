//go:build chaos && !linux

package loadtest

import "syscall"

// childProcAttr: without Linux's parent-death signal, children are only
// stopped by the test's cleanup.
func childProcAttr() *syscall.SysProcAttr { return nil }
