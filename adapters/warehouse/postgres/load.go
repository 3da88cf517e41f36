package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/warehouse"
)

// Advisory lock keys: hashtextextended(prefix || name, 0). A collision of
// two names only makes their loads wait for each other.
const (
	lockDDL    = "windrow.ddl"     // creating or evolving any table, the ledger, a merge index
	lockBatch  = "windrow.batch:"  // + batch id: one load of a batch at a time
	lockWindow = "windrow.window:" // + table and window start: replace loads of one window
)

// Load implements warehouse.Warehouse. See the package documentation.
func (w *Warehouse) Load(ctx context.Context, b warehouse.Batch) (rows int64, duplicate bool, err error) {
	if w.cfg.ReadOnly {
		return 0, false, fmt.Errorf("batch %s: %s: %w", b.ID, w.name, warehouse.ErrReadOnly)
	}
	l, err := newLoad(b)
	if err != nil {
		return 0, false, err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return 0, false, warehouse.ErrClosed
	}
	if w.cfg.Objects == nil {
		return 0, false, errors.New("no object store to read the batch from (postgres.Config.Objects)")
	}
	files, closeFiles, err := openObjects(ctx, w.cfg.Objects, b.Objects, l.cols)
	if err != nil {
		return 0, false, fmt.Errorf("batch %s: %w", b.ID, err)
	}
	defer closeFiles()
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("batch %s: connect to %s: %w", b.ID, w.name, classify(err))
	}
	postLoad := len(b.PostLoad) > 0
	defer func() {
		if !postLoad {
			conn.Release()
			return
		}
		// Post-load SQL ran in this session as another role and may have
		// left things in it (settings, temp objects, prepared statements,
		// session advisory locks): close it instead of pooling it.
		conn.Hijack().Close(ctx)
	}()
	if err := w.ensureLedger(ctx, conn); err != nil {
		return 0, false, err
	}
	if err := l.ensureTable(ctx, conn); err != nil {
		return 0, false, err
	}
	if postLoad {
		if l.role, err = w.ensureRole(ctx, conn, l.t); err != nil {
			return 0, false, err
		}
	}
	rows, duplicate, err = l.run(ctx, conn, files)
	if errors.Is(err, warehouse.ErrPostLoad) {
		w.roles.Delete(l.t.String()) // grant again next time: the table may have been made anew
	}
	return rows, duplicate, err
}

// load is one checked Load call: the batch and the quoted identifiers its
// SQL uses.
type load struct {
	b       warehouse.Batch
	t       tableName
	cols    []column
	mode    string
	keys    []string     // quoted merge key columns (mode merge)
	timeCol string       // quoted time column, or ""
	extra   []string     // quoted nullable columns of the table the batch lacks
	role    postLoadRole // post-load SQL runs as this role
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

// openObjects opens every object and plans how to read it, before any
// transaction begins: a missing object wraps ErrObjectMissing, a file that
// does not hold the batch's columns ErrSchemaMismatch; other read errors
// are transient, as a read of the object store is.
func openObjects(ctx context.Context, store objstore.Store, keys []string, cols []column) ([]*batchFile, func(), error) {
	var opened []objstore.Object
	closeAll := func() {
		for _, o := range opened {
			o.Close() // read-only: nothing to lose
		}
	}
	var files []*batchFile
	for _, key := range keys {
		obj, err := store.Open(ctx, key)
		switch {
		case errors.Is(err, objstore.ErrNotFound):
			closeAll()
			return nil, nil, fmt.Errorf("%w: %s", warehouse.ErrObjectMissing, key)
		case err != nil && (errors.Is(err, objstore.ErrInvalidKey) || ctx.Err() != nil):
			closeAll()
			return nil, nil, fmt.Errorf("open object %q: %w", key, err)
		case err != nil:
			closeAll()
			return nil, nil, fmt.Errorf("open object %q: %w: %w", key, warehouse.ErrTransient, err)
		}
		opened = append(opened, obj)
		f, err := parquet.OpenFile(obj, obj.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("read object %q: %w: %w", key, warehouse.ErrTransient, err)
		}
		bf, err := planFile(key, f, cols)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		files = append(files, bf)
	}
	return files, closeAll, nil
}

// lockXact takes a transaction-level advisory lock on key, waiting for it.
func lockXact(ctx context.Context, tx pgx.Tx, key string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key); err != nil {
		return fmt.Errorf("advisory lock %s: %w", key, classify(err))
	}
	return nil
}

