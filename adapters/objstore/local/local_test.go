package local_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/objstore/objstoretest"
)

// newStore opens a store in a fresh directory.
func newStore(t *testing.T) *local.Store {
	t.Helper()
	s, err := local.New(t.TempDir())
	if err != nil {
		t.Fatalf("NewLocal: %v", err)
	}
	return s
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read dir %s: %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func mustPut(t *testing.T, s *local.Store, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, data); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

func TestNewLocalRootIsAbsoluteAndCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := local.New(dir)
	if err != nil {
		t.Fatalf("NewLocal: %v", err)
	}
	if !filepath.IsAbs(s.Root()) || s.Root() != dir {
		t.Fatalf("Root = %q, want %q", s.Root(), dir)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("root not created: %v", err)
	}
}

// TestPendingWriteIsATempFile: until Commit, a write is a ".tmp-" file next
// to its final name, which List skips and no key can name; Commit renames
// it, Abort removes it.
func TestPendingWriteIsATempFile(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustPut(t, s, "w/done.parquet", []byte("committed"))
	w, err := s.Create(ctx, "w/new.parquet")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { w.Abort() })
	if _, err := w.Write([]byte("half a segment")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	names := dirNames(t, filepath.Join(s.Root(), "w"))
	if len(names) != 2 || names[1] != "done.parquet" || !strings.HasPrefix(names[0], ".tmp-") {
		t.Fatalf("directory = %v, want a .tmp- file and done.parquet", names)
	}
	if _, err := s.Get(ctx, "w/"+names[0]); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Get of the temporary file: err = %v, want ErrInvalidKey", err)
	}
	if _, _, err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if names := dirNames(t, filepath.Join(s.Root(), "w")); !slices.Equal(names, []string{"done.parquet", "new.parquet"}) {
		t.Fatalf("directory after Commit = %v, want [done.parquet new.parquet]", names)
	}

	w, err = s.Create(ctx, "w/aborted.parquet")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if names := dirNames(t, filepath.Join(s.Root(), "w")); !slices.Equal(names, []string{"done.parquet", "new.parquet"}) {
		t.Fatalf("directory after Abort = %v, want [done.parquet new.parquet]", names)
	}
}

// TestConcurrentPutsLeaveNoTempFiles: every losing write of a key is
// renamed over or removed, not left behind.
func TestConcurrentPutsLeaveNoTempFiles(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := s.Put(ctx, "same", bytes.Repeat([]byte{byte('a' + i)}, 64<<10*(i+1))); err != nil {
				t.Errorf("Put: %v", err)
			}
		})
	}
	wg.Wait()
	if names := dirNames(t, s.Root()); !slices.Equal(names, []string{"same"}) {
		t.Fatalf("root holds %v, want only [same]", names)
	}
}

// TestEscapingKeysCannotTouchFilesOutsideRoot would fail if the ".."
// protection were removed: the victim file next to the root stays as it was,
// no new file appears outside the root, and no invalid key writes a file
// inside it.
func TestEscapingKeysCannotTouchFilesOutsideRoot(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	victim := filepath.Join(parent, "victim")
	if err := os.WriteFile(victim, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := local.New(filepath.Join(parent, "root"))
	if err != nil {
		t.Fatalf("NewLocal: %v", err)
	}
	// The store can write its own keys: the failures below are about the keys.
	mustPut(t, s, "inside", []byte("ok"))

	for _, key := range []string{"../victim", "a/../../victim", "../new", "a/b/../../../new"} {
		if _, err := s.Put(ctx, key, []byte("evil")); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Delete(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if got, err := s.Get(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Get(%q) = %q, %v; want ErrInvalidKey", key, got, err)
		}
	}
	if err := s.DeletePrefix(ctx, ".."); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("DeletePrefix(..): err = %v, want ErrInvalidKey", err)
	}
	if got, err := os.ReadFile(victim); err != nil || string(got) != "original" {
		t.Fatalf("file outside the root = %q, %v; want it untouched", got, err)
	}
	// The errors are the suite's business; here only the files count.
	for _, key := range objstoretest.InvalidKeys() {
		if w, err := s.Create(ctx, key); err == nil {
			w.Abort()
		}
		s.Put(ctx, key, []byte("evil"))
	}
	if names := dirNames(t, parent); !slices.Equal(names, []string{"root", "victim"}) {
		t.Fatalf("directory around the root holds %v, want [root victim]", names)
	}
	if names := dirNames(t, s.Root()); !slices.Equal(names, []string{"inside"}) {
		t.Fatalf("root holds %v after invalid keys, want [inside]", names)
	}
}

// TestPathStaysInsideRoot: for any string, Path either rejects it with
// ErrInvalidKey or returns a path strictly inside the root.
func TestPathStaysInsideRoot(t *testing.T) {
	s := newStore(t)
	root := s.Root()
	// Keys built from path-like tokens hit the interesting cases far more
	// often than arbitrary strings; both are drawn.
	token := rapid.SampledFrom([]string{"..", ".", "", "a", "b.c", ".tmp-1", "..a", "a..", "\\", "\x00", "/", "~"})
	tokenKey := rapid.Custom(func(t *rapid.T) string {
		parts := rapid.SliceOfN(token, 1, 8).Draw(t, "parts")
		return strings.Join(parts, rapid.SampledFrom([]string{"/", "//", "/./"}).Draw(t, "sep"))
	})
	keys := rapid.OneOf(rapid.String(), tokenKey)
	rapid.Check(t, func(t *rapid.T) {
		key := keys.Draw(t, "key")
		p, err := s.Path(key)
		if err != nil {
			if !errors.Is(err, objstore.ErrInvalidKey) {
				t.Fatalf("Path(%q): err = %v, want nil or ErrInvalidKey", key, err)
			}
			return
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			t.Fatalf("Path(%q) = %q: Rel: %v", key, p, err)
		}
		if rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			t.Fatalf("Path(%q) = %q is not inside root %q (rel %q)", key, p, root, rel)
		}
		clean, err := objstore.CleanKey(key)
		if err != nil {
			t.Fatalf("CleanKey(%q) fails but Path succeeded: %v", key, err)
		}
		if again, err := objstore.CleanKey(clean); err != nil || again != clean {
			t.Fatalf("CleanKey not idempotent: %q → %q → %q, %v", key, clean, again, err)
		}
		for _, part := range strings.Split(clean, "/") {
			if strings.HasPrefix(part, ".tmp-") {
				t.Fatalf("CleanKey(%q) = %q names a pending write", key, clean)
			}
		}
	})
}

// TestStoreIsPrivate guards the modes of what the store creates: its root,
// the directories of keys and the objects have no permissions for group or
// others.
func TestStoreIsPrivate(t *testing.T) {
	root := filepath.Join(t.TempDir(), "objects")
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "a/b/c", []byte("x"))
	for _, p := range []string{"", "a", "a/b", "a/b/c"} {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("objects/%s: mode %v, want no permissions for group or others", p, perm)
		}
	}
}
