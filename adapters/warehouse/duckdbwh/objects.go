package duckdbwh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/warehouse"
)

// globChars are the characters read_parquet expands in a file name.
const globChars = "*?[{"

// objectFiles returns a local file for each object, for read_parquet, and
// a func that removes the temp copies made. A store with local files
// (objstore.LocalFiles) is read in place; any other store's objects are
// streamed into private temp files in Config.TempDir.
func (w *Warehouse) objectFiles(ctx context.Context, keys []string) (files []string, cleanup func(), err error) {
	if w.cfg.Objects == nil {
		return nil, nil, errors.New("no object store to read the batch from (duckdbwh.Config.Objects)")
	}
	local, inPlace := w.cfg.Objects.(objstore.LocalFiles)
	var temps []string
	cleanup = func() {
		for _, f := range temps {
			os.Remove(f) // a temp file that cannot be removed is all that is left to lose
		}
	}
	for _, key := range keys {
		var f string
		if inPlace {
			f, err = localFile(local, key)
		} else if f, err = w.copyObject(ctx, key); err == nil {
			temps = append(temps, f)
		}
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		files = append(files, f)
	}
	return files, cleanup, nil
}

// localFile is the local path of key, checked: read_parquet takes a path
// with glob characters as a pattern, and a missing file as an I/O error.
func localFile(s objstore.LocalFiles, key string) (string, error) {
	f, err := s.Path(key)
	if err != nil {
		return "", fmt.Errorf("object %q: %w", key, err)
	}
	if !filepath.IsAbs(f) || strings.ContainsAny(f, globChars) {
		return "", fmt.Errorf("object %q: file %q must be an absolute path without glob characters (%s)", key, f, globChars)
	}
	if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s", warehouse.ErrObjectMissing, key)
	} else if err != nil {
		return "", fmt.Errorf("object %q: %w", key, err)
	}
	return f, nil
}

// copyObject streams key into a new temp file and returns its path. I/O
// errors are transient, as a read of the object store is.
func (w *Warehouse) copyObject(ctx context.Context, key string) (string, error) {
	obj, err := w.cfg.Objects.Open(ctx, key)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return "", fmt.Errorf("%w: %s", warehouse.ErrObjectMissing, key)
	case err != nil && (errors.Is(err, objstore.ErrInvalidKey) || ctx.Err() != nil):
		return "", fmt.Errorf("open object %q: %w", key, err)
	case err != nil:
		return "", fmt.Errorf("open object %q: %w: %w", key, warehouse.ErrTransient, err)
	}
	defer obj.Close()
	f, err := os.CreateTemp(w.cfg.TempDir, "windrow-load-*.parquet")
	if err != nil {
		return "", fmt.Errorf("copy object %q: %w: %w", key, warehouse.ErrTransient, err)
	}
	_, err = io.Copy(f, objstore.NewReader(ctx, obj))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		if ctx.Err() != nil {
			return "", fmt.Errorf("copy object %q: %w", key, err)
		}
		return "", fmt.Errorf("copy object %q to %s: %w: %w", key, f.Name(), warehouse.ErrTransient, err)
	}
	return f.Name(), nil
}
