package local_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/objstore/objstoretest"
)

func TestConformance(t *testing.T) {
	opts := []objstoretest.Option{objstoretest.AgeUnfinishedWrites(ageUnfinishedWrites)}
	if runtime.GOOS == "windows" {
		// Windows cannot replace or delete a file that is open.
		opts = append(opts, objstoretest.OpenObjectsMayBlockReplace())
	}
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return newStore(t) }, opts...)
}

// ageUnfinishedWrites sets the modification time of the ".tmp-" files in
// key's directory to at: what a writer killed at that time leaves.
func ageUnfinishedWrites(t *testing.T, s objstore.Store, key string, at time.Time) {
	t.Helper()
	p, err := s.(*local.Store).Path(key)
	if err != nil {
		t.Fatalf("Path: %v", err)
	}
	dir := filepath.Dir(p)
	aged := 0
	for _, name := range dirNames(t, dir) {
		if strings.HasPrefix(name, ".tmp-") {
			if err := os.Chtimes(filepath.Join(dir, name), at, at); err != nil {
				t.Fatal(err)
			}
			aged++
		}
	}
	if aged == 0 {
		t.Fatalf("no unfinished write in %s", dir)
	}
}
