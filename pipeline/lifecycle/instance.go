package lifecycle

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"sync"
)

// DefaultInstance names this process when no instance name is given: the
// host name, the PID and a random suffix ("db-7-1234-a3f09c"), the same for
// the life of the process and different for every process, so that two
// processes on one host, or a process and its restart, never pass for each
// other in window leases. A name given by the operator (--instance) is
// used as it is and may be stable across restarts; it must then be unique
// among the running processes.
func DefaultInstance() string {
	instanceOnce.Do(func() {
		host, _ := os.Hostname()
		if host == "" {
			host = "windrow"
		}
		var b [3]byte
		_, _ = rand.Read(b[:])
		instance = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	})
	return instance
}

var (
	instanceOnce sync.Once
	instance     string
)
