package duckdbwh

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/windrow/windrow/adapters/warehouse"
)

// Load implements warehouse.Warehouse. See the package documentation.
func (w *Warehouse) Load(ctx context.Context, b warehouse.Batch) (rows int64, duplicate bool, err error) {
	if w.cfg.ReadOnly {
		return 0, false, fmt.Errorf("batch %s: %s: %w", b.ID, w.cfg.Path, warehouse.ErrReadOnly)
	}
	l, err := newLoad(b)
	if err != nil {
		return 0, false, err
	}
	w.mu.Lock()
	closed := w.closed // Close removes the load directory
	w.mu.Unlock()
	if closed {
		return 0, false, ErrClosed
	}
	files, cleanup, err := w.objectFiles(ctx, b.Objects)
	if err != nil {
		return 0, false, fmt.Errorf("batch %s: %w", b.ID, err)
	}
	defer cleanup()
	l.files = files

	w.loadMu.Lock()
	defer w.loadMu.Unlock()
	db, release, err := w.acquire(ctx)
	if err != nil {
		return 0, false, err
	}
	defer release()
	return l.run(ctx, db)
}

// load is one checked Load call: the batch and the quoted identifiers and
// local files its SQL uses.
type load struct {
	b       warehouse.Batch
	t       tableName
	cols    []column
	mode    string
	keys    []string // quoted merge key columns (mode merge)
	timeCol string   // quoted time column, or ""
	files   []string // local paths of b.Objects, for read_parquet
}

// newLoad checks b: identifiers, the objects, the mode and its columns.
func newLoad(b warehouse.Batch) (*load, error) {
	t, err := parseTable(b.Table)
	if err != nil {
		return nil, err
	}
	cols, err := batchColumns(b.Columns)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t, err)
	}
	if b.ID == "" || len(b.Objects) == 0 || b.Objects[0] == "" {
		return nil, errors.New("batch: id and objects are required")
	}
	l := &load{b: b, t: t, cols: cols, mode: b.Mode}
	if l.mode == "" {
		l.mode = warehouse.ModeAppend
	}
	switch l.mode {
	case warehouse.ModeAppend, warehouse.ModeReplace:
		if len(b.MergeKey) > 0 {
			return nil, fmt.Errorf("batch %s: merge key set in mode %s", b.ID, l.mode)
		}
	case warehouse.ModeMerge:
		if len(b.MergeKey) == 0 {
			return nil, fmt.Errorf("batch %s: mode merge needs a merge key", b.ID)
		}
		for _, k := range b.MergeKey {
			q, err := quoteIdent(k)
			if err != nil {
				return nil, fmt.Errorf("merge key: %w", err)
			}
			l.keys = append(l.keys, q)
		}
	default:
		return nil, fmt.Errorf("batch %s: load mode %q (valid: append, replace, merge)", b.ID, b.Mode)
	}
	if b.TimeColumn != "" {
		if l.timeCol, err = quoteIdent(b.TimeColumn); err != nil {
			return nil, fmt.Errorf("time column: %w", err)
		}
	}
	return l, nil
}

// run is the load's transaction: ledger check, table, the mode's deletes,
// the rows, post-load SQL, ledger row, commit.
func (l *load) run(ctx context.Context, db *sql.DB) (int64, bool, error) {
	// One connection, held: post-load statements are checked on the
	// transaction's own connection (checkPostLoad).
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("connect: %w", classify(err))
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("begin: %w", classify(err))
	}
	defer tx.Rollback() // no-op after Commit

	rows, seen, err := l.ledgerLookup(ctx, tx)
	if err != nil {
		return 0, false, err
	}
	if seen == ledgerDuplicate {
		return rows, true, nil
	}
	if l.mode == warehouse.ModeReplace {
		// Loads are serialized (loadMu): no lock is needed to see the
		// newest revision the ledger holds.
		var newer bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+ledgerTable+`
			WHERE table_name = ? AND window_start = ? AND policy = ? AND revision > ?)`,
			l.t.String(), l.b.WindowStart.UTC(), l.b.Policy, l.b.Revision).Scan(&newer); err != nil {
			return 0, false, fmt.Errorf("ledger: later revisions of the window: %w", classify(err))
		}
		if newer {
			return 0, true, nil // superseded (see package warehouse)
		}
	}
	if err := ensureTable(ctx, tx, l.t, l.cols); err != nil {
		return 0, false, err
	}
	if seen == ledgerReplayed {
		if err := l.dropEarlierLoad(ctx, tx); err != nil {
			return 0, false, err
		}
	}
	if err := l.checkRowCount(ctx, tx); err != nil {
		return 0, false, err
	}
	if err := l.deleteReplaced(ctx, tx); err != nil {
		return 0, false, err
	}
	if rows, err = l.insert(ctx, tx); err != nil {
		return 0, false, err
	}
	if err := l.postLoad(ctx, conn, tx); err != nil {
		return 0, false, err
	}
	if err := l.recordLedger(ctx, tx, rows); err != nil {
		return 0, false, err
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("commit: %w", classify(err))
	}
	return rows, false, nil
}

