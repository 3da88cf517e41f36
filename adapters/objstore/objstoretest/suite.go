package objstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/windrow/windrow/adapters/objstore"
)

// commitMakesObjectVisible: a Writer's data is visible under its key, as a
// whole, only once it commits; Commit reports the size and SHA-256.
func (s *suite) commitMakesObjectVisible(t *testing.T) {
	st := s.open(t)
	const key = "dir/sub/object.bin"
	put(t, st, "dir/other.bin", []byte("other"))
	data := pattern(100_000, 1)

	w := create(t, st, key)
	write(t, w, data[:len(data)/2])
	wantNotFound(t, st, key)
	wantList(t, st, "dir", "dir/other.bin")

	write(t, w, data[len(data)/2:])
	wantNotFound(t, st, key)
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
	wantObject(t, st, key, data)
	wantList(t, st, "dir", "dir/other.bin", key)
}

// uncommittedRewriteShowsPreviousVersion: while a rewrite of a key is being
// written, readers and List see the committed version, not the new one.
func (s *suite) uncommittedRewriteShowsPreviousVersion(t *testing.T) {
	st := s.open(t)
	const key = "k/obj"
	v1, v2 := pattern(1000, 1), pattern(3000, 2)
	put(t, st, key, v1)
	w := create(t, st, key)
	write(t, w, v2[:2000])
	wantObject(t, st, key, v1)
	wantList(t, st, "k", key)
	write(t, w, v2[2000:])
	wantObject(t, st, key, v1)
	if _, _, err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	wantObject(t, st, key, v2)
	wantList(t, st, "k", key)
}

// abortKeepsPreviousVersion: Abort leaves the previous version, or nothing.
func (s *suite) abortKeepsPreviousVersion(t *testing.T) {
	st := s.open(t)
	put(t, st, "k/obj", []byte("v1"))
	w := create(t, st, "k/obj")
	write(t, w, []byte("v2 but longer"))
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	wantObject(t, st, "k/obj", []byte("v1"))

	w = create(t, st, "fresh/obj")
	write(t, w, []byte("never committed"))
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	wantNotFound(t, st, "fresh/obj")
	wantList(t, st, "fresh")
	wantList(t, st, "k", "k/obj")
}

// writerFinishesOnce: a Writer commits or aborts once. Commit after either
// fails and changes nothing; Abort after either is a no-op returning nil
// (so a deferred Abort is safe); Write after either fails.
func (s *suite) writerFinishesOnce(t *testing.T) {
	st := s.open(t)
	w := create(t, st, "done")
	write(t, w, []byte("v1"))
	if _, _, err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if _, _, err := w.Commit(); err == nil {
		t.Error("second Commit succeeded, want an error")
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after Commit succeeded, want an error")
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v, want nil", err)
	}
	wantObject(t, st, "done", []byte("v1"))

	w = create(t, st, "aborted")
	write(t, w, []byte("x"))
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("second Abort: %v, want nil", err)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after Abort succeeded, want an error")
	}
	if _, _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded, want an error")
	}
	wantNotFound(t, st, "aborted")
}

// putReturnsSHA256: Put returns the hex SHA-256 of what it stored.
func (s *suite) putReturnsSHA256(t *testing.T) {
	st := s.open(t)
	data := []byte("hello, parquet")
	sum, err := st.Put(t.Context(), "x/y/z.bin", data)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if want := sha(data); sum != want {
		t.Errorf("Put sha = %s, want %s", sum, want)
	}
	wantObject(t, st, "x/y/z.bin", data)
}

// rewriteReplacesWholeObject: a shorter rewrite leaves no tail of the
// longer version.
func (s *suite) rewriteReplacesWholeObject(t *testing.T) {
	st := s.open(t)
	put(t, st, "k", pattern(5000, 1))
	shorter := []byte("hi")
	sum, err := st.Put(t.Context(), "k", shorter)
	if err != nil {
		t.Fatalf("second Put: %v", err)
	}
	if sum != sha(shorter) {
		t.Errorf("second Put sha = %s, want %s", sum, sha(shorter))
	}
	wantObject(t, st, "k", shorter)
}

// emptyObjectIsAnObject: zero bytes is a valid object, found and listed.
func (s *suite) emptyObjectIsAnObject(t *testing.T) {
	st := s.open(t)
	sum, err := st.Put(t.Context(), "e/empty", nil)
	if err != nil || sum != sha(nil) {
		t.Fatalf("Put empty = %s, %v; want %s", sum, err, sha(nil))
	}
	wantObject(t, st, "e/empty", nil)
	wantList(t, st, "e", "e/empty")
}

// errKind is what the io.ReaderAt contract allows a ReadAt to return.
type errKind int

