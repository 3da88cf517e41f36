//go:build chaos

package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// buildBinaries builds the windrow binary and a NATS server binary into dir,
// from the module root (the parent of this package's directory).
func buildBinaries(t *testing.T, ctx context.Context, dir string) (windrow, natsServer string) {
	t.Helper()
	windrow = filepath.Join(dir, "windrow")
	natsServer = filepath.Join(dir, "nats-server")
	for _, b := range []struct{ out, pkg string }{
		{windrow, "./cmd/windrow"},
		{natsServer, "github.com/nats-io/nats-server/v2"},
	} {
		start := time.Now()
		// -mod=readonly: never touch go.mod or go.sum; fail instead if the
		// build would need to.
		cmd := exec.CommandContext(ctx, "go", "build", "-mod=readonly", "-o", b.out, b.pkg)
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
		t.Logf("built %s in %s", b.pkg, time.Since(start).Round(100*time.Millisecond))
	}
	return windrow, natsServer
}

// freePort returns a TCP port on the loopback interface that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is one supervised OS process (a windrow role or the NATS server):
// while it is supervised, every exit is followed by a restart, after the
// delay its killer asked for or after a short pause for an exit nobody
// asked for. Every life appends its output to the same log file.
type proc struct {
	name    string
	bin     string
	args    []string
	logPath string
	env     []string            // added to the test's environment
	cred    *syscall.Credential // the user to run as, if not the test's
	// finalSig ends the process for good when the test ends (SIGKILL if
	// zero); PostgreSQL wants SIGINT, which stops its backends too.
	finalSig syscall.Signal

	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the current life ended
	started   chan struct{} // closed when the next life starts; replaced on every start
	lives     int
	startedAt time.Time     // of the current life
	lastExit  string        // exit status of the last life that ended
	planned   bool          // the current life is being ended on purpose
	delay     time.Duration // restart delay after a planned end
	final     bool          // stopped for good: no restart
	kills     int
	unplanned []string // exits nobody asked for: when, status, last log lines
	crashes   []string // exits that look like a bug: a panic or a fatal runtime error
}

func newProc(name, bin, logPath string, args ...string) *proc {
	return &proc{name: name, bin: bin, args: args, logPath: logPath, exited: closedChan(), started: make(chan struct{})}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// start begins a new life of the process.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startLocked()
}

