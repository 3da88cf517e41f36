package testdisk

import (
	"strconv"
	"syscall"
)

func mount(dir string, size int64) error {
	return syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+strconv.FormatInt(size, 10)+",mode=0700")
}

// unmount detaches the file system even if a file on it is still open (a
// role stopping late); the kernel frees it when the last one closes.
func unmount(dir string) error { return syscall.Unmount(dir, syscall.MNT_DETACH) }
