package local_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/internal/testdisk"
)

// TestDiskFullWritesWrapErrDiskFull guards issue 12 (item 8): on a real
// file system with no space left, every way of writing fails with an error
// wrapping objstore.ErrDiskFull (transient: callers retry), leaves no
// temporary file, and the store reports the disk full since the first
// failure; once space is freed the same writes commit and the report clears.
func TestDiskFullWritesWrapErrDiskFull(t *testing.T) {
	disk := testdisk.New(t, 1<<20)
	s, err := local.New(disk.Dir + "/objects")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustPut(t, s, "staging/p/before", []byte("written while there was space"))
	if _, full := s.DiskFull(); full {
		t.Fatal("DiskFull reports full before the disk filled")
	}
	disk.Fill(t)
	before := time.Now()

	big := bytes.Repeat([]byte("x"), 256<<10)
	_, err = s.Put(ctx, "staging/p/seg-1", big)
	if !errors.Is(err, objstore.ErrDiskFull) {
		t.Fatalf("Put on a full disk: err %v, want it to wrap objstore.ErrDiskFull", err)
	}
	t.Logf("Put on a full disk: %v", err)
	since, full := s.DiskFull()
	if !full || since.Before(before.Add(-time.Second)) || since.After(time.Now()) {
		t.Fatalf("DiskFull() = %v, %v after a failed write; want true since the failure", since, full)
	}

	// A streamed write (what segment and batch writers do): the failing
	// Write or, at the latest, Commit wraps ErrDiskFull.
	w, err := s.Create(ctx, "batches/p/b-1.parquet")
	if err == nil {
		_, err = w.Write(big)
		if err == nil {
			_, _, err = w.Commit()
		}
		w.Abort()
	}
	if !errors.Is(err, objstore.ErrDiskFull) {
		t.Fatalf("streamed write on a full disk: err %v, want it to wrap objstore.ErrDiskFull", err)
	}
	if again, _ := s.DiskFull(); !again.Equal(since) {
		t.Errorf("DiskFull since %v after a second failure, want the first failure's %v", again, since)
	}
	for _, prefix := range []string{"staging", "batches"} {
		keys, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(keys, ",") != map[string]string{"staging": "staging/p/before", "batches": ""}[prefix] {
			t.Errorf("List(%s) after failed writes = %v: a failed write left an object", prefix, keys)
		}
	}
	if n, err := s.RemoveStaleTemps(ctx, "", time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("temporary files left by failed writes: %d (err %v), want 0", n, err)
	}

	disk.Free(t)
	if _, err := s.Put(ctx, "staging/p/seg-1", big); err != nil {
		t.Fatalf("Put after space was freed: %v", err)
	}
	if got, err := s.Get(ctx, "staging/p/seg-1"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Get after the retried Put: %d bytes, err %v; want the %d bytes written", len(got), err, len(big))
	}
	if _, full := s.DiskFull(); full {
		t.Error("DiskFull still reports full after a write committed")
	}
}
