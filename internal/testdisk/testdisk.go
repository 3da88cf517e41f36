// Package testdisk gives tests a real file system that runs out of space:
// a small tmpfs mounted for the test (Linux, as root), which a ballast file
// fills to the last byte and frees again. Writes to it fail with ENOSPC
// from the kernel, as on a full disk; nothing is simulated.
package testdisk

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Disk is a mounted small file system.
type Disk struct {
	// Dir is its mount point.
	Dir string
}

// required says whether a test must fail rather than skip where no small
// file system can be mounted (CI, or WINDROW_REQUIRE_TMPFS=1).
func required() bool {
	return os.Getenv("CI") != "" || os.Getenv("WINDROW_REQUIRE_TMPFS") == "1"
}

// New mounts a tmpfs of size bytes in a directory of t and unmounts it when
// t ends. Where that is not possible (not Linux, not root, no mount in the
// sandbox) the test is skipped, or failed under CI.
func New(t testing.TB, size int64) *Disk {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := mount(dir, size); err != nil {
		if required() {
			t.Fatalf("mount a %d-byte tmpfs on %s: %v", size, dir, err)
		}
		t.Skipf("cannot mount a small file system (needs Linux and root): %v", err)
	}
	t.Cleanup(func() {
		if err := unmount(dir); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return &Disk{Dir: dir}
}

// ballast is the file Fill writes and Free removes.
func (d *Disk) ballast() string { return filepath.Join(d.Dir, "ballast") }

// Fill writes the ballast file until the file system has no byte left
// (the kernel answers ENOSPC).
func (d *Disk) Fill(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(d.ballast(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatalf("fill %s: %v", d.Dir, err)
		}
	}
}

// Free removes the ballast file: the space Fill took is free again.
func (d *Disk) Free(t testing.TB) {
	t.Helper()
	if err := os.Remove(d.ballast()); err != nil {
		t.Fatal(err)
	}
}
