// Package objstore is the seam between windrow's roles and the storage of
// their files: collectors write staging segments, compactors read them and
// write batch files and manifests, loaders read batches. Every file one role
// hands another goes through a Store, so the roles share nothing local.
//
// Implementations live in sub-packages (local: a directory on a local or
// shared file system); the conformance suite in objstoretest is what each of
// them must pass.
//
// The contract, for every implementation:
//   - Keys are slash-separated relative paths (CleanKey): never empty,
//     absolute, with "..", NUL, backslashes or a ".tmp-" element.
//   - Writes commit atomically: an object becomes visible under its key, as
//     a whole, only when its Writer commits; a crash or Abort before that
//     leaves the previous version (or nothing). A retried write of a key
//     replaces the object as a whole.
//   - Reads are random access (io.ReaderAt, what Parquet readers need) and
//     see one committed version from Open to Close.
//   - List returns committed keys only, sorted; Delete of a missing key is
//     not an error; a missing key is ErrNotFound for Open and Get.
//   - All methods are safe for concurrent use.
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
// NUL or backslashes.
var ErrInvalidKey = errors.New("invalid object key")

// ErrNotFound is returned when a key does not exist.
var ErrNotFound = errors.New("object not found")

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
	// List returns the committed keys under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every object under prefix (a directory key).
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
	// RemoveStaleTemps removes the unfinished writes under prefix ("" for
	// the whole store) last written before olderThan, and says how many.
	RemoveStaleTemps(ctx context.Context, prefix string, olderThan time.Time) (int, error)
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