// ledgerState is what the ledger knows of a batch id.
type ledgerState int

const (
	ledgerNew       ledgerState = iota // not loaded
	ledgerDuplicate                    // loaded, by this replay or a later one
	ledgerReplayed                     // loaded by an earlier run; this replay replaces it
)

// ledgerLookup creates the ledger if missing and looks up the batch id;
// rows is what the ledger recorded.
func (l *load) ledgerLookup(ctx context.Context, tx *sql.Tx) (rows int64, _ ledgerState, _ error) {
	if _, err := tx.ExecContext(ctx, ledgerDDL); err != nil {
		return 0, 0, fmt.Errorf("create ledger: %w", classify(err))
	}
	if _, err := tx.ExecContext(ctx, ledgerReplayDDL); err != nil {
		return 0, 0, fmt.Errorf("ledger replay column: %w", classify(err))
	}
	var loadedReplay int
	err := tx.QueryRowContext(ctx, `SELECT rows, replay FROM `+ledgerTable+` WHERE batch_id = ?`, l.b.ID).Scan(&rows, &loadedReplay)
	switch {
	case err == nil && loadedReplay >= l.b.Replay:
		return rows, ledgerDuplicate, nil
	case err == nil:
		return rows, ledgerReplayed, nil
	case errors.Is(err, sql.ErrNoRows):
		return 0, ledgerNew, nil
	default:
		return 0, 0, fmt.Errorf("ledger lookup: %w", classify(err))
	}
}

// dropEarlierLoad removes what an earlier run's load of the batch id put in
// the table, and its ledger row (a replay).
func (l *load) dropEarlierLoad(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+l.t.sql()+` WHERE "_batch_id" = ?`, l.b.ID); err != nil {
		return fmt.Errorf("replay %s: delete its earlier rows: %w", l.b.ID, classify(err))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+ledgerTable+` WHERE batch_id = ?`, l.b.ID); err != nil {
		return fmt.Errorf("replay %s: ledger: %w", l.b.ID, classify(err))
	}
	return nil
}

// source is the files' rows: read_parquet([?, ?, …]), one placeholder per
// file (fileArgs).
func (l *load) source() string {
	return `read_parquet([?` + strings.Repeat(`, ?`, len(l.files)-1) + `])`
}

func (l *load) fileArgs() []any {
	args := make([]any, len(l.files))
	for i, f := range l.files {
		args[i] = f
	}
	return args
}

// checkRowCount: for modes replace and merge, every row of the files must
// be accounted for, also when merge keeps only the newest row of a key.
// Append checks the rows it inserted instead.
func (l *load) checkRowCount(ctx context.Context, tx *sql.Tx) error {
	if l.b.Rows <= 0 || l.mode == warehouse.ModeAppend {
		return nil
	}
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+l.source(), l.fileArgs()...).Scan(&n); err != nil {
		return fmt.Errorf("count rows of %v: %w", l.files, classify(err))
	}
	if n != l.b.Rows {
		return fmt.Errorf("%w: %v hold %d rows, batch says %d", ErrRowCount, l.files, n, l.b.Rows)
	}
	return nil
}

// deleteReplaced deletes the rows the mode replaces: for replace, the
// window's rows this policy loaded before (any batch, any revision, any
// mode), found through the ledger; for merge, the rows of the table whose
// key the window brings a newer row of.
func (l *load) deleteReplaced(ctx context.Context, tx *sql.Tx) error {
	switch l.mode {
	case warehouse.ModeReplace:
		del := `DELETE FROM ` + l.t.sql() + ` WHERE "_window_start" = ? AND "_batch_id" IN (SELECT batch_id FROM ` + ledgerTable +
			` WHERE policy = ? AND table_name = ? AND window_start = ?)`
		ws := l.b.WindowStart.UTC()
		if _, err := tx.ExecContext(ctx, del, ws, l.b.Policy, l.t.String(), ws); err != nil {
			return fmt.Errorf("replace window in %s: %w", l.t, classify(err))
		}
	case warehouse.ModeMerge:
		// Last writer wins by event time, whatever order windows load in:
		// a row of the table is replaced when the window's newest row of its
		// key is newer (event time, then source sequence); insert adds a
		// window's row when no newer row of its key remains.
		del := `DELETE FROM ` + l.t.sql() + ` AS t USING ` + l.newest() + ` WHERE ` + l.keysMatch("t", "n") + ` AND ` + l.older("t", "n")
		if _, err := tx.ExecContext(ctx, del, l.fileArgs()...); err != nil {
			return fmt.Errorf("merge into %s: %w", l.t, classify(err))
		}
	}
	return nil
}