// ensureLedger creates the ledger if missing, once per Warehouse.
func (w *Warehouse) ensureLedger(ctx context.Context, conn *pgxpool.Conn) error {
	if w.ledgerReady.Load() {
		return nil
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := lockXact(ctx, tx, lockDDL); err != nil {
			return err
		}
		for _, stmt := range ledgerDDL {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("create ledger: %w", classify(err))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger %s: %w", ledgerTable, classify(err))
	}
	w.ledgerReady.Store(true)
	return nil
}

// ensureTable creates the table, adds the batch's new nullable columns and
// (mode merge) the unique index on the merge key. The DDL commits on its
// own, before the load's transaction, under one advisory lock: concurrent
// CREATE TABLE IF NOT EXISTS of one name fails in PostgreSQL instead of
// waiting, and the load's transaction then holds no catalog lock that would
// serialize loads of one table.
func (l *load) ensureTable(ctx context.Context, conn *pgxpool.Conn) error {
	have, order, err := tableColumns(ctx, conn, l.t)
	if err != nil {
		return err
	}
	ddl, err := tableChanges(l.t, l.cols, have, order)
	if err != nil {
		return err
	}
	needIndex := false
	if l.mode == warehouse.ModeMerge && len(ddl) == 0 {
		if needIndex, err = l.missingMergeIndex(ctx, conn); err != nil {
			return err
		}
	}
	if len(ddl) > 0 || needIndex {
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := lockXact(ctx, tx, lockDDL); err != nil {
				return err
			}
			if l.t.schema != "" {
				if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS "`+l.t.schema+`"`); err != nil {
					return fmt.Errorf("create schema %s: %w", l.t.schema, classify(err))
				}
			}
			// Another loader may have changed the table while this one waited.
			if have, order, err = tableColumns(ctx, tx, l.t); err != nil {
				return err
			}
			if ddl, err = tableChanges(l.t, l.cols, have, order); err != nil {
				return err
			}
			for _, stmt := range ddl {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("table %s: %s: %w", l.t, stmt, classify(err))
				}
			}
			if l.mode == warehouse.ModeMerge {
				idx := `CREATE UNIQUE INDEX IF NOT EXISTS "` + mergeIndex(l.t, l.b.MergeKey) + `" ON ` + l.t.sql() + ` (` + strings.Join(l.keys, ", ") + `)`
				if _, err := tx.Exec(ctx, idx); err != nil {
					return fmt.Errorf("%w: unique index on the merge key (%s) of %s: %w",
						warehouse.ErrSchemaMismatch, strings.Join(l.b.MergeKey, ", "), l.t, classify(err))
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if have, order, err = tableColumns(ctx, conn, l.t); err != nil {
			return err
		}
	}
	inBatch := map[string]bool{}
	for _, c := range l.cols {
		inBatch[c.name] = true
	}
	for _, name := range order {
		if !inBatch[name] && !isLineage(name) {
			l.extra = append(l.extra, `"`+name+`"`)
		}
	}
	return nil
}

// missingMergeIndex reports whether the table lacks the merge key's index.
func (l *load) missingMergeIndex(ctx context.Context, q querier) (bool, error) {
	rows, err := q.Query(ctx, `SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = to_regclass($1) AND c.relname = $2`, l.t.sql(), mergeIndex(l.t, l.b.MergeKey))
	if err != nil {
		return false, fmt.Errorf("merge index of %s: %w", l.t, classify(err))
	}
	defer rows.Close()
	found := rows.Next()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("merge index of %s: %w", l.t, classify(err))
	}
	return !found, nil
}

// run is the load's transaction: batch lock, ledger check, (replace) window
// lock and the superseded check, the mode's deletes, the rows, post-load
// SQL, ledger row, commit.
func (l *load) run(ctx context.Context, conn *pgxpool.Conn, files []*batchFile) (int64, bool, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("begin: %w", classify(err))
	}
	defer tx.Rollback(ctx) // no-op after Commit; a failed rollback closes the connection
	// Racing loads of one batch wait here for the first to commit or roll
	// back, then find its ledger row: one COPY, not one per loader.
	if err := lockXact(ctx, tx, lockBatch+l.b.ID); err != nil {
		return 0, false, err
	}
	rows, seen, err := l.ledgerLookup(ctx, tx)
	if err != nil {
		return 0, false, err
	}
	if seen == ledgerDuplicate {
		return rows, true, nil
	}
	if l.mode == warehouse.ModeReplace {
		if err := lockXact(ctx, tx, lockWindow+l.t.String()+"|"+l.b.WindowStart.UTC().Format(time.RFC3339Nano)); err != nil {
			return 0, false, err
		}
		newer, err := l.newerRevision(ctx, tx)
		if err != nil {
			return 0, false, err
		}
		if newer {
			return 0, true, nil // superseded: see the package documentation
		}
	}
	if seen == ledgerReplayed {
		if err := l.dropEarlierLoad(ctx, tx); err != nil {
			return 0, false, err
		}
	}
	if err := l.deleteReplaced(ctx, tx); err != nil {
		return 0, false, err
	}
	if rows, err = l.copyRows(ctx, tx, files); err != nil {
		return 0, false, err
	}
	if err := l.postLoad(ctx, tx); err != nil {
		return 0, false, err
	}
	if err := l.recordLedger(ctx, tx, rows); err != nil {
		return 0, false, err
	}
	if err := tx.Commit(ctx); err != nil {
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

// ledgerLookup looks up the batch id; rows is what the ledger recorded.
func (l *load) ledgerLookup(ctx context.Context, tx pgx.Tx) (rows int64, _ ledgerState, _ error) {
	var loadedReplay int
	err := tx.QueryRow(ctx, `SELECT rows, replay FROM `+ledgerTable+` WHERE batch_id = $1`, l.b.ID).Scan(&rows, &loadedReplay)
	switch {
	case err == nil && loadedReplay >= l.b.Replay:
		return rows, ledgerDuplicate, nil
	case err == nil:
		return rows, ledgerReplayed, nil
	case errors.Is(err, pgx.ErrNoRows):
		return 0, ledgerNew, nil
	default:
		return 0, 0, fmt.Errorf("ledger lookup: %w", classify(err))
	}
}

// newerRevision reports whether the ledger holds a later revision of the
// batch's window (same policy and table) than the batch's.
func (l *load) newerRevision(ctx context.Context, tx pgx.Tx) (bool, error) {
	var newer bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+ledgerTable+`
		WHERE table_name = $1 AND window_start = $2 AND policy = $3 AND revision > $4)`,
		l.t.String(), l.b.WindowStart.UTC(), l.b.Policy, l.b.Revision).Scan(&newer)
	if err != nil {
		return false, fmt.Errorf("ledger: later revisions of the window: %w", classify(err))
	}
	return newer, nil
}

// dropEarlierLoad removes what an earlier run's load of the batch id put in
// the table, and its ledger row (a replay).
func (l *load) dropEarlierLoad(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `DELETE FROM `+l.t.sql()+` WHERE "_batch_id" = $1`, l.b.ID); err != nil {
		return fmt.Errorf("replay %s: delete its earlier rows: %w", l.b.ID, classify(err))
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+ledgerTable+` WHERE batch_id = $1`, l.b.ID); err != nil {
		return fmt.Errorf("replay %s: ledger: %w", l.b.ID, classify(err))
	}
	return nil
}

// deleteReplaced deletes, for mode replace, the window's rows this policy
// loaded before (any batch, any revision, any mode), found through the
// ledger.
func (l *load) deleteReplaced(ctx context.Context, tx pgx.Tx) error {
	if l.mode != warehouse.ModeReplace {
		return nil
	}
	del := `DELETE FROM ` + l.t.sql() + ` WHERE "_window_start" = $1 AND "_batch_id" IN (SELECT batch_id FROM ` + ledgerTable +
		` WHERE policy = $2 AND table_name = $3 AND window_start = $1)`
	if _, err := tx.Exec(ctx, del, l.b.WindowStart.UTC(), l.b.Policy, l.t.String()); err != nil {
		return fmt.Errorf("replace window in %s: %w", l.t, classify(err))
	}
	return nil
}

// mergeTable is the session's temp table of a merge load's rows.
const mergeTable = "_windrow_merge"

// copyNames are the COPY's columns: the batch's, then the lineage columns.
func (l *load) copyNames() []string {
	names := make([]string, 0, len(l.cols)+len(lineage))
	for _, c := range l.cols {
		names = append(names, c.name)
	}
	for _, c := range lineage {
		names = append(names, c.name)
	}
	return names
}

// copyRows streams the objects' rows into the table with COPY (mode merge:
// into a temp table, then upserts the newest row of each key), checks the
// row count and returns the rows loaded.
func (l *load) copyRows(ctx context.Context, tx pgx.Tx, files []*batchFile) (int64, error) {
	target := l.t.ident()
	if l.mode == warehouse.ModeMerge {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE `+mergeTable+` (LIKE `+l.t.sql()+`) ON COMMIT DROP`); err != nil {
			return 0, fmt.Errorf("merge into %s: temp table: %w", l.t, classify(err))
		}
		target = pgx.Identifier{mergeTable}
	}
	src := newRowSource(ctx, files, l.b.WindowStart.UTC(), l.b.WindowEnd.UTC(), l.b.ID)
	defer src.close()
	n, err := tx.CopyFrom(ctx, target, l.copyNames(), src)
	if err != nil {
		if srcErr := src.Err(); srcErr != nil {
			return 0, fmt.Errorf("copy into %s: %w", l.t, srcErr)
		}
		return 0, fmt.Errorf("copy into %s: %w", l.t, classifyCopy(err))
	}
	if l.b.Rows > 0 && n != l.b.Rows {
		return 0, fmt.Errorf("%w: %v hold %d rows, batch says %d", warehouse.ErrRowCount, l.b.Objects, n, l.b.Rows)
	}
	if l.mode != warehouse.ModeMerge {
		return n, nil
	}
	return l.upsert(ctx, tx)
}