const (
	errNil      errKind = iota // the read lies before the end
	errNilOrEOF                // the read ends exactly at the end
	errEOF                     // the read was cut short by the end: io.EOF itself
	errAny                     // a bad offset: some error
)

// checkReadAt checks one ReadAt against the io.ReaderAt contract: n bytes
// of data from off, and io.EOF (unwrapped: readers compare with ==) when
// fewer than len(p) bytes were read because the object ended.
func checkReadAt(obj objstore.Object, data []byte, off int64, n int) error {
	buf := make([]byte, n)
	got, err := obj.ReadAt(buf, off)
	var want []byte
	var kind errKind
	switch {
	case off < 0:
		kind = errAny
	case off >= int64(len(data)):
		kind = errEOF
	case off+int64(n) < int64(len(data)):
		want, kind = data[off:off+int64(n)], errNil
	case off+int64(n) == int64(len(data)):
		want, kind = data[off:], errNilOrEOF
	default:
		want, kind = data[off:], errEOF
	}
	if n == 0 && kind != errAny {
		kind = errNilOrEOF // an empty read has nothing to cut short
	}
	if kind == errAny {
		if err == nil {
			return fmt.Errorf("ReadAt(%d bytes, off %d) = %d, nil; want an error", n, off, got)
		}
		return nil
	}
	if got != len(want) || !bytes.Equal(buf[:got], want) {
		return fmt.Errorf("ReadAt(%d bytes, off %d) of %d bytes = %d bytes %s, want %d bytes %s",
			n, off, len(data), got, short(buf[:got]), len(want), short(want))
	}
	switch {
	case kind == errNil && err != nil:
		return fmt.Errorf("ReadAt(%d bytes, off %d) of %d bytes: err = %v, want nil", n, off, len(data), err)
	case kind == errNilOrEOF && err != nil && err != io.EOF:
		return fmt.Errorf("ReadAt(%d bytes, off %d) of %d bytes: err = %v, want nil or io.EOF", n, off, len(data), err)
	case kind == errEOF && err != io.EOF:
		return fmt.Errorf("ReadAt(%d bytes, off %d) of %d bytes: err = %v, want io.EOF", n, off, len(data), err)
	}
	return nil
}

func short(b []byte) string {
	if len(b) > 16 {
		return fmt.Sprintf("%q…", b[:16])
	}
	return fmt.Sprintf("%q", b)
}

