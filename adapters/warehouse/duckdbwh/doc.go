// Package duckdbwh is windrow's embedded warehouse: a DuckDB database file
// that implements warehouse.Warehouse (adapters/warehouse) and passes its
// conformance suite.
//
// # Loads
//
// Load runs in one transaction: it checks the ledger table _windrow_ledger
// for the batch id (a hit returns duplicate=true and loads nothing), and in
// mode replace for a later revision of the window (then the load is
// superseded: duplicate=true, 0 rows, nothing changes), creates
// or evolves the target table, deletes what the mode replaces, inserts the
// Parquet objects' rows with the lineage columns _source_seq, _window_start,
// _window_end and _batch_id, checks the row count, runs the post-load SQL,
// inserts the ledger row, and commits. Either all of the batch's rows and
// its ledger row are in the warehouse, or none are, so a redelivered command
// is detected and never loads twice.
//
// Every identifier that comes from a policy (table, optional schema, column
// names) must match ^[a-z_][a-z0-9_]{0,62}$ and is double-quoted in SQL;
// values and file paths are bound as parameters.
//
// # Objects
//
// DuckDB's read_parquet reads files. The warehouse is opened over the
// object store the loader reads (Config.Objects), and makes a private load
// directory (0700) in Config.TempDir, removed by Close. Each object of a
// load is put there before the transaction begins and removed when the
// load ends: hard-linked when the store has local files
// (objstore.LocalFiles, as adapters/objstore/local does; copied if the
// link fails, e.g. across file systems), otherwise streamed
// (objstore.NewReader over objstore.Object) into a temp file.
//
// # Post-load SQL
//
// A loader's database may read and write no file but its own (the
// database file, its .wal and spill directory) and those of the load
// directory: right after it is opened, allowed_directories is set to the
// load directory, enable_external_access to false and lock_configuration
// to true, none of which can be undone on a running database. So
// post-load SQL cannot read files (read_text, read_csv of /etc/…), write
// them (COPY … TO), attach databases, install or load extensions, or
// change a setting. Each statement is also checked before it runs, on the
// load transaction's connection: an item must hold one statement of kind
// SELECT, INSERT, UPDATE or DELETE, or a CREATE TABLE (a rollup made on
// the first load; no COPY, EXPORT, ATTACH, SET, PRAGMA assignments, CALL,
// BEGIN/COMMIT/ROLLBACK, other CREATEs such as views, macros and temp
// tables, ALTER or DROP), and
// must not name windrow's own tables (any mention of "_windrow", in any
// case: the ledger is what makes loads exactly-once). A refused statement
// fails the load with an error wrapping warehouse.ErrPostLoadRefused
// (and ErrPostLoad); nothing of the load stays. DuckDB has no privileges:
// post-load SQL may read and change every other table of the database,
// so whoever may apply policies must be trusted with all of the
// warehouse's tables (docs/architecture.md, "Trust boundary").
//
// Tables evolve only by adding nullable columns; any other difference
// between a batch and an existing table (type, NOT NULL) is an error.
//
// # Holding the file
//
// DuckDB allows one process to write a database file. The warehouse opens
// the file on the first Load and closes it after IdleClose without loads, so
// users can open it with the duckdb CLI between loads. If another process
// holds the file, Load fails with an error wrapping ErrUnavailable, which
// wraps warehouse.ErrTransient: the loader retries with backoff.
//
// A database file the warehouse creates is made 0600 (DuckDB creates it
// 0666 less the umask), and its directory, if missing, 0700; an existing
// file keeps its mode. DuckDB creates the write-ahead log (".wal") anew
// after each checkpoint; after every open, load and DB release the
// warehouse takes from it any permission the database file lacks.
//
// Loads are serialized, also when a loader runs several workers (their
// staging of objects, checksums and result publishing still overlap).
// DuckDB does run concurrent write transactions in one process, and
// deletes and inserts of different windows of one table do not conflict
// (tried on DuckDB 1.5 with 8 at once), but two that create or alter the
// same table fail with "Catalog write-write conflict", two that delete the
// same rows with "Conflict on tuple deletion", and merges of different
// windows with shared keys and the replace-mode check for a later
// revision rely on seeing the loads before them. DB lends the same handle to
// readers in this process (the windrow CLI, tests), which is the only way to
// read the file while the warehouse holds it.
//
// # Read-only
//
// With Config.ReadOnly (windrow query and reconcile) the file is opened
// read-only, with external access disabled, and then DuckDB's local file
// system is disabled for the rest of the handle's life: no statement can
// change the database or read or write any file, the database's own file
// and .wal included (external access alone still lets COPY … TO write
// those two). A read-only open takes a shared lock: several readers may
// hold the file at once, but not while a loader holds it, nor a loader
// while a reader does (ErrUnavailable either way; the loader retries,
// windrow query waits up to its --wait).
package duckdbwh
