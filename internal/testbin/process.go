package testbin

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// Process is a started tool. Its Wait runs in a goroutine locked to the OS
// thread that started it: on Linux the child gets SIGKILL (Pdeathsig) when
// that thread ends, so a test binary that dies (a panic, a -timeout) does
// not leave the tool running. The thread ends only after Wait returned.
type Process struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// StartProcess starts cmd (with the Pdeathsig attribute where the OS has it).
func StartProcess(cmd *exec.Cmd) (*Process, error) {
	cmd.SysProcAttr = sysProcAttr()
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process exited; read it after Exited is closed.
func (p *Process) Err() error { return p.waitErr }

// Stop sends SIGTERM, then SIGKILL after timeout, and waits for the process
// to exit; it says so when it had to kill.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s did not exit %s after SIGTERM; killed", filepath.Base(p.cmd.Path), timeout)
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1, holding all the
// listeners until every port is picked so that none repeats.
func FreePorts(n int) ([]int, error) {
	out := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Tail returns the last n bytes of the file at path (a tool's log).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	if len(b) > n {
		b = append([]byte("[...]\n"), b[len(b)-n:]...)
	}
	return string(b)
}