func (p *proc) startLocked() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.lives++
	fmt.Fprintf(f, "=== %s life %d started %s: %s %s\n", p.name, p.lives, time.Now().Format("15:04:05.000"), filepath.Base(p.bin), strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if len(p.env) > 0 {
		cmd.Env = append(os.Environ(), p.env...)
	}
	cmd.SysProcAttr = childProcAttr()
	if p.cred != nil {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Credential = p.cred
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.planned, p.startedAt = cmd, exited, false, time.Now()
	close(p.started)
	p.started = make(chan struct{})
	go func() {
		status := exitStatus(cmd.Wait())
		fmt.Fprintf(f, "=== %s life exited %s: %s\n", p.name, time.Now().Format("15:04:05.000"), status)
		f.Close()
		p.mu.Lock()
		p.lastExit = status
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// supervise restarts the process after every exit until stop or ctx ends.
func (p *proc) supervise(ctx context.Context) {
	for {
		p.mu.Lock()
		exited := p.exited
		p.mu.Unlock()
		select {
		case <-exited:
		case <-ctx.Done():
			return
		}
		p.mu.Lock()
		if p.final {
			p.mu.Unlock()
			return
		}
		delay := p.delay
		if !p.planned {
			status := p.lastExit
			tail := tailFile(p.logPath, 12)
			p.unplanned = append(p.unplanned, fmt.Sprintf("%s %s (%s)", time.Now().Format("15:04:05.000"), status, lastLogLine(tail)))
			if crashed(tail) {
				p.crashes = append(p.crashes, fmt.Sprintf("%s exited (%s):\n%s", p.name, status, tail))
			}
			delay = 500 * time.Millisecond
		}
		p.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		p.mu.Lock()
		if !p.final {
			if err := p.startLocked(); err != nil {
				p.crashes = append(p.crashes, err.Error())
			}
		}
		p.mu.Unlock()
	}
}

// lastLogLine is the last line of a log tail that is not one of ours.
func lastLogLine(tail string) string {
	lines := strings.Split(tail, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "===") {
			if len(l) > 200 {
				l = l[:200] + "…"
			}
			return l
		}
	}
	return "no output"
}

// crashed reports whether a log tail shows a panic or a fatal runtime error.
func crashed(tail string) bool {
	for _, s := range []string{"panic:", "fatal error:", "DATA RACE", "SIGSEGV"} {
		if strings.Contains(tail, s) {
			return true
		}
	}
	return false
}

// kill ends the current life with sig and waits (bounded) until it is gone;
// the supervisor starts the next life delay later.
func (p *proc) kill(sig syscall.Signal, delay time.Duration) error {
	k, err := p.signal(sig, delay)
	if err != nil {
		return err
	}
	return k.wait()
}

// signaled is a life that was sent a signal.
type signaled struct {
	p      *proc
	sig    syscall.Signal
	cmd    *exec.Cmd
	exited chan struct{}
}

// signal sends sig to the current life without waiting for it to end.
func (p *proc) signal(sig syscall.Signal, delay time.Duration) (*signaled, error) {
	p.mu.Lock()
	if p.final || p.cmd == nil || p.cmd.Process == nil {
		p.mu.Unlock()
		return nil, fmt.Errorf("%s: not running", p.name)
	}
	select {
	case <-p.exited:
		p.mu.Unlock()
		return nil, fmt.Errorf("%s: not running (restart pending)", p.name)
	default:
	}
	p.planned, p.delay = true, delay
	if sig == syscall.SIGKILL {
		p.kills++
	}
	k := &signaled{p: p, sig: sig, cmd: p.cmd, exited: p.exited}
	p.mu.Unlock()
	if err := k.cmd.Process.Signal(sig); err != nil {
		return nil, fmt.Errorf("signal %s: %w", p.name, err)
	}
	return k, nil
}

// wait waits (bounded) until the signaled life is gone.
func (k *signaled) wait() error { return k.waitFor(30 * time.Second) }

// waitFor waits up to d until the signaled life is gone, and kills it then.
func (k *signaled) waitFor(d time.Duration) error {
	select {
	case <-k.exited:
		return nil
	case <-time.After(d):
		_ = k.cmd.Process.Kill()
		<-k.exited
		return fmt.Errorf("%s did not exit within %s of %s; killed", k.p.name, d, k.sig)
	}
}

// running reports whether a life is running, and waits up to timeout for one.
func (p *proc) waitRunning(timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		exited, started, final := p.exited, p.started, p.final
		p.mu.Unlock()
		if final {
			return false
		}
		select {
		case <-exited:
		default:
			return true
		}
		select {
		case <-started:
		case <-deadline:
			return false
		}
	}
}

// stop ends the process for good: sig first (SIGTERM asks for a graceful
// shutdown), SIGKILL after grace. It returns the exit status, and an error
// if the process had to be killed.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) (string, error) {
	p.mu.Lock()
	p.final = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return "never started", nil
	}
	select {
	case <-exited:
		return "already exited: " + p.exitStatus(), nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return p.exitStatus(), nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return p.exitStatus(), fmt.Errorf("%s did not exit within %s of %s", p.name, grace, sig)
	}
}

// stopForGood ends the process for good with its final signal (SIGKILL
// unless finalSig says otherwise), SIGKILL after grace.
func (p *proc) stopForGood(grace time.Duration) {
	sig := p.finalSig
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	_, _ = p.stop(sig, grace)
}

// age is how long the current life has run.
func (p *proc) age() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Since(p.startedAt)
}

func (p *proc) exitStatus() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastExit
}

func (p *proc) stats() (lives, kills int, unplanned, crashes []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lives, p.kills, append([]string(nil), p.unplanned...), append([]string(nil), p.crashes...)
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	const maxTail = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > maxTail {
		_, _ = f.Seek(st.Size()-maxTail, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// waitNATS waits until the server at url answers JetStream requests.
func waitNATS(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.MaxReconnects(0))
		if err == nil {
			js, jerr := jetstream.New(nc)
			if jerr == nil {
				actx, acancel := context.WithTimeout(ctx, 2*time.Second)
				_, jerr = js.AccountInfo(actx)
				acancel()
			}
			nc.Close()
			if jerr == nil {
				return nil
			}
			err = jerr
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats at %s not ready within %s: %w", url, timeout, errors.Join(ctx.Err(), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
