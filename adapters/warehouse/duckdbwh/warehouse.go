package duckdbwh

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" database/sql driver

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/warehouse"
)

// DefaultIdleClose is how long the file stays open after the last load.
const DefaultIdleClose = 2 * time.Second

// Config configures a Warehouse.
type Config struct {
	// Path of the DuckDB database file; created on the first load, with
	// mode 0600 (and its directory, if missing, 0700). Required.
	Path string
	// IdleClose is how long the file stays open after the last load or
	// DB release. Default 2s: the file is held only while loading, then
	// closed, so users can open it with the duckdb CLI.
	IdleClose time.Duration
	// Threads DuckDB may use; 0 means DuckDB's default (all cores).
	Threads int
	// Objects is the object store that holds the batches' Parquet objects:
	// the store the loader reads. Required for Load; a warehouse opened only
	// to read (windrow query, reconcile) needs none. For each load the
	// objects are put in the warehouse's private load directory (in
	// TempDir), the only files its database may read: hard-linked if the
	// store implements objstore.LocalFiles (copied if they cannot be),
	// streamed otherwise.
	Objects objstore.Store
	// TempDir holds the load directory (windrow-duckdb-*, 0700, made by
	// Open and removed by Close; each load's files are removed when it
	// ends). A local store on the same file system avoids copies. Default:
	// os.TempDir().
	TempDir string
	// ReadOnly opens the file read-only (DuckDB access_mode=READ_ONLY),
	// with external access disabled (enable_external_access=false) and,
	// once the file is open, DuckDB's local file system too
	// (disabled_filesystems=LocalFileSystem; neither can be turned back
	// on): statements that would change the database fail, and so do those
	// that read or write any file (COPY … TO, read_csv, ATTACH, INSTALL),
	// also the database's own file and its .wal, which external access
	// alone still allows. A query that needs more memory than DuckDB's
	// memory_limit fails instead of spilling to temp files. The file must
	// exist; Load returns warehouse.ErrReadOnly. For windrow query and
	// reconcile.
	ReadOnly bool
}

func (c *Config) setDefaults() {
	if c.IdleClose == 0 {
		c.IdleClose = DefaultIdleClose
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("Path: required"))
	} else if strings.ContainsAny(c.Path, "?\x00") {
		errs = append(errs, fmt.Errorf("Path: %q must not contain '?' or NUL", c.Path))
	}
	if c.IdleClose < 0 {
		errs = append(errs, fmt.Errorf("IdleClose: %s, want > 0", c.IdleClose))
	}
	if c.Threads < 0 {
		errs = append(errs, fmt.Errorf("Threads: %d, want >= 0", c.Threads))
	}
	// read_parquet expands glob patterns in the temp copies' paths.
	if strings.ContainsAny(c.TempDir, globChars+"\x00") {
		errs = append(errs, fmt.Errorf("TempDir: %q must not contain glob characters (%s) or NUL", c.TempDir, globChars))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("duckdb warehouse config: %w", err)
	}
	return nil
}

// Warehouse is a DuckDB database file that loads batches. It is safe for
// concurrent use; loads run one at a time.
type Warehouse struct {
	cfg Config
	dsn string

	loadMu sync.Mutex // one load at a time: DuckDB has one writer

	mu     sync.Mutex // guards the fields below
	db     *sql.DB    // nil while the file is closed
	refs   int        // loads and DB borrowers holding db
	gen    uint64     // invalidates idle timers of earlier releases
	idle   *time.Timer
	closed bool
	stage  string // private directory of the load's files; "" if read-only
}

var _ warehouse.Warehouse = (*Warehouse)(nil)

