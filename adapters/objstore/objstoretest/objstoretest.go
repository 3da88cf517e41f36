// Package objstoretest is the conformance suite for objstore.Store. Every
// implementation runs it from its own tests and must pass it:
//
//	func TestConformance(t *testing.T) {
//		objstoretest.Run(t, func(t *testing.T) objstore.Store {
//			s, err := mystore.New(...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite goes through the interfaces only: Store, and LocalFiles,
// TempSweeper and ConditionalCreator when the store implements them (their
// checks are skipped otherwise). What one implementation alone promises (file names, directory
// layout, how it keeps keys inside its root) stays in that implementation's
// own tests. Each check is a subtest named after the rule it guards, so a
// failure names the broken rule.
package objstoretest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/objstore"
)

// Option adapts the suite to what an implementation can promise.
type Option func(*options)

type options struct {
	age                 func(t *testing.T, s objstore.Store, key string, at time.Time)
	openMayBlockReplace bool
	replacedMayBeGone   bool
	unfinishedSize      int
}

// AgeUnfinishedWrites gives the suite a way to make a write look abandoned
// long ago, which no interface method can do: age sets the last-written
// time of the unfinished write of key (a Writer neither committed nor
// aborted) to at. A store may age every unfinished write in key's
// "directory"; the suite never has two there. Without it the TempSweeper
// checks sweep with a threshold in the future (every unfinished write is
// stale) and skip the check that a live write is kept.
func AgeUnfinishedWrites(age func(t *testing.T, s objstore.Store, key string, at time.Time)) Option {
	return func(o *options) { o.age = age }
}

// OpenObjectsMayBlockReplace is for stores on a file system that cannot
// replace or delete a file that is open (Windows): there a Put or Delete of
// a key whose Object is open may fail with an error. The suite then accepts
// that error, and still requires the open Object to read its version whole.
func OpenObjectsMayBlockReplace() Option {
	return func(o *options) { o.openMayBlockReplace = true }
}

// ReplacedVersionsMayBeGone is for stores that cannot keep a version
// readable once its key is rewritten with other bytes or deleted (S3
// without bucket versioning): the reads of an Object opened before such a
// commit or delete may then fail with an error wrapping
// objstore.ErrObjectChanged. The suite still requires that they never
// return bytes of another version, that Size stays the opened version's,
// and that a rewrite with the same bytes keeps the Object readable.
func ReplacedVersionsMayBeGone() Option {
	return func(o *options) { o.replacedMayBeGone = true }
}

// UnfinishedWriteSize is for stores whose Writer holds the first n bytes of
// a write in memory, so that a writer killed before writing n bytes leaves
// nothing in the store to sweep (S3: a multipart upload starts with its
// first full part). The TempSweeper checks then write n bytes before they
// crash a write or check a live one.
func UnfinishedWriteSize(n int) Option {
	return func(o *options) { o.unfinishedSize = n }
}

// InvalidKeys returns keys every store must refuse with ErrInvalidKey: they
// try to leave the store, name a pending write (".tmp-"), or are no keys at
// all. Implementations may use them for their own checks (a path mapping).
func InvalidKeys() []string {
	return []string{
		"", ".", "..", "../x", "a/../../x", "../../etc/passwd", "/etc/passwd", "/",
		"a\x00b", "a\\b", "..\\x", ".tmp-x", "a/.tmp-y", "a/.tmp-y/z", "a/..", "./..", "a/./../..",
	}
}