// readAtFollowsReaderAt: ReadAt at offsets inside, across and past the end
// of an object behaves as io.ReaderAt says.
func (s *suite) readAtFollowsReaderAt(t *testing.T) {
	st := s.open(t)
	data := []byte("hello, parquet")
	put(t, st, "r", data)
	obj, err := st.Open(t.Context(), "r")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Close()
	if obj.Size() != int64(len(data)) {
		t.Errorf("Size = %d, want %d", obj.Size(), len(data))
	}
	for _, c := range []struct {
		name string
		off  int64
		n    int
	}{
		{"start", 0, 5},
		{"middle", 5, 2},
		{"to the end", 7, 7},
		{"across the end", 10, 10},
		{"at the end", 14, 4},
		{"past the end", 20, 4},
		{"empty read", 3, 0},
		{"negative offset", -1, 4},
	} {
		if err := checkReadAt(obj, data, c.off, c.n); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// readAtMatchesContent: any ReadAt of an object agrees with the bytes put.
func (s *suite) readAtMatchesContent(t *testing.T) {
	st := s.open(t)
	data := pattern(1000, 3)
	put(t, st, "r", data)
	obj, err := st.Open(t.Context(), "r")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Close()
	rapid.Check(t, func(rt *rapid.T) {
		off := rapid.Int64Range(-3, int64(len(data))+10).Draw(rt, "off")
		n := rapid.IntRange(0, len(data)+10).Draw(rt, "n")
		if err := checkReadAt(obj, data, off, n); err != nil {
			rt.Fatal(err)
		}
	})
}

// parallelReadAt: io.ReaderAt allows parallel ReadAt calls on one object.
func (s *suite) parallelReadAt(t *testing.T) {
	st := s.open(t)
	data := pattern(256<<10, 4)
	put(t, st, "p", data)
	obj, err := st.Open(t.Context(), "p")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Close()
	const readers, chunk = 8, 4 << 10
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			for off := r * chunk; off < len(data); off += readers * chunk {
				if err := checkReadAt(obj, data, int64(off), chunk+r); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// openObjectReadsItsVersionThroughOverwrite: an open Object reads the
// version it opened until Close, though the key is rewritten meanwhile.
func (s *suite) openObjectReadsItsVersionThroughOverwrite(t *testing.T) {
	st := s.open(t)
	v1, v2 := pattern(64<<10, 1), pattern(32<<10, 2)
	put(t, st, "o", v1)
	obj, err := st.Open(t.Context(), "o")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Close()
	if err := checkReadAt(obj, v1, 0, 100); err != nil {
		t.Fatal(err)
	}
	_, perr := st.Put(t.Context(), "o", v2)
	if perr != nil && !s.o.openMayBlockReplace {
		t.Fatalf("Put over an open object: %v", perr)
	}
	if obj.Size() != int64(len(v1)) {
		t.Errorf("Size after the rewrite = %d, want %d (the opened version)", obj.Size(), len(v1))
	}
	s.readVersion(t, obj, v1)
	if err := obj.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if perr == nil {
		wantObject(t, st, "o", v2)
	} else {
		wantObject(t, st, "o", v1)
	}
}

// openObjectReadsItsVersionThroughDelete: an open Object reads the version
// it opened until Close, though the key is deleted meanwhile.
func (s *suite) openObjectReadsItsVersionThroughDelete(t *testing.T) {
	st := s.open(t)
	v1 := pattern(64<<10, 1)
	put(t, st, "d/o", v1)
	obj, err := st.Open(t.Context(), "d/o")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Close()
	derr := st.Delete(t.Context(), "d/o")
	if derr != nil && !s.o.openMayBlockReplace {
		t.Fatalf("Delete of an open object: %v", derr)
	}
	s.readVersion(t, obj, v1)
	if err := obj.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if derr == nil {
		wantNotFound(t, st, "d/o")
	}
}

// readVersion checks that an open object still reads want, its version,
// after its key was rewritten or deleted. A store that may
// (ReplacedVersionsMayBeGone) may refuse instead with ErrObjectChanged,
// read by read: every read then returns bytes of want or that error, never
// another version's bytes.
func (s *suite) readVersion(t *testing.T, obj objstore.Object, want []byte) {
	t.Helper()
	buf := make([]byte, obj.Size())
	n, err := obj.ReadAt(buf, 0)
	if s.o.replacedMayBeGone && errors.Is(err, objstore.ErrObjectChanged) {
		for _, off := range []int64{0, obj.Size() / 2, obj.Size() - 1} {
			b := make([]byte, 1)
			n, err := obj.ReadAt(b, off)
			if !errors.Is(err, objstore.ErrObjectChanged) && (n != 1 || b[0] != want[off]) {
				t.Fatalf("ReadAt(1 byte, off %d) of a changed object = %d %q, %v; want ErrObjectChanged or the opened version's byte", off, n, b[:n], err)
			}
		}
		return
	}
	if n != len(buf) || err != nil && err != io.EOF {
		t.Fatalf("ReadAt of the whole object (%d bytes) = %d, %v", len(buf), n, err)
	}
	if !bytes.Equal(buf, want) {
		t.Fatalf("the open object reads %d bytes (sha %.12s) after its key changed, want its version: %d bytes (sha %.12s)",
			len(buf), sha(buf), len(want), sha(want))
	}
}

// openObjectReadsThroughIdenticalRewrite: a rewrite of a key with the bytes
// it holds (a retried write) never disturbs an open Object of it.
func (s *suite) openObjectReadsThroughIdenticalRewrite(t *testing.T) {
	st := s.open(t)
	v1 := pattern(64<<10, 1)
	put(t, st, "i/o", v1)
	obj, err := st.Open(t.Context(), "i/o")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Close()
	if _, err := st.Put(t.Context(), "i/o", v1); err != nil && !s.o.openMayBlockReplace {
		t.Fatalf("Put of the same bytes over an open object: %v", err)
	}
	if got := readAll(t, obj); !bytes.Equal(got, v1) {
		t.Fatalf("the open object reads %d bytes after a rewrite with the same bytes, want %d", len(got), len(v1))
	}
	wantObject(t, st, "i/o", v1)
}

// keysAreCleaned: keys are used in their CleanKey form; List returns it.
func (s *suite) keysAreCleaned(t *testing.T) {
	st := s.open(t)
	put(t, st, "a//b/./c", []byte("1"))
	wantObject(t, st, "a/b/c", []byte("1"))
	wantObject(t, st, "./a/b/c/", []byte("1"))
	wantList(t, st, "a", "a/b/c")
	wantList(t, st, "a/", "a/b/c")
	if err := st.Delete(t.Context(), "a/x/../b/c"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, st, "a/b/c")
}

// listIsSortedAndUnderPrefix: List returns the committed keys equal to the
// prefix or under prefix+"/", sorted bytewise: "a" lists a/1, never ab/4 or
// a.txt, and "a/1" lists a/1, never a/10.
func (s *suite) listIsSortedAndUnderPrefix(t *testing.T) {
	st := s.open(t)
	for _, k := range []string{"a/2", "a/10", "c", "a/b/3", "ab/4", "a.txt", "a/1"} {
		put(t, st, k, []byte(k))
	}
	wantList(t, st, "a", "a/1", "a/10", "a/2", "a/b/3")
	wantList(t, st, "a/", "a/1", "a/10", "a/2", "a/b/3")
	wantList(t, st, "a/b", "a/b/3")
	wantList(t, st, "ab", "ab/4")
	wantList(t, st, "a/1", "a/1")
	wantList(t, st, "c", "c")
	wantList(t, st, "a.txt", "a.txt")
	wantList(t, st, "missing")
	wantList(t, st, "a/b/3/x")
}

// deleteIsIdempotent: Delete of a missing key is not an error.
func (s *suite) deleteIsIdempotent(t *testing.T) {
	st := s.open(t)
	put(t, st, "k/1", []byte("1"))
	put(t, st, "k/2", []byte("2"))
	for range 2 {
		if err := st.Delete(t.Context(), "k/1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		wantNotFound(t, st, "k/1")
	}
	if err := st.Delete(t.Context(), "never/was"); err != nil {
		t.Fatalf("Delete of a key never written: %v", err)
	}
	wantList(t, st, "k", "k/2")
}

// prefixIsNotAKey: a name that only prefixes keys, or lies under a key, is
// no key: ErrNotFound for Get and Open, nothing to Delete.
func (s *suite) prefixIsNotAKey(t *testing.T) {
	st := s.open(t)
	put(t, st, "p/q/1", []byte("1"))
	put(t, st, "r", []byte("r"))
	for _, name := range []string{"p", "p/q", "r/s", "r/s/t"} {
		wantNotFound(t, st, name)
		if err := st.Delete(t.Context(), name); err != nil {
			t.Errorf("Delete(%q), no key: %v, want nil", name, err)
		}
	}
	if err := st.DeletePrefix(t.Context(), "r/s"); err != nil {
		t.Errorf("DeletePrefix(r/s), under a key: %v, want nil", err)
	}
	wantObject(t, st, "p/q/1", []byte("1"))
	wantObject(t, st, "r", []byte("r"))
	wantList(t, st, "r/s")
}

// deletePrefixRemovesOnlyUnderPrefix: DeletePrefix removes what List of the
// same prefix returns, and nothing else.
func (s *suite) deletePrefixRemovesOnlyUnderPrefix(t *testing.T) {
	st := s.open(t)
	keys := []string{"a/1", "a/b/2", "ab/3", "a.txt", "c", "x/1", "x/10"}
	for _, k := range keys {
		put(t, st, k, []byte(k))
	}
	ctx := t.Context()
	if err := st.DeletePrefix(ctx, "a"); err != nil {
		t.Fatalf("DeletePrefix(a): %v", err)
	}
	wantList(t, st, "a")
	wantNotFound(t, st, "a/1")
	wantNotFound(t, st, "a/b/2")
	for _, k := range []string{"ab/3", "a.txt", "c", "x/1", "x/10"} {
		wantObject(t, st, k, []byte(k))
	}
	if err := st.DeletePrefix(ctx, "x/1"); err != nil {
		t.Fatalf("DeletePrefix(x/1): %v", err)
	}
	wantList(t, st, "x", "x/10")
	if err := st.DeletePrefix(ctx, "c"); err != nil {
		t.Fatalf("DeletePrefix(c), a key: %v", err)
	}
	wantNotFound(t, st, "c")
	if err := st.DeletePrefix(ctx, "ab/"); err != nil {
		t.Fatalf("DeletePrefix(ab/): %v", err)
	}
	wantList(t, st, "ab")
	if err := st.DeletePrefix(ctx, "missing/prefix"); err != nil {
		t.Fatalf("DeletePrefix of a missing prefix: %v, want nil", err)
	}
	wantObject(t, st, "a.txt", []byte("a.txt"))
}

// missingKeyIsErrNotFound: Get and Open of a missing key wrap ErrNotFound.
func (s *suite) missingKeyIsErrNotFound(t *testing.T) {
	st := s.open(t)
	wantNotFound(t, st, "nope")
	wantNotFound(t, st, "no/pe")
	put(t, st, "no/other", []byte("x"))
	wantNotFound(t, st, "no/pe")
	wantNotFound(t, st, "nope")
}

// invalidKeysAreRefused: every method refuses every invalid key (and
// prefix) with ErrInvalidKey.
func (s *suite) invalidKeysAreRefused(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	files, _ := st.(objstore.LocalFiles)
	sweeper, _ := st.(objstore.TempSweeper)
	creator, _ := st.(objstore.ConditionalCreator)
	for _, key := range InvalidKeys() {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			ops := []struct {
				name string
				call func() error
			}{
				{"CleanKey", func() error { _, err := objstore.CleanKey(key); return err }},
				{"Create", func() error {
					w, err := st.Create(ctx, key)
					if err == nil {
						w.Abort()
					}
					return err
				}},
				{"Put", func() error { _, err := st.Put(ctx, key, []byte("x")); return err }},
				{"Get", func() error { _, err := st.Get(ctx, key); return err }},
				{"Open", func() error {
					o, err := st.Open(ctx, key)
					if err == nil {
						o.Close()
					}
					return err
				}},
				{"Delete", func() error { return st.Delete(ctx, key) }},
				{"DeletePrefix", func() error { return st.DeletePrefix(ctx, key) }},
				{"List", func() error { _, err := st.List(ctx, key); return err }},
			}
			if files != nil {
				ops = append(ops, struct {
					name string
					call func() error
				}{"LocalFiles.Path", func() error { _, err := files.Path(key); return err }})
			}
			if creator != nil {
				ops = append(ops, struct {
					name string
					call func() error
				}{"CreateIfAbsent", func() error {
					w, err := creator.CreateIfAbsent(ctx, key)
					if err == nil {
						w.Abort()
					}
					return err
				}})
			}
			if sweeper != nil && key != "" { // "" sweeps the whole store
				ops = append(ops, struct {
					name string
					call func() error
				}{"RemoveStaleTemps", func() error {
					_, err := sweeper.RemoveStaleTemps(ctx, key, time.Now())
					return err
				}})
			}
			for _, op := range ops {
				if err := op.call(); !errors.Is(err, objstore.ErrInvalidKey) {
					t.Errorf("%s(%q): err = %v, want ErrInvalidKey", op.name, key, err)
				}
			}
		})
	}
}

// concurrentPutsLeaveOneWholeVersion: concurrent Puts of one key end with
// one of the versions, whole, and readers meanwhile only ever see a whole
// version (or nothing, before the first commit).
func (s *suite) concurrentPutsLeaveOneWholeVersion(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	const key = "same/obj"
	versions := make([][]byte, 4)
	for i := range versions {
		versions[i] = pattern(64<<10*(i+1), byte(i+1))
	}
	isVersion := func(b []byte) bool {
		return slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, b) })
	}
	errs := make(chan error, len(versions)+2)
	done := make(chan struct{})
	var readers, writers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := st.Get(ctx, key)
				if errors.Is(err, objstore.ErrNotFound) {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("Get during Puts: %w", err)
					return
				}
				if !isVersion(got) {
					errs <- fmt.Errorf("Get during Puts returned %d bytes that are none of the versions written", len(got))
					return
				}
			}
		})
	}
	for _, v := range versions {
		writers.Go(func() {
			if _, err := st.Put(ctx, key, v); err != nil {
				errs <- fmt.Errorf("Put: %w", err)
			}
		})
	}
	writers.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := st.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !isVersion(got) {
		t.Fatalf("Get returned %d bytes that are none of the versions written", len(got))
	}
	wantList(t, st, "same", key)
}

