// Package local is the object store in a local directory (objstore.Store):
// the default of `windrow up`, and the store of every role when they share a
// file system. Keys are slash-separated relative paths; a key can never name
// anything outside the store's root.
//
// Writes are atomic: Create returns a Writer whose data becomes visible under
// its key only on Commit (fsync, then rename, then fsync of the directory), so
// a crash never leaves a half-written file under a final name, and a retried
// write of the same key replaces the file as a whole. CreateIfAbsent commits
// with a hard link instead of the rename, which fails where the name exists
// (objstore.ErrExists). A writer killed before
// its commit leaves a ".tmp-" file, which RemoveStaleTemps sweeps.
//
// An open Object holds its file: on Unix-like systems a later Commit or
// Delete of the key replaces or removes the name, and the open Object goes
// on reading the version it opened. On Windows, where a file that is open
// may not be replaceable, such a Commit or Delete can fail instead; the open
// Object still reads its version. A directory is no key: Open and Get of a
// name that only prefixes keys are ErrNotFound, and so are names under a
// file.
//
// A write that finds no space left (ENOSPC, or EDQUOT: the user's quota)
// fails with an error wrapping objstore.ErrDiskFull, whichever step hit it
// (the directory, the temporary file, a write, the sync, the commit); its
// temporary file is removed. The store then reports the disk full
// (DiskFull) until a write commits again.
package local

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
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/windrow/windrow/adapters/objstore"
)

// Store is an object store in a local directory.
type Store struct {
	root string
	// fullSince is when a write first found the disk full (Unix
	// nanoseconds), 0 once a write committed after it.
	fullSince atomic.Int64
}

// New opens (creating) a store rooted at dir. The store creates its
// directories, the root too, with mode 0700 and its files 0600, umask
// permitting; an existing directory keeps its mode.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("object store root %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create object store root: %w", err)
	}
	return &Store{root: abs}, nil
}

// Compile-time checks: what the store implements.
var (
	_ objstore.Store       = (*Store)(nil)
	_ objstore.LocalFiles  = (*Store)(nil)
	_ objstore.TempSweeper = (*Store)(nil)

	_ objstore.DiskFullReporter = (*Store)(nil)

	_ objstore.ConditionalCreator = (*Store)(nil)
)

// DiskFull returns when a write first failed with objstore.ErrDiskFull,
// with full true, until a write commits again.
func (s *Store) DiskFull() (since time.Time, full bool) {
	if ns := s.fullSince.Load(); ns != 0 {
		return time.Unix(0, ns), true
	}
	return time.Time{}, false
}

// noSpace returns err wrapping objstore.ErrDiskFull if it says the disk or
// the quota is full, and records that; other errors pass as they are.
func (s *Store) noSpace(err error) error {
	if err == nil || !(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) || errors.Is(err, objstore.ErrDiskFull) {
		return err
	}
	s.fullSince.CompareAndSwap(0, time.Now().UnixNano())
	return fmt.Errorf("%w: %w", objstore.ErrDiskFull, err)
}

// Root is the absolute directory of the store.
func (s *Store) Root() string { return s.root }

// String is the store's root directory.
func (s *Store) String() string { return s.root }

// Path returns the local file path of key, for readers such as DuckDB that
// open files themselves.
func (s *Store) Path(key string) (string, error) {
	clean, err := objstore.CleanKey(key)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(clean)), nil
}

// Create starts writing key.
func (s *Store) Create(ctx context.Context, key string) (objstore.Writer, error) {
	return s.create(ctx, key, false)
}

// CreateIfAbsent starts writing key; its Commit links the written file to
// the key's name, which fails (ErrExists) if that name exists, where Create's
// Commit renames over it.
func (s *Store) CreateIfAbsent(ctx context.Context, key string) (objstore.Writer, error) {
	return s.create(ctx, key, true)
}

