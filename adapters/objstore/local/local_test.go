package local_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
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

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
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

func TestCreateCommitIsAtomic(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const key = "staging/p/w/seg.parquet"
	data := bytes.Repeat([]byte("0123456789"), 10_000)

	w, err := s.Create(ctx, key)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := w.Write(data[:len(data)/2]); err != nil {
		t.Fatalf("Write: %v", err)
	}
	final, err := s.Path(key)
	if err != nil {
		t.Fatalf("Path: %v", err)
	}
	// Half written: nothing is visible under the final name.
	if _, err := os.Stat(final); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("final file visible before Commit: stat err = %v", err)
	}
	if _, err := s.Get(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get before Commit: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Open(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Open before Commit: err = %v, want ErrNotFound", err)
	}
	if keys, err := s.List(ctx, "staging"); err != nil || len(keys) != 0 {
		t.Fatalf("List before Commit = %v, %v; want no keys", keys, err)
	}

	if _, err := w.Write(data[len(data)/2:]); err != nil {
		t.Fatalf("Write: %v", err)
	}
	size, sum, err := w.Commit()
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if size != int64(len(data)) {
		t.Errorf("Commit size = %d, want %d", size, len(data))
	}
	if want := sha(data); sum != want {
		t.Errorf("Commit sha = %s, want %s", sum, want)
	}
	got, err := s.Get(ctx, key)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after Commit: %d bytes, err %v; want the %d bytes written", len(got), err, len(data))
	}
	// The temporary file is gone: the directory holds exactly the object.
	if names := dirNames(t, filepath.Dir(final)); !slices.Equal(names, []string{"seg.parquet"}) {
		t.Fatalf("directory after Commit = %v, want [seg.parquet]", names)
	}
	if _, _, err := w.Commit(); err == nil {
		t.Fatal("second Commit succeeded, want an error")
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const key = "a/b.parquet"
	w, err := s.Create(ctx, key)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if names := dirNames(t, filepath.Join(s.Root(), "a")); len(names) != 0 {
		t.Fatalf("directory after Abort = %v, want empty", names)
	}
	if _, err := s.Get(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after Abort: err = %v, want ErrNotFound", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("second Abort: %v, want nil", err)
	}
	if _, _, err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded, want an error")
	}
	if _, err := s.Get(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after Commit-after-Abort: err = %v, want ErrNotFound", err)
	}
}

// TestAbortKeepsPreviousVersion: an aborted rewrite of a key leaves the
// committed object as it was.
func TestAbortKeepsPreviousVersion(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustPut(t, s, "k", []byte("v1"))
	w, err := s.Create(ctx, "k")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := w.Write([]byte("v2 but longer")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got, err := s.Get(ctx, "k"); err != nil || string(got) != "v1" {
		t.Fatalf("Get during rewrite = %q, %v; want v1", got, err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if got, err := s.Get(ctx, "k"); err != nil || string(got) != "v1" {
		t.Fatalf("Get after aborted rewrite = %q, %v; want v1", got, err)
	}
}

// TestUncommittedWriterLeavesOnlyTempFile is the crash case: a writer that is
// neither committed nor aborted leaves only a .tmp- file, which List skips and
// no key can name.
func TestUncommittedWriterLeavesOnlyTempFile(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustPut(t, s, "w/done.parquet", []byte("committed"))
	w, err := s.Create(ctx, "w/crashed.parquet")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { w.Abort() })
	if _, err := w.Write([]byte("half a segment")); err != nil {
		t.Fatalf("Write: %v", err)
	}

	names := dirNames(t, filepath.Join(s.Root(), "w"))
	if len(names) != 2 || names[0] != "done.parquet" && names[1] != "done.parquet" {
		t.Fatalf("directory = %v, want done.parquet and one temporary file", names)
	}
	var tmp string
	for _, n := range names {
		if n != "done.parquet" {
			tmp = n
		}
	}
	if !strings.HasPrefix(tmp, ".tmp-") {
		t.Fatalf("pending file %q does not start with .tmp-", tmp)
	}
	keys, err := s.List(ctx, "w")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if !slices.Equal(keys, []string{"w/done.parquet"}) {
		t.Fatalf("List = %v, want [w/done.parquet]", keys)
	}
	if _, err := s.Get(ctx, "w/"+tmp); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Get of the temporary file: err = %v, want ErrInvalidKey", err)
	}
	if _, err := s.Get(ctx, "w/crashed.parquet"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get of the uncommitted key: err = %v, want ErrNotFound", err)
	}
}

func TestPutGetOpenSize(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("hello, parquet")
	sum, err := s.Put(ctx, "x/y/z.bin", data)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if sum != sha(data) {
		t.Errorf("Put sha = %s, want %s", sum, sha(data))
	}
	got, err := s.Get(ctx, "x/y/z.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, %v; want %q", got, err, data)
	}

	obj, err := s.Open(ctx, "x/y/z.bin")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Close()
	if obj.Size() != int64(len(data)) {
		t.Errorf("Size = %d, want %d", obj.Size(), len(data))
	}
	buf := make([]byte, 7)
	if _, err := obj.ReadAt(buf, 7); err != nil || string(buf) != "parquet" {
		t.Errorf("ReadAt(7) = %q, %v; want %q", buf, err, "parquet")
	}

	// A rewrite replaces the object as a whole: no tail of the longer version.
	shorter := []byte("hi")
	sum2, err := s.Put(ctx, "x/y/z.bin", shorter)
	if err != nil {
		t.Fatalf("second Put: %v", err)
	}
	if sum2 != sha(shorter) {
		t.Errorf("second Put sha = %s, want %s", sum2, sha(shorter))
	}
	if got, err := s.Get(ctx, "x/y/z.bin"); err != nil || string(got) != "hi" {
		t.Fatalf("Get after rewrite = %q, %v; want %q", got, err, "hi")
	}

	// Empty objects are objects.
	if sum, err := s.Put(ctx, "empty", nil); err != nil || sum != sha(nil) {
		t.Fatalf("Put empty = %s, %v; want %s", sum, err, sha(nil))
	}
	if got, err := s.Get(ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("Get empty = %q, %v", got, err)
	}
}

