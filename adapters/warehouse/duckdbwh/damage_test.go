package duckdbwh

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/windrow/windrow/adapters/warehouse"
)

// TestDamagedFileRefusedAtOpen: a file that is not a DuckDB database (here
// a truncated one and a text file) is refused once, at Open, with what to
// do; it used to be opened lazily and fail every load, each window FAILED
// in turn. A missing file and an empty one are fine.
func TestDamagedFileRefusedAtOpen(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"text.duckdb": "hello, this is not a database\n", "short.duckdb": "\x00\x01"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(Config{Path: path})
		if !errors.Is(err, warehouse.ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "restore") {
			t.Errorf("%s: Open = %v, want ErrDamaged naming the file and what to do", name, err)
		}
		if warehouse.IsTransient(err) {
			t.Errorf("%s: a damaged file is transient", name)
		}
	}
	empty := filepath.Join(dir, "empty.duckdb")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.duckdb"), empty} {
		w, err := Open(Config{Path: path})
		if err != nil {
			t.Errorf("Open(%s): %v", path, err)
			continue
		}
		w.Close()
	}
}

// TestDiskFullIsTransient: DuckDB's "No space left on device" (and ENOSPC
// itself) is retried with backoff, as ErrDiskFull, instead of failing the
// window for good.
func TestDiskFullIsTransient(t *testing.T) {
	for _, err := range []error{
		errors.New(`IO Error: Could not write file "/data/warehouse.duckdb.wal": No space left on device`),
		fmt.Errorf("write segment: %w", syscall.ENOSPC),
	} {
		got := classify(err)
		if !errors.Is(got, warehouse.ErrDiskFull) || !warehouse.IsTransient(got) {
			t.Errorf("classify(%v) = %v, want ErrDiskFull, transient", err, got)
		}
	}
	if got := classify(errors.New("Catalog Error: Table with name x does not exist")); warehouse.IsTransient(got) {
		t.Errorf("a missing table is transient: %v", got)
	}
}
