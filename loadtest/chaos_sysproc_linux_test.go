//go:build chaos

package loadtest

import "syscall"

// childProcAttr makes the kernel kill a child when the test process dies,
// even by a panic or a go test timeout that skips every cleanup.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
