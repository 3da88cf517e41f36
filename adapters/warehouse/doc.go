// Package warehouse is the seam between the loader and the databases it
// loads: a Batch names the Parquet objects of one load in the object store
// (adapters/objstore), and a Warehouse loads it. Implementations live in
// sub-packages (duckdbwh: an embedded DuckDB file; postgres: a PostgreSQL
// server); the conformance suite in warehousetest is what each of them must
// pass.
//
// The contract, for every implementation:
//   - Load creates the target table if missing: the policy's columns, then
//     the lineage columns _source_seq BIGINT, _window_start TIMESTAMPTZ,
//     _window_end TIMESTAMPTZ and _batch_id VARCHAR. A later batch may add
//     nullable columns (the table gains them, older rows hold NULL); any other
//     difference (type, NOT NULL) wraps ErrSchemaMismatch.
//   - One load is one transaction: the ledger lookup, the rows of every
//     object, the mode's deletes, the post-load statements and the ledger row
//     keyed by Batch.ID commit together or not at all. A failed load leaves
//     no rows and no ledger row, so a retry loads the batch once. (Creating
//     or evolving the table may commit on its own before that transaction,
//     as postgres does so that concurrent loaders never race on DDL: a
//     failed load may leave the table created or with its new nullable
//     columns, never rows.)
//   - A batch id already in the ledger is a duplicate: Load returns
//     duplicate=true and the rows the ledger recorded, and changes nothing.
//     Concurrent loads of one batch id load it once, also from several
//     processes (Warehouse values) over one database. A batch with Replay > 0
//     is a duplicate only of a ledger row with the same or a later replay
//     number; otherwise what the earlier load of that id put in the table,
//     and its ledger row, are replaced.
//   - Modes: "append" (or "") inserts the rows. "replace" first deletes every
//     row the policy loaded before for the window into the table (any batch,
//     any revision, found through the ledger), so each revision replaces the
//     one loaded before it as a whole. "merge" keeps one row per MergeKey:
//     the newest by TimeColumn, then _source_seq, across the table and the
//     batch.
//   - An older revision never overwrites a newer one: a replace load whose
//     Revision is lower than one the ledger holds for the same policy, table
//     and window start is superseded. Load then changes nothing, records no
//     ledger row, and returns duplicate=true with 0 rows (the loader acks it
//     like a duplicate); a redelivery, or a replay, of it is superseded
//     again. Replace loads of one window that race each other end with the
//     newest revision's rows only, whichever commits first.
//   - Rows, when > 0, is checked against the objects (every row for replace
//     and merge, the inserted rows for append); a difference wraps
//     ErrRowCount.
//   - PostLoad statements run after the rows in the same transaction, with
//     the named parameters $window_start, $window_end (TIMESTAMPTZ),
//     $policy (VARCHAR) and $revision (BIGINT); a failing statement wraps
//     ErrPostLoad and rolls the load back. They run with the least rights
//     the warehouse offers, never the loader's: they cannot read or write
//     files or touch windrow's own tables (the ledger); a statement that
//     names _windrow… (CheckPostLoad) or that the warehouse does not allow
//     wraps ErrPostLoadRefused (and ErrPostLoad) and runs nothing.
//   - Table, schema and column names must match ^[a-z_][a-z0-9_]{0,62}$ and
//     must not be the ledger's or a lineage column's; others wrap
//     ErrInvalidIdentifier.
//   - An object that does not exist wraps ErrObjectMissing.
//   - Errors that may go away on their own (a locked database, a dropped
//     connection) wrap ErrTransient; the loader retries those and treats
//     every other error as permanent.
//   - Load and Close are safe for concurrent use; Close is idempotent, and
//     Load after Close wraps ErrClosed.
//
// How a warehouse reaches the objects is its own configuration, not part of
// a Load call: each implementation is opened over the object store the
// loader reads (duckdbwh.Config.Objects, postgres.Config.Objects), and
// decides once how to read from it (DuckDB hard-links local files, or
// copies other objects, into a private load directory; postgres streams
// them through COPY; a
// server warehouse may also have the server copy from the bucket).
package warehouse
