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

// objectFiles returns a file in the load directory (w.stage) for each
// object, for read_parquet, and a func that removes them: DuckDB may read
// no other files (confine). The file of a store with local files
// (objstore.LocalFiles) is hard-linked there, or copied if it cannot be
// (another file system); any other store's objects are streamed there.
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
			f, err = linkLocal(local, w.stage, key)
		} else {
			f, err = w.copyObject(ctx, key)
		}
		if err == nil {
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

// linkLocal hard-links the local file of key into a new file in stage, or
// copies it when it cannot be linked, and returns the new path.
func linkLocal(s objstore.LocalFiles, stage, key string) (string, error) {
	src, err := localFile(s, key)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(stage, "windrow-load-*.parquet")
	if err != nil {
		return "", fmt.Errorf("object %q: %w: %w", key, warehouse.ErrTransient, err)
	}
	dst := f.Name()
	f.Close()
	// The name is reserved in a private directory; replace it with the link.
	if err := os.Remove(dst); err == nil {
		if err := os.Link(src, dst); err == nil {
			return dst, nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("object %q: %w", key, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.Remove(dst)
		return "", fmt.Errorf("copy object %q to %s: %w: %w", key, dst, warehouse.ErrTransient, err)
	}
	return dst, nil
}

// copyObject streams key into a new temp file in the load directory and
// returns its path. I/O errors are transient, as a read of the object
// store is.
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
	f, err := os.CreateTemp(w.stage, "windrow-load-*.parquet")
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