// classifyCopy: a row the table refuses (a NULL in a NOT NULL column, a
// value out of range) is permanent; the rest is classify's.
func classifyCopy(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")) {
		return fmt.Errorf("%w: %w", warehouse.ErrSchemaMismatch, err)
	}
	return classify(err)
}

// upsert merges the temp table into the table: last writer wins by event
// time, then source sequence, whatever order windows load in. The newest
// row of each key in the batch replaces the table's row of that key when
// the table's is not newer (time column, then _source_seq, as duckdbwh
// compares them); a key the table lacks is inserted. Columns of the table
// the batch lacks become NULL, as if the row were deleted and inserted.
func (l *load) upsert(ctx context.Context, tx pgx.Tx) (int64, error) {
	names := l.copyNames()
	quoted := make([]string, len(names))
	set := make([]string, 0, len(names)+len(l.extra))
	for i, n := range names {
		quoted[i] = `"` + n + `"`
		set = append(set, quoted[i]+` = EXCLUDED.`+quoted[i])
	}
	for _, x := range l.extra {
		set = append(set, x+` = NULL`)
	}
	order := `"_source_seq" DESC`
	guard := `t."_source_seq" <= EXCLUDED."_source_seq"`
	if l.timeCol != "" {
		order = l.timeCol + ` DESC NULLS LAST, ` + order
		tc := l.timeCol
		guard = `(t.` + tc + ` < EXCLUDED.` + tc + ` OR (t.` + tc + ` = EXCLUDED.` + tc + ` AND ` + guard + `))`
	}
	list := strings.Join(quoted, ", ")
	keys := strings.Join(l.keys, ", ")
	stmt := `INSERT INTO ` + l.t.sql() + ` AS t (` + list + `) SELECT DISTINCT ON (` + keys + `) ` + list +
		` FROM ` + mergeTable + ` ORDER BY ` + keys + `, ` + order +
		` ON CONFLICT (` + keys + `) DO UPDATE SET ` + strings.Join(set, ", ") + ` WHERE ` + guard
	tag, err := tx.Exec(ctx, stmt)
	if err != nil {
		return 0, fmt.Errorf("merge into %s: %w", l.t, classify(err))
	}
	if _, err := tx.Exec(ctx, `DROP TABLE `+mergeTable); err != nil {
		return 0, fmt.Errorf("merge into %s: drop temp table: %w", l.t, classify(err))
	}
	return tag.RowsAffected(), nil
}

