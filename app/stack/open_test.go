package stack

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
)

func TestOpenObjects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, raw := range []string{filepath.Join(dir, "a"), "file://" + filepath.Join(dir, "b")} {
		s, err := OpenObjects(ctx, raw)
		if err != nil {
			t.Fatalf("OpenObjects(%q): %v", raw, err)
		}
		if _, ok := s.(*local.Store); !ok {
			t.Errorf("OpenObjects(%q) = %T, want a local store", raw, s)
		}
	}
	for raw, want := range map[string]string{
		"file://":       "without a path",
		"gs://bucket/x": `scheme "gs"`,
		"s3://bucket/x?endpont=http://127.0.0.1:1": `unknown option "endpont"`,
		"s3://bucket/x?path_style=maybe":           `path_style="maybe"`,
		"s3://user:hunter2@bucket/x?region=q&bad=": `unknown option "bad"`,
	} {
		s, err := OpenObjects(ctx, raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenObjects(%q) = %v, %v; want an error with %q", raw, s, err, want)
		}
		if s != nil {
			t.Errorf("OpenObjects(%q): a store (%T) with the error; want a nil interface", raw, s)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("OpenObjects(%q): the error shows the password: %v", raw, err)
		}
	}
}

func TestOpenWarehouse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, raw := range []string{filepath.Join(dir, "a.duckdb"), "duckdb://" + filepath.Join(dir, "b.duckdb")} {
		w, err := OpenWarehouse(ctx, raw, nil)
		if err != nil {
			t.Fatalf("OpenWarehouse(%q): %v", raw, err)
		}
		if _, ok := w.(*duckdbwh.Warehouse); !ok {
			t.Errorf("OpenWarehouse(%q) = %T, want DuckDB", raw, w)
		}
		w.Close()
	}
	for raw, want := range map[string]string{
		"duckdb://":                        "without a path",
		"mysql://root:hunter2@db/x":        `scheme "mysql"`,
		"snowflake://acct/db?warehouse=wh": `scheme "snowflake"`,
	} {
		w, err := OpenWarehouse(ctx, raw, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenWarehouse(%q) = %v, %v; want an error with %q", raw, w, err, want)
		}
		if w != nil {
			t.Errorf("OpenWarehouse(%q): a warehouse (%T) with the error; want a nil interface", raw, w)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("OpenWarehouse(%q): the error shows the password: %v", raw, err)
		}
	}
}

// TestOpenWarehouseReadOnly guards the warehouse windrow query and reconcile
// open: a DuckDB file is not created (nor its directory), and Load is
// refused.
func TestOpenWarehouseReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such.duckdb")
	w, err := OpenWarehouseReadOnly(ctx, missing)
	if err != nil {
		t.Fatalf("OpenWarehouseReadOnly(%q): %v", missing, err)
	}
	if _, _, err := w.DB(ctx); err == nil {
		t.Errorf("DB of a missing read-only file: no error, want one")
	}
	w.Close()
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only open made %s (stat: %v), want nothing", filepath.Dir(missing), err)
	}

	file := filepath.Join(dir, "w.duckdb")
	rw, err := OpenWarehouse(ctx, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, release, err := rw.DB(ctx) // creates the file
	if err != nil {
		t.Fatal(err)
	}
	release()
	rw.Close()
	w, err = OpenWarehouseReadOnly(ctx, "duckdb://"+file)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, _, err = w.Load(ctx, warehouse.Batch{ID: "b1", Table: "t"})
	if !errors.Is(err, warehouse.ErrReadOnly) {
		t.Errorf("Load of a read-only warehouse = %v, want %v", err, warehouse.ErrReadOnly)
	}
}
