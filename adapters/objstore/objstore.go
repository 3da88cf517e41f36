// Package objstore is the seam between windrow's roles and the storage of
// their files: collectors write staging segments, compactors read them and
// write batch files and manifests, loaders read batches. Every file one role
// hands another goes through a Store, so the roles share nothing local.
//
// Implementations live in sub-packages (local: a directory on a local or
// shared file system; s3: a bucket of an S3-compatible server); the
// conformance suite in objstoretest is what each of them must pass.
//
// The contract, for every implementation (objstoretest checks each clause):
//   - Keys are slash-separated relative paths, used in their CleanKey form
//     ("a//b/./c" is "a/b/c"): never empty, absolute, with "..", NUL,
//     backslashes or a ".tmp-" element; such keys are ErrInvalidKey for
//     every method.
//   - Writes commit atomically: an object becomes visible under its key, as
//     a whole, only when its Writer commits. Until then Get, Open and List
//     see the previous version (or nothing); a crash or Abort leaves it. A
//     retried write of a key replaces the object as a whole; of concurrent
//     writes of one key, one whole version wins.
//   - A Writer finishes once: Commit after Commit or Abort fails and
//     changes nothing; Abort after either returns nil (defer w.Abort() is
//     safe); Write after either fails.
//   - Reads are random access (io.ReaderAt, what Parquet readers need):
//     a read cut short by the end of the object returns io.EOF itself, and
//     parallel ReadAt calls on one Object are allowed. An open Object reads
//     the version it opened, and Size is that version's, until Close,
//     whatever commits or deletes of its key happen meanwhile; it never
//     returns bytes of another version. (A store on a file system that
//     cannot replace an open file, Windows for local, may instead fail that
//     commit or delete; the open Object still reads its version. A store
//     that cannot keep a replaced version readable, S3 without bucket
//     versioning, may instead fail the Object's reads after such a commit
//     or delete with an error wrapping ErrObjectChanged; a rewrite with the
//     same bytes keeps it readable. A reader that gets ErrObjectChanged
//     opens the key again.)
//   - A prefix is cleaned like a key ("a/" is "a"; "" is ErrInvalidKey:
//     there is no listing or deleting the whole store) and matches by path
//     element: List("a") returns the committed keys equal to "a" or under
//     "a/", so "a/1" and "a/b/2" but never "ab/3" or "a.txt", and
//     List("a/1") never returns "a/10". List returns committed keys only,
//     in their clean form, sorted bytewise; a prefix with nothing under it
//     lists nothing, without an error. DeletePrefix removes exactly what
//     List of the same prefix returns.
//   - A missing key is ErrNotFound for Open and Get, and Delete of it is not
//     an error. A name that only prefixes keys ("a" when "a/1" exists) or
//     lies under a key ("c/d" when "c" exists) is no key. Whether a key and
//     keys under it ("c" and "c/d") can exist together is up to the store
//     (local: no, a file is not a directory); callers must not rely on it.
//   - Every method refuses a context that is already done with an error
//     wrapping the context's error, and changes nothing.
//   - All methods are safe for concurrent use.
//
// Optional abilities are small interfaces a store may implement, asserted
// where used: LocalFiles (objects are files on this machine), TempSweeper
// (unfinished writes can be swept) and ConditionalCreator (a write that
// commits only where its key is free: S3's If-None-Match: *, a hard link on
// a file system). objstoretest checks each when a store has it.
// DiskFullReporter (the disk under the store is full) is checked by the
// tests of the store that has it (local), which fill a real file system.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// ErrInvalidKey is returned for keys that are empty, absolute, contain "..",
// NUL, backslashes or a ".tmp-" element (see CleanKey).
var ErrInvalidKey = errors.New("invalid object key")

// ErrNotFound is returned when a key does not exist.
var ErrNotFound = errors.New("object not found")