func (s *Store) create(ctx context.Context, key string, ifAbsent bool) (objstore.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	final, err := s.Path(key)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", key, s.noSpace(err))
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, s.noSpace(err))
	}
	h := sha256.New()
	return &localWriter{s: s, f: f, final: final, dir: dir, key: key, ifAbsent: ifAbsent, h: h, w: io.MultiWriter(f, h)}, nil
}

type localWriter struct {
	s          *Store
	f          *os.File
	final, dir string
	key        string
	ifAbsent   bool // commit with link, not rename: never over an existing name
	h          hash.Hash
	w          io.Writer
	n          int64
	done       bool
}

func (w *localWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, w.s.noSpace(err)
}

// Commit syncs, closes and renames (or links) the temporary file; an
// error wraps objstore.ErrDiskFull if it was for want of space, and a
// commit clears the store's disk-full report.
func (w *localWriter) Commit() (int64, string, error) {
	n, sha, err := w.commit()
	if err != nil {
		return 0, "", w.s.noSpace(err)
	}
	w.s.fullSince.Store(0)
	return n, sha, nil
}

func (w *localWriter) commit() (int64, string, error) {
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
	if w.ifAbsent {
		// A hard link is created only where no name is: of racing links one
		// wins. The temporary name goes either way.
		err := os.Link(tmp, w.final)
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return 0, "", fmt.Errorf("commit %s: %w", w.key, objstore.ErrExists)
		}
		if err != nil {
			return 0, "", fmt.Errorf("commit %s: %w", w.key, err)
		}
	} else if err := os.Rename(tmp, w.final); err != nil {
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
func (s *Store) Put(ctx context.Context, key string, data []byte) (string, error) {
	w, err := s.Create(ctx, key)
	if err != nil {
		return "", err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return "", fmt.Errorf("write %s: %w", key, err) // Write wrapped ErrDiskFull
	}
	_, sha, err := w.Commit()
	return sha, err
}

// Open opens key for reading. The object reads the file it opened until
// Close: on Unix-like systems a Commit or Delete of the key meanwhile
// replaces or removes the name, not the open file.
func (s *Store) Open(ctx context.Context, key string) (objstore.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, size, err := s.openFile(key)
	if err != nil {
		return nil, err
	}
	return &localObject{File: f, size: size}, nil
}

// openFile opens the committed file of key. A directory (a prefix of other
// keys) or a name under a file is no key: ErrNotFound.
func (s *Store) openFile(key string) (*os.File, int64, error) {
	p, err := s.Path(key)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if missing(err) {
		return nil, 0, fmt.Errorf("%w: %s", objstore.ErrNotFound, key)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat %s: %w", key, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s", objstore.ErrNotFound, key)
	}
	return f, st.Size(), nil
}

// missing says whether err means there is no file: not there, or a path
// through a file (a key under another key).
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

type localObject struct {
	*os.File
	size int64
}

func (o *localObject) Size() int64 { return o.size }

// Get reads a whole object.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, size, err := s.openFile(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// A committed file is never written again (a rewrite renames a new
	// file over its name), so its size is the object's.
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return data, nil
}

// Delete removes key; deleting a missing key is not an error, and neither
// is deleting a name that only prefixes keys (a directory), which is no key
// and stays.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.Path(key)
	if err != nil {
		return err
	}
	st, err := os.Lstat(p)
	if missing(err) || err == nil && st.IsDir() {
		return nil
	}
	if err := os.Remove(p); err != nil && !missing(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// DeletePrefix removes every object under prefix (a directory key).
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.Path(prefix)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(p); err != nil && !missing(err) {
		return fmt.Errorf("delete prefix %s: %w", prefix, err)
	}
	return nil
}

// List returns the keys under prefix, sorted, without pending writes.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.Path(prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	err = filepath.WalkDir(p, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			if missing(err) {
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
func (s *Store) RemoveStaleTemps(ctx context.Context, prefix string, olderThan time.Time) (int, error) {
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
			if missing(err) {
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