func TestKeysAreCleaned(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustPut(t, s, "a//b/./c", []byte("1"))
	if got, err := s.Get(ctx, "a/b/c"); err != nil || string(got) != "1" {
		t.Fatalf("Get a/b/c = %q, %v; want the object put as a//b/./c", got, err)
	}
	tests := []struct{ key, want string }{
		{"a/b", "a/b"},
		{"a//b", "a/b"},
		{"./a", "a"},
		{"a/./b/", "a/b"},
		{"a/b/../c", "a/c"},
	}
	for _, tt := range tests {
		got, err := objstore.CleanKey(tt.key)
		if err != nil || got != tt.want {
			t.Errorf("CleanKey(%q) = %q, %v; want %q", tt.key, got, err, tt.want)
		}
	}
}

func TestMissingKeys(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Get: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Open(ctx, "no/pe"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Open: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "nope"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
	if err := s.DeletePrefix(ctx, "no/pe"); err != nil {
		t.Errorf("DeletePrefix of a missing prefix: %v, want nil", err)
	}
	if keys, err := s.List(ctx, "no/pe"); err != nil || len(keys) != 0 {
		t.Errorf("List of a missing prefix = %v, %v; want none", keys, err)
	}
}

func TestListDeleteDeletePrefix(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, k := range []string{"a/2", "a/1", "a/b/3", "ab/4", "c"} {
		mustPut(t, s, k, []byte(k))
	}
	keys, err := s.List(ctx, "a")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if want := []string{"a/1", "a/2", "a/b/3"}; !slices.Equal(keys, want) {
		t.Fatalf("List(a) = %v, want %v (sorted, nested, not ab/)", keys, want)
	}
	if keys, _ := s.List(ctx, "c"); !slices.Equal(keys, []string{"c"}) {
		t.Fatalf("List of a file key = %v, want [c]", keys)
	}

	if err := s.Delete(ctx, "a/2"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "a/2"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.DeletePrefix(ctx, "a"); err != nil {
		t.Fatalf("DeletePrefix: %v", err)
	}
	if keys, err := s.List(ctx, "a"); err != nil || len(keys) != 0 {
		t.Fatalf("List(a) after DeletePrefix = %v, %v; want none", keys, err)
	}
	for _, k := range []string{"ab/4", "c"} {
		if got, err := s.Get(ctx, k); err != nil || string(got) != k {
			t.Fatalf("Get %s after DeletePrefix(a) = %q, %v; want it untouched", k, got, err)
		}
	}
}

// TestConcurrentPutsOfOneKey: readers only ever see one whole version.
func TestConcurrentPutsOfOneKey(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	versions := make([][]byte, 4)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10*(i+1))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(versions))
	for _, v := range versions {
		wg.Go(func() {
			if _, err := s.Put(ctx, "same", v); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Put: %v", err)
	}
	got, err := s.Get(ctx, "same")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, got) }) {
		t.Fatalf("Get returned %d bytes that are none of the versions written", len(got))
	}
	if names := dirNames(t, s.Root()); !slices.Equal(names, []string{"same"}) {
		t.Fatalf("root holds %v, want only [same]", names)
	}
}

