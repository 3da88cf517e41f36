package duckdbwh

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" database/sql driver

	"github.com/windrow/windrow/services/loader"
)

// DefaultIdleClose is how long the file stays open after the last load.
const DefaultIdleClose = 2 * time.Second

// Config configures a Warehouse.
type Config struct {
	// Path of the DuckDB database file; created on the first load. Required.
	Path string
	// IdleClose is how long the file stays open after the last load or
	// DB release. Default 2s: the file is held only while loading, then
	// closed, so users can open it with the duckdb CLI.
	IdleClose time.Duration
	// Threads DuckDB may use; 0 means DuckDB's default (all cores).
	Threads int
}

func (c *Config) setDefaults() {
	if c.IdleClose == 0 {
		c.IdleClose = DefaultIdleClose
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
}

var _ loader.Warehouse = (*Warehouse)(nil)

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
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("duckdb warehouse directory: %w", err)
	}
	cfg.Path = abs
	dsn := abs
	if cfg.Threads > 0 {
		dsn += "?threads=" + strconv.Itoa(cfg.Threads)
	}
	return &Warehouse{cfg: cfg, dsn: dsn}, nil
}

// Path is the absolute path of the database file.
func (w *Warehouse) Path() string { return w.cfg.Path }

// DB lends the warehouse's database handle to a reader in this process (the
// windrow CLI, tests): while the warehouse holds the file no other process
// can open it, so this is how to read it meanwhile. The file stays open until
// release is called (exactly once); the caller must not close the *sql.DB.
// Reads run concurrently with loads and see committed data only.
func (w *Warehouse) DB(ctx context.Context) (*sql.DB, func(), error) {
	return w.acquire(ctx)
}