// Open checks cfg and returns a Warehouse. The file is not opened until the
// first Load or DB call.
func Open(cfg Config) (*Warehouse, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("duckdb warehouse path %q: %w", cfg.Path, err)
	}
	if !cfg.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return nil, fmt.Errorf("duckdb warehouse directory: %w", err)
		}
	}
	cfg.Path = abs
	if err := checkHeader(abs); err != nil {
		return nil, err
	}
	if cfg.TempDir, err = filepath.Abs(cfg.TempDir); err != nil {
		return nil, fmt.Errorf("duckdb warehouse temp directory %q: %w", cfg.TempDir, err)
	}
	opts := url.Values{}
	if cfg.Threads > 0 {
		opts.Set("threads", strconv.Itoa(cfg.Threads))
	}
	if cfg.ReadOnly {
		opts.Set("access_mode", "READ_ONLY")
		opts.Set("enable_external_access", "false")
	}
	dsn := abs
	if len(opts) > 0 {
		dsn += "?" + opts.Encode()
	}
	w := &Warehouse{cfg: cfg, dsn: dsn}
	if !cfg.ReadOnly {
		// The load directory: the only files DuckDB may read (confine).
		if w.stage, err = os.MkdirTemp(cfg.TempDir, "windrow-duckdb-*"); err != nil { // 0700
			return nil, fmt.Errorf("duckdb warehouse load directory in %s: %w", cfg.TempDir, err)
		}
	}
	return w, nil
}

// Path is the absolute path of the database file.
func (w *Warehouse) Path() string { return w.cfg.Path }

// String is the database file.
func (w *Warehouse) String() string { return w.cfg.Path }

// DB lends the warehouse's database handle to a reader in this process (the
// windrow CLI, tests): while the warehouse holds the file no other process
// can open it, so this is how to read it meanwhile. The file stays open until
// release is called (exactly once); the caller must not close the *sql.DB.
// Reads run concurrently with loads and see committed data only.
func (w *Warehouse) DB(ctx context.Context) (*sql.DB, func(), error) {
	return w.acquire(ctx)
}

const ledgerDDL = `CREATE TABLE IF NOT EXISTS ` + ledgerTable + ` (
	batch_id VARCHAR PRIMARY KEY,
	policy VARCHAR,
	table_name VARCHAR,
	window_start TIMESTAMPTZ,
	window_end TIMESTAMPTZ,
	revision INTEGER,
	part INTEGER,
	policy_version UBIGINT,
	rows BIGINT,
	loaded_at TIMESTAMPTZ
)`

// ledgerReplayDDL adds the replay number to a ledger made before replays
// existed.
const ledgerReplayDDL = `ALTER TABLE ` + ledgerTable + ` ADD COLUMN IF NOT EXISTS replay INTEGER DEFAULT 0`

// confine takes from a database just opened every file access it does not
// need, for good (DuckDB does not let a disabled access be enabled again on
// a running database). A loader's database may read and write its own file,
// .wal and spill directory, and the load directory (w.stage), where the
// load's Parquet files are linked or copied, and nothing else: post-load
// SQL cannot read or write other files (read_text, COPY … TO), and cannot
// change settings (lock_configuration). A read-only database may not touch
// files at all: with external access disabled DuckDB still lets a statement
// write the database's own paths (COPY … TO the file, USE_TMP_FILE false,
// or its .wal); the file is open now, so the file system under everything
// else is closed.
func (w *Warehouse) confine(ctx context.Context, db *sql.DB) error {
	stmts := []string{"SET disabled_filesystems = 'LocalFileSystem'"}
	if !w.cfg.ReadOnly {
		stmts = []string{
			"SET allowed_directories = ['" + strings.ReplaceAll(w.stage, "'", "''") + "/']",
			"SET enable_external_access = false",
			"SET lock_configuration = true",
		}
	}
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// Close closes the file. It waits for a load in progress; later calls of
// Load and DB return ErrClosed. Close is idempotent.
func (w *Warehouse) Close() error {
	w.loadMu.Lock()
	defer w.loadMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.gen++
	if w.stage != "" {
		os.RemoveAll(w.stage) // best effort: only this warehouse's leftovers are in it
	}
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
	if w.db == nil {
		return nil
	}
	err := w.db.Close()
	w.db = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", w.cfg.Path, err)
	}
	return nil
}