// ErrObjectChanged is returned by the reads of an open Object whose
// version its store can no longer read: the key was rewritten with other
// bytes, or deleted, since Open. Only stores that say so return it (see the
// package documentation); the Object is then of no further use.
var ErrObjectChanged = errors.New("object changed since it was opened")

// ErrDiskFull is wrapped by the errors of writes that found no space left:
// the disk or the user's quota is full (ENOSPC, EDQUOT). It is transient:
// the write succeeds again once space is freed, so callers retry it with
// backoff and never fail a window over it. Stores whose backend has no such
// condition (S3) never return it.
var ErrDiskFull = errors.New("object store disk full")

// DiskFullReporter is implemented by stores that can run out of local
// space (local): it says whether the store's last writes found the disk
// full, and since when, until a write commits again.
type DiskFullReporter interface {
	// DiskFull returns when a write first failed with ErrDiskFull, with
	// full true, until the next write commits; then the zero time and
	// false.
	DiskFull() (since time.Time, full bool)
}

// ErrExists is returned by the Commit of a Writer from
// ConditionalCreator.CreateIfAbsent when its key already holds an object.
var ErrExists = errors.New("object already exists")

// Store stores objects under keys. See the package documentation for the
// contract every implementation keeps.
type Store interface {
	// Create starts writing key. Nothing is visible under key until the
	// Writer commits.
	Create(ctx context.Context, key string) (Writer, error)
	// Put writes data under key atomically and returns its hex SHA-256.
	Put(ctx context.Context, key string, data []byte) (sha string, err error)
	// Open opens key for random-access reading.
	Open(ctx context.Context, key string) (Object, error)
	// Get reads a whole object.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns the committed keys equal to prefix or under prefix+"/",
	// sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every object List(prefix) would return.
	DeletePrefix(ctx context.Context, prefix string) error
	// String describes the store for people (a directory, a bucket and
	// prefix); it never holds a secret.
	String() string
}

// Object is an open stored object.
type Object interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Writer is a pending object. Exactly one of Commit or Abort must be called.
type Writer interface {
	io.Writer
	// Commit makes the data durable and visible under the key; it returns the
	// size and the hex SHA-256 of what was written.
	Commit() (size int64, sha string, err error)
	Abort() error
}

// LocalFiles is implemented by stores whose objects are files on this
// machine, for readers such as DuckDB that open files themselves. A reader
// of any other store reads through Open.
type LocalFiles interface {
	// Path returns the local file path of key.
	Path(key string) (string, error)
}

// TempSweeper is implemented by stores where a writer killed in the middle
// of a write leaves something behind (a temporary file, an unfinished
// upload) until it is swept.
type TempSweeper interface {
	// RemoveStaleTemps removes the unfinished writes under prefix (matched
	// as List matches it; "" for the whole store) last written before
	// olderThan, and says how many. Committed objects and writes last
	// written at or after olderThan stay; a Writer whose write was swept
	// fails to commit, and its key keeps its previous version.
	RemoveStaleTemps(ctx context.Context, prefix string, olderThan time.Time) (int, error)
}

// ConditionalCreator is implemented by stores that can create an object
// only where its key is free, so that of several writers of one final
// object (retries, racing instances of a role) exactly one commits and the
// others learn it.
type ConditionalCreator interface {
	// CreateIfAbsent starts writing key as Create does, except that its
	// Writer's Commit succeeds only if key holds no object at that moment;
	// otherwise Commit fails with an error wrapping ErrExists and changes
	// nothing. Of concurrent such writes of a free key, exactly one commits.
	CreateIfAbsent(ctx context.Context, key string) (Writer, error)
}

// CleanKey checks that key stays inside the store and returns its clean form.
func CleanKey(key string) (string, error) {
	if key == "" || strings.ContainsAny(key, "\x00\\") || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	clean := path.Clean(key)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for _, part := range strings.Split(clean, "/") {
		if part == ".." || strings.HasPrefix(part, ".tmp-") {
			return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
	}
	return clean, nil
}