// canceledContextIsRefused: every method refuses a context that is already
// done, with an error wrapping the context's error, and changes nothing.
func (s *suite) canceledContextIsRefused(t *testing.T) {
	st := s.open(t)
	put(t, st, "keep/obj", []byte("kept"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ops := []struct {
		name string
		call func() error
	}{
		{"Create", func() error {
			w, err := st.Create(ctx, "new/obj")
			if err == nil {
				w.Abort()
			}
			return err
		}},
		{"Put", func() error { _, err := st.Put(ctx, "new/obj", []byte("x")); return err }},
		{"Get", func() error { _, err := st.Get(ctx, "keep/obj"); return err }},
		{"Open", func() error {
			o, err := st.Open(ctx, "keep/obj")
			if err == nil {
				o.Close()
			}
			return err
		}},
		{"List", func() error { _, err := st.List(ctx, "keep"); return err }},
		{"Delete", func() error { return st.Delete(ctx, "keep/obj") }},
		{"DeletePrefix", func() error { return st.DeletePrefix(ctx, "keep") }},
	}
	if creator, ok := st.(objstore.ConditionalCreator); ok {
		ops = append(ops, struct {
			name string
			call func() error
		}{"CreateIfAbsent", func() error {
			w, err := creator.CreateIfAbsent(ctx, "new/obj")
			if err == nil {
				w.Abort()
			}
			return err
		}})
	}
	if sweeper, ok := st.(objstore.TempSweeper); ok {
		ops = append(ops, struct {
			name string
			call func() error
		}{"RemoveStaleTemps", func() error { _, err := sweeper.RemoveStaleTemps(ctx, "", time.Now()); return err }})
	}
	for _, op := range ops {
		if err := op.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: err = %v, want context.Canceled", op.name, err)
		}
	}
	wantNotFound(t, st, "new/obj")
	wantObject(t, st, "keep/obj", []byte("kept"))
}

// largeObjectIsStreamed: an object of several MiB written in chunks reads
// back whole, through ReadAt in chunks and through Get.
func (s *suite) largeObjectIsStreamed(t *testing.T) {
	st := s.open(t)
	const size, chunk = 8 << 20, 64 << 10
	rng := rand.NewChaCha8([32]byte{1})
	h := sha256.New()
	w := create(t, st, "large/obj")
	buf := make([]byte, chunk)
	for range size / chunk {
		rng.Read(buf)
		h.Write(buf)
		write(t, w, buf)
	}
	want := hex.EncodeToString(h.Sum(nil))
	n, sum, err := w.Commit()
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if n != size || sum != want {
		t.Fatalf("Commit = %d bytes, sha %s; want %d, %s", n, sum, size, want)
	}

	obj, err := st.Open(t.Context(), "large/obj")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Close()
	if obj.Size() != size {
		t.Fatalf("Size = %d, want %d", obj.Size(), size)
	}
	h.Reset()
	read := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(read)) {
		n, err := obj.ReadAt(read, off)
		if n != len(read) || err != nil && err != io.EOF {
			t.Fatalf("ReadAt(off %d) = %d, %v", off, n, err)
		}
		h.Write(read)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("ReadAt in chunks: sha %s, want %s", got, want)
	}
	data, err := st.Get(t.Context(), "large/obj")
	if err != nil || len(data) != size || sha(data) != want {
		t.Fatalf("Get = %d bytes (sha %.12s), %v; want %d bytes (sha %.12s)", len(data), sha(data), err, size, want)
	}
}

