package duckdbwh_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
	"github.com/windrow/windrow/adapters/warehouse/warehousetest"
)

// remoteStore hides the local store's files: the warehouse must copy each
// object, as it would from a bucket.
type remoteStore struct{ objstore.Store }

// TestConformance runs the warehouse conformance suite over a store whose
// objects DuckDB hard-links into its load directory, and over one whose
// objects it copies there (which must all be gone after each test).
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(objstore.Store) objstore.Store
	}{
		{"LocalFiles", func(s objstore.Store) objstore.Store { return s }},
		{"Copied", func(s objstore.Store) objstore.Store { return remoteStore{s} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warehousetest.Run(t, warehousetest.Harness{
				Open: func(t *testing.T) warehousetest.Instance {
					store, err := local.New(filepath.Join(t.TempDir(), "objects"))
					if err != nil {
						t.Fatal(err)
					}
					temp := t.TempDir()
					t.Cleanup(func() {
						if left, _ := os.ReadDir(temp); len(left) > 0 {
							t.Errorf("%d files left behind in %s", len(left), temp)
						}
					})
					objects := tc.store(store)
					// A short IdleClose lets Unavailable take the file.
					w, err := duckdbwh.Open(duckdbwh.Config{Path: filepath.Join(t.TempDir(), "wh.duckdb"),
						IdleClose: 100 * time.Millisecond, Threads: 1, Objects: objects, TempDir: temp})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() {
						// Each load removes its files; Close, the load directory.
						if left, _ := filepath.Glob(filepath.Join(temp, "*", "*")); len(left) > 0 {
							t.Errorf("%d load files left behind: %v", len(left), left)
						}
						if err := w.Close(); err != nil {
							t.Errorf("close: %v", err)
						}
					})
					return warehousetest.Instance{Warehouse: w, Objects: objects, DB: w.DB}
				},
				Unavailable: func(t *testing.T, in warehousetest.Instance) func() {
					return lockFile(t, in.Warehouse.(*duckdbwh.Warehouse).Path())
				},
			})
		})
	}
}

// lockFile has another process take the database file, once the warehouse
// has let go of it (IdleClose), and returns the func that ends the process.
func lockFile(t *testing.T, path string) func() {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		line, stop := holdLock(t, path)
		if line == "locked" {
			return stop
		}
		stop()
		if time.Now().After(deadline) {
			t.Fatalf("file still held by the warehouse after idle close: %s", line)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
