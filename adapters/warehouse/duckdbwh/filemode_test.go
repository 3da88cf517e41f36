package duckdbwh_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
)

// createTable opens path with a new Warehouse and commits a table through
// DB, which starts a write-ahead log; the file stays open (IdleClose) until
// the test ends.
func createTable(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	w, err := duckdbwh.Open(duckdbwh.Config{Path: path, IdleClose: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	db, release, err := w.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t AS SELECT 1 AS x"); err != nil {
		t.Fatal(err)
	}
	release()
}

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestCreatedFileIsPrivate guards the modes of a database file the
// warehouse creates, and of its directory and write-ahead log: no
// permissions for group or others.
func TestCreatedFileIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	path := filepath.Join(dir, "w.duckdb")
	createTable(t, path)
	for _, p := range []string{dir, path, path + ".wal"} {
		if got := perm(t, p); got&0o077 != 0 {
			t.Errorf("%s: mode %v, want no permissions for group or others", filepath.Base(p), got)
		}
	}
}

// TestExistingFileKeepsItsMode guards the mode of a database file someone
// else made: the warehouse leaves it alone, and its write-ahead log gets
// no permission the file lacks.
func TestExistingFileKeepsItsMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.duckdb")
	w, err := duckdbwh.Open(duckdbwh.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	_, release, err := w.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	createTable(t, path)
	if got := perm(t, path); got != 0o640 {
		t.Errorf("database file: mode %v, want 0640 as it was", got)
	}
	if got := perm(t, path+".wal"); got&^0o640 != 0 {
		t.Errorf("write-ahead log: mode %v, want none beyond the file's 0640", got)
	}
	if _, err := os.Stat(path + ".wal"); errors.Is(err, fs.ErrNotExist) {
		t.Fatal("no write-ahead log to check")
	}
}