// postLoad runs the policy's post-load statements as the table's post-load
// role (l.role), through the post-load function (postLoadSetup), checked
// before each call (postLoadIntact). Before each call and after the last,
// RESET ALL undoes settings a statement changed for the session (such as
// search_path); after the last, DISCARD TEMP drops the temp objects the
// statements made (a temp table named like the ledger would take the
// ledger row) and the function. Statements that name windrow's own tables
// are refused first (warehouse.CheckPostLoad).
func (l *load) postLoad(ctx context.Context, tx pgx.Tx) error {
	if len(l.b.PostLoad) == 0 {
		return nil
	}
	for i, stmt := range l.b.PostLoad {
		if err := warehouse.CheckPostLoad(stmt); err != nil {
			return fmt.Errorf("post_load[%d]: %w", i, err)
		}
	}
	oid, err := postLoadSetup(ctx, tx, l.role)
	if err != nil {
		return err
	}
	args := postLoadArgs(l.b)
	for i, stmt := range l.b.PostLoad {
		if _, err := tx.Exec(ctx, `RESET ALL`); err != nil {
			return fmt.Errorf("%w: post_load[%d]: reset the session: %w", warehouse.ErrPostLoad, i, classify(err))
		}
		ok, err := postLoadIntact(ctx, tx, l.role, oid)
		if err != nil {
			return fmt.Errorf("%w: post_load[%d]: check the post-load function: %w", warehouse.ErrPostLoad, i, classify(err))
		}
		if !ok {
			return fmt.Errorf("post_load[%d]: %w: an earlier statement altered or replaced the post-load function", i, warehouse.ErrPostLoadRefused)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_temp.windrow_post_load($1, $2, $3, $4, $5)`, append([]any{bindPostLoad(stmt)}, args...)...); err != nil {
			return fmt.Errorf("%w: post_load[%d] (runs as role %s, which may change only %s and the tables granted to it): %w",
				warehouse.ErrPostLoad, i, l.role.name, l.t, classify(err))
		}
	}
	for _, stmt := range []string{`RESET ALL`, `DISCARD TEMP`} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%w: after post-load: %s: %w", warehouse.ErrPostLoad, stmt, classify(err))
		}
	}
	return nil
}

// recordLedger inserts the batch's ledger row.
func (l *load) recordLedger(ctx context.Context, tx pgx.Tx, rows int64) error {
	b := l.b
	version := pgtype.Numeric{Int: new(big.Int).SetUint64(b.PolicyVersion), Valid: true}
	_, err := tx.Exec(ctx, `INSERT INTO `+ledgerTable+` (batch_id, policy, table_name, window_start, window_end,
		revision, part, policy_version, rows, loaded_at, replay) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		b.ID, b.Policy, l.t.String(), b.WindowStart.UTC(), b.WindowEnd.UTC(), b.Revision, b.Part, version,
		rows, time.Now().UTC(), b.Replay)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		// Only a loader that skips the batch lock gets here; retried, the
		// load finds the batch in the ledger.
		return fmt.Errorf("ledger insert: %w: %w", warehouse.ErrTransient, err)
	}
	if err != nil {
		return fmt.Errorf("ledger insert: %w", classify(err))
	}
	return nil
}