// Run runs the conformance suite over the stores open returns. open is
// called once per check and must return an empty store that lives until the
// end of t (clean up with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) objstore.Store, opts ...Option) {
	t.Helper()
	s := &suite{open: open}
	for _, opt := range opts {
		opt(&s.o)
	}
	checks := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"CommitMakesObjectVisible", s.commitMakesObjectVisible},
		{"UncommittedRewriteShowsPreviousVersion", s.uncommittedRewriteShowsPreviousVersion},
		{"AbortKeepsPreviousVersion", s.abortKeepsPreviousVersion},
		{"WriterFinishesOnce", s.writerFinishesOnce},
		{"PutReturnsSHA256", s.putReturnsSHA256},
		{"RewriteReplacesWholeObject", s.rewriteReplacesWholeObject},
		{"EmptyObjectIsAnObject", s.emptyObjectIsAnObject},
		{"ReadAtFollowsReaderAt", s.readAtFollowsReaderAt},
		{"ReadAtMatchesContent", s.readAtMatchesContent},
		{"ParallelReadAt", s.parallelReadAt},
		{"OpenObjectReadsItsVersionThroughOverwrite", s.openObjectReadsItsVersionThroughOverwrite},
		{"OpenObjectReadsItsVersionThroughDelete", s.openObjectReadsItsVersionThroughDelete},
		{"OpenObjectReadsThroughIdenticalRewrite", s.openObjectReadsThroughIdenticalRewrite},
		{"KeysAreCleaned", s.keysAreCleaned},
		{"ListIsSortedAndUnderPrefix", s.listIsSortedAndUnderPrefix},
		{"DeleteIsIdempotent", s.deleteIsIdempotent},
		{"PrefixIsNotAKey", s.prefixIsNotAKey},
		{"DeletePrefixRemovesOnlyUnderPrefix", s.deletePrefixRemovesOnlyUnderPrefix},
		{"MissingKeyIsErrNotFound", s.missingKeyIsErrNotFound},
		{"InvalidKeysAreRefused", s.invalidKeysAreRefused},
		{"ConcurrentPutsLeaveOneWholeVersion", s.concurrentPutsLeaveOneWholeVersion},
		{"CanceledContextIsRefused", s.canceledContextIsRefused},
		{"LargeObjectIsStreamed", s.largeObjectIsStreamed},
		{"MatchesModel", s.matchesModel},
		{"LocalFilesPathNamesTheObject", s.localFilesPathNamesTheObject},
		{"StaleWrites", s.staleWrites},
		{"CreateIfAbsentRefusesExistingKey", s.createIfAbsentRefusesExistingKey},
		{"CreateIfAbsentRaceHasOneWinner", s.createIfAbsentRaceHasOneWinner},
	}
	for _, c := range checks {
		t.Run(c.name, c.run)
	}
}

type suite struct {
	open func(t *testing.T) objstore.Store
	o    options
}

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// pattern returns n bytes that differ from the pattern of another seed at
// every offset, so a mix of two versions is never mistaken for either.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func put(t *testing.T, s objstore.Store, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(t.Context(), key, data); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

func create(t *testing.T, s objstore.Store, key string) objstore.Writer {
	t.Helper()
	w, err := s.Create(t.Context(), key)
	if err != nil {
		t.Fatalf("Create %s: %v", key, err)
	}
	return w
}

func write(t *testing.T, w objstore.Writer, data []byte) {
	t.Helper()
	if n, err := w.Write(data); err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(data))
	}
}

// wantObject checks key holds exactly data, through Get and through Open.
func wantObject(t *testing.T, s objstore.Store, key string, data []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("Get %s = %d bytes (sha %.12s), want %d bytes (sha %.12s)", key, len(got), sha(got), len(data), sha(data))
	}
	obj, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open %s: %v", key, err)
	}
	defer obj.Close()
	if got := readAll(t, obj); !bytes.Equal(got, data) {
		t.Fatalf("Open %s reads %d bytes (sha %.12s), want %d bytes (sha %.12s)", key, len(got), sha(got), len(data), sha(data))
	}
}

// wantNotFound checks key is ErrNotFound for Get and Open.
func wantNotFound(t *testing.T, s objstore.Store, key string) {
	t.Helper()
	if got, err := s.Get(t.Context(), key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get %s = %d bytes, %v; want ErrNotFound", key, len(got), err)
	}
	obj, err := s.Open(t.Context(), key)
	if err == nil {
		obj.Close()
	}
	if !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Open %s: err = %v, want ErrNotFound", key, err)
	}
}

func wantList(t *testing.T, s objstore.Store, prefix string, want ...string) {
	t.Helper()
	got, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
	}
}

// readAll reads an object whole through ReadAt and Size.
func readAll(t *testing.T, obj objstore.Object) []byte {
	t.Helper()
	buf := make([]byte, obj.Size())
	n, err := obj.ReadAt(buf, 0)
	if n != len(buf) || err != nil && err != io.EOF {
		t.Fatalf("ReadAt of the whole object (%d bytes) = %d, %v", len(buf), n, err)
	}
	return buf
}