// Load implements loader.Warehouse. See the package documentation.
func (w *Warehouse) Load(ctx context.Context, b loader.Batch) (rows int64, duplicate bool, err error) {
	t, err := parseTable(b.Table)
	if err != nil {
		return 0, false, err
	}
	cols, err := batchColumns(b.Columns)
	if err != nil {
		return 0, false, fmt.Errorf("table %s: %w", t, err)
	}
	files := b.AllFiles()
	if b.ID == "" || len(files) == 0 || files[0] == "" {
		return 0, false, errors.New("batch: id and file are required")
	}
	for _, f := range files {
		// read_parquet expands glob patterns: a file name must name one file.
		if !filepath.IsAbs(f) || strings.ContainsAny(f, "*?[{") {
			return 0, false, fmt.Errorf("batch %s: file %q must be an absolute path without glob characters (*?[{)", b.ID, f)
		}
	}
	mode := b.Mode
	if mode == "" {
		mode = "append"
	}
	var keys []string
	switch mode {
	case "append", "replace":
		if len(b.MergeKey) > 0 {
			return 0, false, fmt.Errorf("batch %s: merge key set in mode %s", b.ID, mode)
		}
	case "merge":
		if len(b.MergeKey) == 0 {
			return 0, false, fmt.Errorf("batch %s: mode merge needs a merge key", b.ID)
		}
		for _, k := range b.MergeKey {
			q, err := quoteIdent(k)
			if err != nil {
				return 0, false, fmt.Errorf("merge key: %w", err)
			}
			keys = append(keys, q)
		}
	default:
		return 0, false, fmt.Errorf("batch %s: load mode %q (valid: append, replace, merge)", b.ID, b.Mode)
	}
	order := `"_source_seq" DESC`
	timeCol := ""
	if b.TimeColumn != "" {
		q, err := quoteIdent(b.TimeColumn)
		if err != nil {
			return 0, false, fmt.Errorf("time column: %w", err)
		}
		timeCol = q
		order = q + ` DESC, ` + order
	}
	// keysMatch: the merge key of a and b is equal. older: a's row is not
	// newer than b's (event time, then source sequence).
	keysMatch := func(a, b string) string {
		conds := make([]string, len(keys))
		for i, k := range keys {
			conds[i] = a + `.` + k + ` = ` + b + `.` + k
		}
		return strings.Join(conds, " AND ")
	}
	older := func(a, b string) string {
		seq := a + `."_source_seq" <= ` + b + `."_source_seq"`
		if timeCol == "" {
			return seq
		}
		return `(` + a + `.` + timeCol + ` < ` + b + `.` + timeCol + ` OR (` + a + `.` + timeCol + ` = ` + b + `.` + timeCol + ` AND ` + seq + `))`
	}

	w.loadMu.Lock()
	defer w.loadMu.Unlock()
	db, release, err := w.acquire(ctx)
	if err != nil {
		return 0, false, err
	}
	defer release()

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("begin: %w", classify(err))
	}
	defer tx.Rollback() // no-op after Commit

	if _, err := tx.ExecContext(ctx, ledgerDDL); err != nil {
		return 0, false, fmt.Errorf("create ledger: %w", classify(err))
	}
	if _, err := tx.ExecContext(ctx, ledgerReplayDDL); err != nil {
		return 0, false, fmt.Errorf("ledger replay column: %w", classify(err))
	}
	var loadedReplay int
	err = tx.QueryRowContext(ctx, `SELECT rows, replay FROM `+ledgerTable+` WHERE batch_id = ?`, b.ID).Scan(&rows, &loadedReplay)
	replaying := false
	switch {
	case err == nil && loadedReplay >= b.Replay:
		return rows, true, nil
	case err == nil:
		// A replay of a batch loaded before: what that load put in the
		// table and its ledger row are replaced below.
		replaying = true
	case !errors.Is(err, sql.ErrNoRows):
		return 0, false, fmt.Errorf("ledger lookup: %w", classify(err))
	}

	if err := ensureTable(ctx, tx, t, cols); err != nil {
		return 0, false, err
	}
	if replaying {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t.sql()+` WHERE "_batch_id" = ?`, b.ID); err != nil {
			return 0, false, fmt.Errorf("replay %s: delete its earlier rows: %w", b.ID, classify(err))
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+ledgerTable+` WHERE batch_id = ?`, b.ID); err != nil {
			return 0, false, fmt.Errorf("replay %s: ledger: %w", b.ID, classify(err))
		}
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = `"` + c.name + `"`
	}
	list := strings.Join(names, ", ")
	// One placeholder per file: read_parquet([?, ?, …]).
	source := `read_parquet([?` + strings.Repeat(`, ?`, len(files)-1) + `])`
	fileArgs := make([]any, len(files))
	for i, f := range files {
		fileArgs[i] = f
	}
	// newest: the window's newest row of each merge key.
	var newest string
	if mode == "merge" {
		newest = `(SELECT * EXCLUDE ("_windrow_rn") FROM (SELECT *, row_number() OVER (PARTITION BY ` + strings.Join(keys, ", ") +
			` ORDER BY ` + order + `) AS "_windrow_rn" FROM ` + source + `) WHERE "_windrow_rn" = 1) AS n`
	}
	if b.Rows > 0 && mode != "append" {
		// Every row of the files must be accounted for, also when merge
		// keeps only the newest row of a key.
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+source, fileArgs...).Scan(&n); err != nil {
			return 0, false, fmt.Errorf("count rows of %v: %w", files, classify(err))
		}
		if n != b.Rows {
			return 0, false, fmt.Errorf("%w: %v hold %d rows, batch says %d", ErrRowCount, files, n, b.Rows)
		}
	}
	switch mode {
	case "replace":
		// The window's rows this policy loaded before (any batch, any
		// revision, any mode), found through the ledger.
		del := `DELETE FROM ` + t.sql() + ` WHERE "_window_start" = ? AND "_batch_id" IN (SELECT batch_id FROM ` + ledgerTable +
			` WHERE policy = ? AND table_name = ? AND window_start = ?)`
		if _, err := tx.ExecContext(ctx, del, b.WindowStart.UTC(), b.Policy, t.String(), b.WindowStart.UTC()); err != nil {
			return 0, false, fmt.Errorf("replace window in %s: %w", t, classify(err))
		}
	case "merge":
		// Last writer wins by event time, whatever order windows load in:
		// a row of the table is replaced when the window's newest row of its
		// key is newer (event time, then source sequence); a window's row is
		// inserted when no newer row of its key remains.
		del := `DELETE FROM ` + t.sql() + ` AS t USING ` + newest + ` WHERE ` + keysMatch("t", "n") + ` AND ` + older("t", "n")
		if _, err := tx.ExecContext(ctx, del, fileArgs...); err != nil {
			return 0, false, fmt.Errorf("merge into %s: %w", t, classify(err))
		}
	}
	insert := `INSERT INTO ` + t.sql() + ` (` + list + `, "_source_seq", "_window_start", "_window_end", "_batch_id") ` +
		`SELECT ` + list + `, "_source_seq", ?, ?, ? FROM ` + source
	if mode == "merge" {
		insert = `INSERT INTO ` + t.sql() + ` (` + list + `, "_source_seq", "_window_start", "_window_end", "_batch_id") ` +
			`SELECT ` + list + `, "_source_seq", ?, ?, ? FROM ` + newest +
			` WHERE NOT EXISTS (SELECT 1 FROM ` + t.sql() + ` AS e WHERE ` + keysMatch("e", "n") + `)`
	}
	args := append([]any{b.WindowStart.UTC(), b.WindowEnd.UTC(), b.ID}, fileArgs...)
	res, err := tx.ExecContext(ctx, insert, args...)
	if err != nil {
		return 0, false, fmt.Errorf("insert %v into %s: %w", files, t, classify(err))
	}
	rows, err = res.RowsAffected()
	if err != nil {
		return 0, false, fmt.Errorf("insert into %s: rows affected: %w", t, err)
	}
	if b.Rows > 0 && mode != "merge" && rows != b.Rows {
		return 0, false, fmt.Errorf("%w: %v hold %d rows, batch says %d", ErrRowCount, files, rows, b.Rows)
	}
	for i, stmt := range b.PostLoad {
		if _, err := tx.ExecContext(ctx, stmt, postLoadArgs(stmt, b)...); err != nil {
			return 0, false, fmt.Errorf("%w: post_load[%d]: %w", ErrPostLoad, i, classify(err))
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+ledgerTable+` (batch_id, policy, table_name, window_start, window_end,
		revision, part, policy_version, rows, loaded_at, replay) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.Policy, t.String(), b.WindowStart.UTC(), b.WindowEnd.UTC(), b.Revision, b.Part, b.PolicyVersion,
		rows, time.Now().UTC(), b.Replay); err != nil {
		return 0, false, fmt.Errorf("ledger insert: %w", classify(err))
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("commit: %w", classify(err))
	}
	return rows, false, nil
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

// Close closes the file. It waits for a load in progress; later calls of
// Load and DB return ErrClosed. Close is idempotent.
func (w *Warehouse) Close() error {
	w.loadMu.Lock()
	defer w.loadMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.gen++
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
		db, err := sql.Open("duckdb", w.dsn)
		if err == nil {
			err = db.PingContext(ctx)
			if err != nil {
				db.Close()
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", w.cfg.Path, classify(err))
		}
		w.db = db
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

// postLoadArgs binds the named parameters a post-load statement uses
// ($window_start, $window_end, $policy, $revision); a parameter the
// statement does not mention is not bound.
func postLoadArgs(stmt string, b loader.Batch) []any {
	var out []any
	for _, p := range []struct {
		name string
		v    any
	}{
		{"window_start", b.WindowStart.UTC()}, {"window_end", b.WindowEnd.UTC()},
		{"policy", b.Policy}, {"revision", int64(b.Revision)},
	} {
		if strings.Contains(stmt, "$"+p.name) {
			out = append(out, sql.Named(p.name, p.v))
		}
	}
	return out
}

// classify wraps errors that mean another process holds the file with ErrUnavailable.
func classify(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "Could not set lock on file") || strings.Contains(msg, "Conflicting lock") {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
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