// newest is the files' newest row of each merge key, as relation n.
func (l *load) newest() string {
	order := `"_source_seq" DESC`
	if l.timeCol != "" {
		order = l.timeCol + ` DESC, ` + order
	}
	return `(SELECT * EXCLUDE ("_windrow_rn") FROM (SELECT *, row_number() OVER (PARTITION BY ` + strings.Join(l.keys, ", ") +
		` ORDER BY ` + order + `) AS "_windrow_rn" FROM ` + l.source() + `) WHERE "_windrow_rn" = 1) AS n`
}

// keysMatch: the merge key of a and b is equal.
func (l *load) keysMatch(a, b string) string {
	conds := make([]string, len(l.keys))
	for i, k := range l.keys {
		conds[i] = a + `.` + k + ` = ` + b + `.` + k
	}
	return strings.Join(conds, " AND ")
}

// older: a's row is not newer than b's (event time, then source sequence).
func (l *load) older(a, b string) string {
	seq := a + `."_source_seq" <= ` + b + `."_source_seq"`
	if l.timeCol == "" {
		return seq
	}
	tc := l.timeCol
	return `(` + a + `.` + tc + ` < ` + b + `.` + tc + ` OR (` + a + `.` + tc + ` = ` + b + `.` + tc + ` AND ` + seq + `))`
}

// insert inserts the files' rows (for merge, the newest row of each key
// that has no row left in the table) with the lineage values, and checks
// the count of an append.
func (l *load) insert(ctx context.Context, tx *sql.Tx) (int64, error) {
	names := make([]string, len(l.cols))
	for i, c := range l.cols {
		names[i] = `"` + c.name + `"`
	}
	list := strings.Join(names, ", ")
	into := `INSERT INTO ` + l.t.sql() + ` (` + list + `, "_source_seq", "_window_start", "_window_end", "_batch_id") ` +
		`SELECT ` + list + `, "_source_seq", ?, ?, ? FROM `
	insert := into + l.source()
	if l.mode == warehouse.ModeMerge {
		insert = into + l.newest() + ` WHERE NOT EXISTS (SELECT 1 FROM ` + l.t.sql() + ` AS e WHERE ` + l.keysMatch("e", "n") + `)`
	}
	args := append([]any{l.b.WindowStart.UTC(), l.b.WindowEnd.UTC(), l.b.ID}, l.fileArgs()...)
	res, err := tx.ExecContext(ctx, insert, args...)
	if err != nil {
		return 0, fmt.Errorf("insert %v into %s: %w", l.files, l.t, classify(err))
	}
	rows, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("insert into %s: rows affected: %w", l.t, err)
	}
	if l.b.Rows > 0 && l.mode != warehouse.ModeMerge && rows != l.b.Rows {
		return 0, fmt.Errorf("%w: %v hold %d rows, batch says %d", ErrRowCount, l.files, rows, l.b.Rows)
	}
	return rows, nil
}

// postLoad runs the policy's post-load statements, each checked first
// (checkPostLoad); conn is tx's connection.
func (l *load) postLoad(ctx context.Context, conn *sql.Conn, tx *sql.Tx) error {
	for i, stmt := range l.b.PostLoad {
		if err := checkPostLoad(ctx, conn, stmt); err != nil {
			if !errors.Is(err, ErrPostLoad) {
				err = fmt.Errorf("%w: %w", ErrPostLoad, err)
			}
			return fmt.Errorf("post_load[%d]: %w", i, err)
		}
		if _, err := tx.ExecContext(ctx, stmt, postLoadArgs(stmt, l.b)...); err != nil {
			return fmt.Errorf("%w: post_load[%d]: %w", ErrPostLoad, i, classify(err))
		}
	}
	return nil
}

// postLoadArgs binds the named parameters a post-load statement uses
// ($window_start, $window_end, $policy, $revision); a parameter the
// statement does not mention is not bound.
func postLoadArgs(stmt string, b warehouse.Batch) []any {
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

// recordLedger inserts the batch's ledger row.
func (l *load) recordLedger(ctx context.Context, tx *sql.Tx, rows int64) error {
	b := l.b
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+ledgerTable+` (batch_id, policy, table_name, window_start, window_end,
		revision, part, policy_version, rows, loaded_at, replay) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.Policy, l.t.String(), b.WindowStart.UTC(), b.WindowEnd.UTC(), b.Revision, b.Part, b.PolicyVersion,
		rows, time.Now().UTC(), b.Replay); err != nil {
		return fmt.Errorf("ledger insert: %w", classify(err))
	}
	return nil
}
