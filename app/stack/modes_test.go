package stack_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/windrow/windrow/app/stack"
)

// TestDataDirIsPrivate guards the modes of what a stack creates in its data
// directory: the directory itself, the JetStream store, nats.url and
// nats.nkey, the object store (and the directories and objects in it), and
// the DuckDB file and its write-ahead log have no permission bits for group
// or others.
func TestDataDirIsPrivate(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data") // new: t.TempDir itself is 0700 already
	s, err := stack.Open(ctx, stack.Config{DataDir: dir, Embedded: true, NATSPort: -1, Instance: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// An object, in directories the store creates.
	wr, err := s.Store.Create(ctx, "a/b/c.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wr.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := wr.Commit(); err != nil {
		t.Fatal(err)
	}
	// The DuckDB file is created on first use; a commit starts its WAL.
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t AS SELECT 1 AS x"); err != nil {
		t.Fatal(err)
	}
	release()

	for _, p := range []string{
		"", "nats", "nats.url", "nats.nkey",
		"objects", "objects/a", "objects/a/b", "objects/a/b/c.parquet",
		"warehouse.duckdb", "warehouse.duckdb.wal",
	} {
		st, err := os.Stat(filepath.Join(dir, p))
		if errors.Is(err, fs.ErrNotExist) && strings.HasSuffix(p, ".wal") {
			continue // checkpointed and gone already
		}
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s/%s: mode %v, want no permissions for group or others", filepath.Base(dir), p, perm)
		}
	}
}
