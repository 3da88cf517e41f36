// Package objstore stores segment and batch files. Keys are slash-separated
// relative paths; a key can never name anything outside the store's root.
//
// Writes are atomic: Create returns a Writer whose data becomes visible under
// its key only on Commit (fsync, then rename, then fsync of the directory), so
// a crash never leaves a half-written file under a final name, and a retried
// write of the same key replaces the file as a whole.
package objstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrInvalidKey is returned for keys that are empty, absolute, contain "..",
// NUL or backslashes.
var ErrInvalidKey = errors.New("invalid object key")

// ErrNotFound is returned when a key does not exist.
var ErrNotFound = errors.New("object not found")

// Object is an open stored file.
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

// Local is a store in a local directory.
type Local struct {
	root string
}

// NewLocal opens (creating) a store rooted at dir.
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("object store root %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("create object store root: %w", err)
	}
	return &Local{root: abs}, nil
}

// Root is the absolute directory of the store.
func (s *Local) Root() string { return s.root }

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

// Path returns the local file path of key, for readers such as DuckDB that
// open files themselves.
func (s *Local) Path(key string) (string, error) {
	clean, err := CleanKey(key)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(clean)), nil
}

// Create starts writing key.
func (s *Local) Create(ctx context.Context, key string) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	final, err := s.Path(key)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	h := sha256.New()
	return &localWriter{f: f, final: final, dir: dir, key: key, h: h, w: io.MultiWriter(f, h)}, nil
}

type localWriter struct {
	f          *os.File
	final, dir string
	key        string
	h          hash.Hash
	w          io.Writer
	n          int64
	done       bool
}

func (w *localWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *localWriter) Commit() (int64, string, error) {
	if w.done {
		return 0, "", fmt.Errorf("commit %s: already finished", w.key)
	}
	w.done = true
	tmp := w.f.Name()
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		os.Remove(tmp)
		return 0, "", fmt.Errorf("sync %s: %w", w.key, err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(tmp)
		return 0, "", fmt.Errorf("close %s: %w", w.key, err)
	}
	if err := os.Rename(tmp, w.final); err != nil {
		os.Remove(tmp)
		return 0, "", fmt.Errorf("commit %s: %w", w.key, err)
	}
	if d, err := os.Open(w.dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return 0, "", fmt.Errorf("sync directory of %s: %w", w.key, err)
		}
	}
	return w.n, hex.EncodeToString(w.h.Sum(nil)), nil
}

func (w *localWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

// Put writes data under key atomically.
func (s *Local) Put(ctx context.Context, key string, data []byte) (string, error) {
	w, err := s.Create(ctx, key)
	if err != nil {
		return "", err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return "", fmt.Errorf("write %s: %w", key, err)
	}
	_, sha, err := w.Commit()
	return sha, err
}

// Open opens key for reading.
func (s *Local) Open(ctx context.Context, key string) (Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.Path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", key, err)
	}
	return &localObject{File: f, size: st.Size()}, nil
}

type localObject struct {
	*os.File
	size int64
}

func (o *localObject) Size() int64 { return o.size }

// Get reads a whole object.
func (s *Local) Get(ctx context.Context, key string) ([]byte, error) {
	p, err := s.Path(key)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return data, err
}

// Delete removes key; deleting a missing key is not an error.
func (s *Local) Delete(ctx context.Context, key string) error {
	p, err := s.Path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// DeletePrefix removes every object under prefix (a directory key).
func (s *Local) DeletePrefix(ctx context.Context, prefix string) error {
	p, err := s.Path(prefix)
	if err != nil {
		return err
	}
	return os.RemoveAll(p)
}

// List returns the keys under prefix, sorted, without pending writes.
func (s *Local) List(ctx context.Context, prefix string) ([]string, error) {
	p, err := s.Path(prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	err = filepath.WalkDir(p, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(s.root, file)
		if err != nil {
			return err
		}
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// RemoveStaleTemps deletes pending writes (".tmp-" files) under prefix that
// (or, with prefix "", anywhere in the store) that
// were last written before olderThan: what a process killed in the middle of
// a write left behind. A live writer touches its file as it writes, so a
// threshold well above the longest write (an hour) never hits one. It
// returns how many files it removed.
func (s *Local) RemoveStaleTemps(ctx context.Context, prefix string, olderThan time.Time) (int, error) {
	p := s.root // "" is the whole store
	if prefix != "" {
		var err error
		if p, err = s.Path(prefix); err != nil {
			return 0, err
		}
	}
	removed := 0
	err := filepath.WalkDir(p, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // committed or aborted meanwhile
			}
			return err
		}
		if info.ModTime().Before(olderThan) {
			if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed++
		}
		return nil
	})
	return removed, err
}