// acquire opens the file if needed and holds it until release.
func (w *Warehouse) acquire(ctx context.Context) (*sql.DB, func(), error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, nil, ErrClosed
	}
	if w.db == nil {
		created := false
		if !w.cfg.ReadOnly {
			_, err := os.Stat(w.cfg.Path)
			created = errors.Is(err, fs.ErrNotExist)
		}
		db, err := sql.Open("duckdb", w.dsn)
		if err == nil {
			err = db.PingContext(ctx)
			if err == nil {
				err = w.confine(ctx, db)
			}
			if err != nil {
				db.Close()
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", w.cfg.Path, classify(err))
		}
		if created {
			// DuckDB creates the file 0666 less the umask; it holds all the
			// warehouse's data. Only a file this open created is changed:
			// the mode of a file someone else made is theirs.
			if err := os.Chmod(w.cfg.Path, 0o600); err != nil {
				db.Close()
				return nil, nil, fmt.Errorf("open %s: %w", w.cfg.Path, err)
			}
		}
		w.db = db
		w.tightenWAL()
	}
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
	w.gen++
	w.refs++
	db := w.db
	var once sync.Once
	return db, func() { once.Do(w.release) }, nil
}

func (w *Warehouse) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tightenWAL()
	w.refs--
	if w.refs > 0 || w.closed || w.db == nil {
		return
	}
	w.gen++
	gen := w.gen
	w.idle = time.AfterFunc(w.cfg.IdleClose, func() { w.closeIdle(gen) })
}

// closeIdle closes the file if nothing used it since the timer of gen was set.
func (w *Warehouse) closeIdle(gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if gen != w.gen || w.refs > 0 || w.db == nil {
		return
	}
	w.db.Close() // nothing to hand the error to; the next load reopens anyway
	w.db = nil
	w.idle = nil
}

// tightenWAL takes from the write-ahead log (the file's ".wal", which
// DuckDB creates 0666 less the umask whenever a commit starts a new one)
// the permission bits the database file does not have: the log holds the
// same data. It never widens a mode. Best effort: the log comes and goes
// with checkpoints, and a failure here has no caller to go to; the
// directory of a warehouse windrow created (0700) keeps others out anyway.
func (w *Warehouse) tightenWAL() {
	if w.cfg.ReadOnly {
		return
	}
	db, err := os.Stat(w.cfg.Path)
	if err != nil {
		return
	}
	wal := w.cfg.Path + ".wal"
	st, err := os.Stat(wal)
	if err != nil {
		return
	}
	if perm := st.Mode().Perm(); perm&^db.Mode().Perm() != 0 {
		os.Chmod(wal, perm&db.Mode().Perm())
	}
}

// classify wraps errors that mean another process holds the file with ErrUnavailable.
func classify(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "Could not set lock on file") || strings.Contains(msg, "Conflicting lock") {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(msg, "No space left on device") {
		return fmt.Errorf("%w: %w", warehouse.ErrDiskFull, err)
	}
	return err
}

// duckMagic is what a DuckDB database file holds at duckMagicAt (after
// its 8-byte checksum).
const (
	duckMagic   = "DUCK"
	duckMagicAt = 8
)

// checkHeader refuses, once, at Open, a file at path that exists and is
// not a DuckDB database (damaged, or another file given by mistake): each
// load would fail on it. A missing or empty file is fine (DuckDB creates
// it).
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("duckdb warehouse %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, duckMagicAt+len(duckMagic))
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("duckdb warehouse %s: %w", path, err)
	}
	if string(head[min(n, duckMagicAt):n]) != duckMagic {
		return fmt.Errorf("%w: %s is not a DuckDB database file (no %q header): restore it from a backup, or move it aside and "+
			"`windrow replay` the windows to load them again into a new file; windrow will not write to it", warehouse.ErrDamaged, path, duckMagic)
	}
	return nil
}

// WindowCounts returns the table's row count per window id (the window start
// in UTC, "20060102T150405Z"); a missing table counts nothing.
func (w *Warehouse) WindowCounts(ctx context.Context, table string) (map[string]int64, error) {
	t, err := parseTable(table)
	if err != nil {
		return nil, err
	}
	db, release, err := w.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := db.QueryContext(ctx, "SELECT strftime(_window_start AT TIME ZONE 'UTC', '%Y%m%dT%H%M%SZ'), count(*) FROM "+t.sql()+" GROUP BY 1")
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return map[string]int64{}, nil
		}
		return nil, fmt.Errorf("count rows of %s: %w", t, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