// invalidKeys try to leave the root, name a pending write, or are not keys.
var invalidKeys = []string{
	"", ".", "..", "../x", "a/../../x", "../../etc/passwd", "/etc/passwd", "/",
	"a\x00b", "a\\b", "..\\x", ".tmp-x", "a/.tmp-y", "a/.tmp-y/z", "a/..", "./..", "a/./../..",
}

func TestInvalidKeys(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, key := range invalidKeys {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			ops := []struct {
				name string
				call func() error
			}{
				{"CleanKey", func() error { _, err := objstore.CleanKey(key); return err }},
				{"Path", func() error { _, err := s.Path(key); return err }},
				{"Create", func() error {
					w, err := s.Create(ctx, key)
					if err == nil {
						w.Abort()
					}
					return err
				}},
				{"Put", func() error { _, err := s.Put(ctx, key, []byte("x")); return err }},
				{"Get", func() error { _, err := s.Get(ctx, key); return err }},
				{"Open", func() error {
					o, err := s.Open(ctx, key)
					if err == nil {
						o.Close()
					}
					return err
				}},
				{"Delete", func() error { return s.Delete(ctx, key) }},
				{"DeletePrefix", func() error { return s.DeletePrefix(ctx, key) }},
				{"List", func() error { _, err := s.List(ctx, key); return err }},
			}
			for _, op := range ops {
				if err := op.call(); !errors.Is(err, objstore.ErrInvalidKey) {
					t.Errorf("%s(%q): err = %v, want ErrInvalidKey", op.name, key, err)
				}
			}
		})
	}
	if names := dirNames(t, s.Root()); len(names) != 0 {
		t.Fatalf("root after invalid keys holds %v, want nothing", names)
	}
}

// TestEscapingKeysCannotTouchFilesOutsideRoot would fail if the ".."
// protection were removed: the victim file next to the root stays as it was
// and no new file appears outside the root.
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
	if names := dirNames(t, parent); !slices.Equal(names, []string{"root", "victim"}) {
		t.Fatalf("directory around the root holds %v, want [root victim]", names)
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

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newStore(t)
	if _, err := s.Create(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Create: err = %v, want context.Canceled", err)
	}
	if _, err := s.Put(ctx, "k", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put: err = %v, want context.Canceled", err)
	}
	if _, err := s.Open(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Open: err = %v, want context.Canceled", err)
	}
	if names := dirNames(t, s.Root()); len(names) != 0 {
		t.Fatalf("root holds %v after canceled writes, want nothing", names)
	}
}

// TestRemoveStaleTemps: pending files older than the threshold (left by a
// killed writer) go; a live writer's file and committed objects stay.
func TestRemoveStaleTemps(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustPut(t, s, "a/done.parquet", []byte("committed"))
	// A writer that is never committed nor aborted: its process "died".
	if _, err := s.Create(ctx, "a/killed.parquet"); err != nil {
		t.Fatal(err)
	}
	live, err := s.Create(ctx, "b/writing.parquet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Abort() })
	// The killed writer's file was last written two hours ago.
	var staleName string
	for _, n := range dirNames(t, filepath.Join(s.Root(), "a")) {
		if strings.HasPrefix(n, ".tmp-") {
			staleName = filepath.Join(s.Root(), "a", n)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(staleName, old, old); err != nil {
		t.Fatal(err)
	}
	n, err := s.RemoveStaleTemps(ctx, "", time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("RemoveStaleTemps = %d, %v; want 1 removed", n, err)
	}
	if _, err := os.Stat(staleName); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file still there: %v", err)
	}
	if got := dirNames(t, filepath.Join(s.Root(), "b")); len(got) != 1 {
		t.Errorf("the live writer's file was removed: %v", got)
	}
	if _, err := live.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := live.Commit(); err != nil {
		t.Fatalf("live writer commit: %v", err)
	}
	a, _ := s.List(ctx, "a")
	b, _ := s.List(ctx, "b")
	if keys := append(a, b...); !slices.Equal(keys, []string{"a/done.parquet", "b/writing.parquet"}) {
		t.Errorf("keys %v", keys)
	}
}
