//go:build unix

package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the lock a process that owns a data directory holds on it
// (`windrow up` with its embedded NATS server), with its PID in it.
func LockFile(dataDir string) string { return filepath.Join(dataDir, "windrow.lock") }

// ErrDataDirInUse is returned by Open when another process owns the data
// directory.
var ErrDataDirInUse = errors.New("data directory in use")

// dirLock is an exclusive advisory lock (flock) on LockFile: the kernel
// releases it when the process ends, however it ends, so a stale file left
// by a crash never blocks a restart.
type dirLock struct{ f *os.File }

// lockDataDir takes the data directory's lock, or fails with
// ErrDataDirInUse naming the owner's PID.
func lockDataDir(dataDir string) (*dirLock, error) {
	path := LockFile(dataDir)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner := "another process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					owner = "PID " + strconv.Itoa(pid)
				}
			}
			return nil, fmt.Errorf("%w: %s is used by %s (it holds %s); stop it, or give this one another --data-dir",
				ErrDataDirInUse, dataDir, owner, path)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release lets the lock go. The file stays (removing it would race with a
// process that just opened it).
func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	_ = f.Truncate(0)
	return f.Close()
}