// matchesModel: any sequence of puts, aborted writes, deletes and prefix
// deletes leaves the store agreeing with a map of key to bytes in Get, Open
// and List, with List's prefix rule (equal to the prefix or under
// prefix+"/").
func (s *suite) matchesModel(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	// No key of these is a "directory" of another: that a key and keys
	// under it coexist is not part of the contract.
	keys := []string{"a/1", "a/10", "a/b/2", "ab/3", "c"}
	prefixes := []string{"a", "a/1", "a/b", "ab", "c", "zz"}
	probes := []string{"a", "a/b", "c/d"} // names that never are keys
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		ns := fmt.Sprintf("run%d", run) // each run in a fresh part of the store
		model := map[string][]byte{}
		under := func(prefix string) []string {
			var out []string
			for k := range model {
				if k == prefix || strings.HasPrefix(k, prefix+"/") {
					out = append(out, ns+"/"+k)
				}
			}
			slices.Sort(out)
			return out
		}
		rt.Repeat(map[string]func(*rapid.T){
			"put": func(rt *rapid.T) {
				k := rapid.SampledFrom(keys).Draw(rt, "key")
				data := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(rt, "data")
				if _, err := st.Put(ctx, ns+"/"+k, data); err != nil {
					rt.Fatalf("Put %s: %v", k, err)
				}
				model[k] = data
			},
			"abortedWrite": func(rt *rapid.T) {
				k := rapid.SampledFrom(keys).Draw(rt, "key")
				w, err := st.Create(ctx, ns+"/"+k)
				if err != nil {
					rt.Fatalf("Create %s: %v", k, err)
				}
				w.Write([]byte("aborted"))
				if err := w.Abort(); err != nil {
					rt.Fatalf("Abort %s: %v", k, err)
				}
			},
			"delete": func(rt *rapid.T) {
				k := rapid.SampledFrom(keys).Draw(rt, "key")
				if err := st.Delete(ctx, ns+"/"+k); err != nil {
					rt.Fatalf("Delete %s: %v", k, err)
				}
				delete(model, k)
			},
			"deletePrefix": func(rt *rapid.T) {
				p := rapid.SampledFrom(prefixes).Draw(rt, "prefix")
				if err := st.DeletePrefix(ctx, ns+"/"+p); err != nil {
					rt.Fatalf("DeletePrefix %s: %v", p, err)
				}
				for k := range model {
					if k == p || strings.HasPrefix(k, p+"/") {
						delete(model, k)
					}
				}
			},
			"get": func(rt *rapid.T) {
				k := rapid.SampledFrom(slices.Concat(keys, probes)).Draw(rt, "key")
				got, err := st.Get(ctx, ns+"/"+k)
				want, ok := model[k]
				switch {
				case !ok && !errors.Is(err, objstore.ErrNotFound):
					rt.Fatalf("Get %s = %q, %v; want ErrNotFound", k, got, err)
				case ok && (err != nil || !bytes.Equal(got, want)):
					rt.Fatalf("Get %s = %q, %v; want %q", k, got, err, want)
				}
			},
			"list": func(rt *rapid.T) {
				p := rapid.SampledFrom(prefixes).Draw(rt, "prefix")
				got, err := st.List(ctx, ns+"/"+p)
				if want := under(p); err != nil || !slices.Equal(got, want) {
					rt.Fatalf("List %s = %q, %v; want %q", p, got, err, want)
				}
			},
			"": func(rt *rapid.T) {
				got, err := st.List(ctx, ns)
				var want []string
				for k := range model {
					want = append(want, ns+"/"+k)
				}
				slices.Sort(want)
				if err != nil || !slices.Equal(got, want) {
					rt.Fatalf("List %s = %q, %v; want %q", ns, got, err, want)
				}
			},
		})
	})
}

