//go:build !unix

package stack

import (
	"errors"
	"path/filepath"
)

// LockFile is the lock a process that owns a data directory holds on it.
func LockFile(dataDir string) string { return filepath.Join(dataDir, "windrow.lock") }

// ErrDataDirInUse is returned by Open when another process owns the data
// directory.
var ErrDataDirInUse = errors.New("data directory in use")

// dirLock: without flock, the data directory is not locked on this
// platform.
type dirLock struct{}

func lockDataDir(string) (*dirLock, error) { return &dirLock{}, nil }

func (l *dirLock) release() error { return nil }