// localFilesPathNamesTheObject: for a store with LocalFiles, Path of a
// committed key is a file holding the object.
func (s *suite) localFilesPathNamesTheObject(t *testing.T) {
	st := s.open(t)
	files, ok := st.(objstore.LocalFiles)
	if !ok {
		t.Skip("the store does not implement objstore.LocalFiles")
	}
	data := pattern(1000, 5)
	put(t, st, "l/obj", data)
	p, err := files.Path("l/obj")
	if err != nil {
		t.Fatalf("Path: %v", err)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file %s = %d bytes, %v; want the %d bytes put", p, len(got), err, len(data))
	}
	if again, err := files.Path("l//./obj"); err != nil || again != p {
		t.Fatalf("Path of the same key uncleaned = %q, %v; want %q", again, err, p)
	}
}

// staleWrites: for a store with TempSweeper, what a writer killed before its
// commit left behind is swept, and only that.
func (s *suite) staleWrites(t *testing.T) {
	if _, ok := s.open(t).(objstore.TempSweeper); !ok {
		t.Skip("the store does not implement objstore.TempSweeper")
	}
	// crash leaves a write to key unfinished, "killed" (never committed nor
	// aborted), and returns the time to sweep with.
	crash := func(t *testing.T, st objstore.Store, key string) (objstore.Writer, time.Time) {
		t.Helper()
		w := create(t, st, key)
		t.Cleanup(func() { w.Abort() })
		write(t, w, pattern(s.o.unfinishedSize, 7))
		write(t, w, []byte("half a segment"))
		if s.o.age == nil {
			return w, time.Now().Add(time.Minute) // everything unfinished is stale
		}
		s.o.age(t, st, key, time.Now().Add(-2*time.Hour))
		return w, time.Now().Add(-time.Hour)
	}
	sweep := func(t *testing.T, st objstore.Store, prefix string, olderThan time.Time, want int) {
		t.Helper()
		n, err := st.(objstore.TempSweeper).RemoveStaleTemps(t.Context(), prefix, olderThan)
		if err != nil || n != want {
			t.Fatalf("RemoveStaleTemps(%q) = %d, %v; want %d removed", prefix, n, err, want)
		}
	}

	// CrashedWriteIsSwept: the sweep removes the unfinished write, the key
	// keeps its committed version, and the swept writer cannot commit.
	t.Run("CrashedWriteIsSwept", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "w/obj", []byte("v1"))
		put(t, st, "w/other", []byte("other"))
		w, olderThan := crash(t, st, "w/obj")
		sweep(t, st, "", olderThan, 1)
		wantObject(t, st, "w/obj", []byte("v1"))
		wantList(t, st, "w", "w/obj", "w/other")
		if _, _, err := w.Commit(); err == nil {
			t.Fatal("Commit of a swept write succeeded, want an error")
		}
		wantObject(t, st, "w/obj", []byte("v1"))
		sweep(t, st, "", olderThan, 0)
	})

	// LiveWriteIsKept: a write last touched after the threshold stays, and
	// commits.
	t.Run("LiveWriteIsKept", func(t *testing.T) {
		if s.o.age == nil {
			t.Skip("needs AgeUnfinishedWrites to tell a stale write from a live one")
		}
		st := s.open(t)
		_, olderThan := crash(t, st, "a/killed")
		live := create(t, st, "b/live")
		t.Cleanup(func() { live.Abort() })
		head := pattern(s.o.unfinishedSize, 8) // in the store, not only in the Writer
		write(t, live, head)
		write(t, live, []byte("still "))
		sweep(t, st, "", olderThan, 1)
		write(t, live, []byte("writing"))
		if _, _, err := live.Commit(); err != nil {
			t.Fatalf("Commit of the live write: %v", err)
		}
		wantObject(t, st, "b/live", append(head, "still writing"...))
		wantNotFound(t, st, "a/killed")
	})

	// SweepStaysUnderPrefix: a sweep of a prefix leaves unfinished writes
	// elsewhere (ab/ is not under a).
	t.Run("SweepStaysUnderPrefix", func(t *testing.T) {
		st := s.open(t)
		wa, olderThan := crash(t, st, "a/x")
		wab, _ := crash(t, st, "ab/y")
		wc, _ := crash(t, st, "c/z")
		sweep(t, st, "a", olderThan, 1)
		sweep(t, st, "ab/", olderThan, 1)
		sweep(t, st, "", olderThan, 1)
		for _, w := range []objstore.Writer{wa, wab, wc} {
			if _, _, err := w.Commit(); err == nil {
				t.Error("Commit of a swept write succeeded, want an error")
			}
		}
		wantList(t, st, "a")
		wantList(t, st, "ab")
		wantList(t, st, "c")
	})
}

// createIfAbsentRefusesExistingKey: for a store with ConditionalCreator, a
// conditional write of a key that holds an object fails to commit with
// ErrExists and leaves the object; once the key is free it commits, small
// or large.
func (s *suite) createIfAbsentRefusesExistingKey(t *testing.T) {
	st := s.open(t)
	creator, ok := st.(objstore.ConditionalCreator)
	if !ok {
		t.Skip("the store does not implement objstore.ConditionalCreator")
	}
	ctx := t.Context()
	commit := func(key string, data []byte) error {
		t.Helper()
		w, err := creator.CreateIfAbsent(ctx, key)
		if err != nil {
			t.Fatalf("CreateIfAbsent %s: %v", key, err)
		}
		defer w.Abort()
		write(t, w, data)
		n, sum, err := w.Commit()
		if err == nil && (n != int64(len(data)) || sum != sha(data)) {
			t.Fatalf("Commit = %d bytes, sha %.12s; want %d, %.12s", n, sum, len(data), sha(data))
		}
		return err
	}
	if err := commit("c/obj", []byte("first")); err != nil {
		t.Fatalf("conditional write of a free key: %v", err)
	}
	wantObject(t, st, "c/obj", []byte("first"))
	if err := commit("c/obj", []byte("second")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("conditional write of a taken key: err = %v, want ErrExists", err)
	}
	wantObject(t, st, "c/obj", []byte("first"))
	if err := commit("c//./obj", []byte("second")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("conditional write of a taken key, uncleaned: err = %v, want ErrExists", err)
	}
	large := pattern(8<<20+1000, 3) // past any part size, for stores that upload in parts
	if err := commit("c/obj", large); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("large conditional write of a taken key: err = %v, want ErrExists", err)
	}
	wantObject(t, st, "c/obj", []byte("first"))
	wantList(t, st, "c", "c/obj")
	if err := st.Delete(ctx, "c/obj"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := commit("c/obj", large); err != nil {
		t.Fatalf("large conditional write of a freed key: %v", err)
	}
	wantObject(t, st, "c/obj", large)
}

// createIfAbsentRaceHasOneWinner: for a store with ConditionalCreator, of
// 16 concurrent conditional writes of one free key exactly one commits, the
// others fail with ErrExists, and the key holds the winner's bytes, whole.
func (s *suite) createIfAbsentRaceHasOneWinner(t *testing.T) {
	st := s.open(t)
	creator, ok := st.(objstore.ConditionalCreator)
	if !ok {
		t.Skip("the store does not implement objstore.ConditionalCreator")
	}
	ctx := t.Context()
	const writers = 16
	const key = "race/obj"
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			w, err := creator.CreateIfAbsent(ctx, key)
			if err != nil {
				errs[i] = fmt.Errorf("CreateIfAbsent: %w", err)
				return
			}
			defer w.Abort()
			if _, err := w.Write(pattern(16<<10+i, byte(i))); err != nil {
				errs[i] = fmt.Errorf("Write: %w", err)
				return
			}
			<-start
			_, _, errs[i] = w.Commit()
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both committed", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, objstore.ErrExists):
			t.Errorf("writer %d: %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer committed")
	}
	wantObject(t, st, key, pattern(16<<10+winner, byte(winner)))
	wantList(t, st, "race", key)
}
