// Package postgres is windrow's server warehouse: a PostgreSQL database
// that implements warehouse.Warehouse (adapters/warehouse) and passes its
// conformance suite. Several loaders, in one process or many, may load into
// one database at once, also into one table and one window.
//
// # Tables and types
//
// Load creates the target table on the first load, and adds the nullable
// columns a later batch brings; any other difference (type, NOT NULL) is an
// error wrapping warehouse.ErrSchemaMismatch. The policy's column types map
// to:
//
//	string           text
//	int64            bigint
//	float64          double precision
//	bool             boolean
//	timestamp        timestamp with time zone (timestamptz)
//	date             date
//	decimal(P,S)     numeric(P,S)
//	list<T>          T[] for a scalar T (numeric(P,S)[] for decimals); jsonb for
//	                 lists of lists (PostgreSQL arrays are rectangular) and of objects
//	object<…>        jsonb (members by name; decimals as exact JSON numbers,
//	                 timestamps as RFC 3339 strings in UTC, dates as YYYY-MM-DD)
//
// followed by the lineage columns _source_seq bigint, _window_start and
// _window_end timestamptz, and _batch_id text. The ledger _windrow_ledger has
// duckdbwh's columns (batch_id text PRIMARY KEY, policy, table_name,
// window_start, window_end, revision, part, policy_version numeric(20,0),
// rows, loaded_at, replay). Unqualified tables and the ledger live in the
// first schema of the connection's search path (set it with
// ?search_path=… in the URL); "schema.table" creates the schema if missing.
// Every identifier from a policy must match ^[a-z_][a-z0-9_]{0,62}$ and is
// double-quoted; values are bound parameters.
//
// Creating and evolving a table (and the ledger, and a merge key's unique
// index) commits in a short transaction of its own before the load's, under
// one advisory lock: PostgreSQL fails a CREATE TABLE IF NOT EXISTS that
// races another instead of waiting, and DDL in the load's transaction would
// hold a lock that serializes every load of the table until it commits. A
// failed load may so leave the table created or with its new columns, never
// rows or a ledger row.
//
// # Loads
//
// Every Load runs on one pooled connection, in one transaction (read
// committed):
//
//  1. pg_advisory_xact_lock(hashtextextended('windrow.batch:' || id, 0)):
//     loads of one batch id wait here for each other.
//  2. The ledger lookup: a batch id already loaded (by this replay or a
//     later one) is a duplicate; Load returns the recorded rows. The
//     statement's snapshot is taken after the lock, so a racing loader that
//     committed first is seen, and only one loader runs the COPY.
//  3. Mode replace: pg_advisory_xact_lock on 'windrow.window:' || table ||
//     window start, then: if the ledger holds a later revision of the window
//     (same policy and table), the load is superseded and returns
//     duplicate=true with 0 rows, changing nothing (the contract in package
//     warehouse). Otherwise the window's rows this policy loaded before are
//     deleted. Two revisions racing each other serialize on the window lock,
//     and whichever goes second sees the first's ledger row: the older one is
//     superseded, the newer one deletes the older one's rows.
//  4. A replay (Batch.Replay above the ledger's) first deletes what the
//     earlier load of the id put in the table and its ledger row.
//  5. The rows: pgx CopyFrom streams them from the Parquet objects, read
//     through the object store (objstore.Object as io.ReaderAt; parquet-go
//     reads the footer and then one column page at a time, never the whole
//     object), in chunks of rows converted in place (the values point into
//     per-column slots, decimals of precision up to 18 are written in
//     numeric's binary format directly). Mode merge copies into a temp
//     table and then runs INSERT … SELECT DISTINCT ON (key) … ON CONFLICT
//     (key) DO UPDATE … WHERE the table's row is not newer, by
//     (time column, _source_seq), as duckdbwh merges: the newest row of
//     each key wins, whatever order windows load in; concurrent merges of
//     one key are serialized by the unique index on the merge key (created
//     with the table, or on the first merge load; existing duplicate keys
//     make that fail with ErrSchemaMismatch).
//  6. The row count check, the post-load statements, the ledger row,
//     COMMIT. The advisory locks end with the transaction.
//
// # Post-load SQL
//
// Post-load statements take the named parameters $window_start,
// $window_end, $policy and $revision, rewritten as typed positional
// parameters ($1::timestamptz, $2::timestamptz, $3::text, $4::bigint);
// names inside string literals, quoted identifiers, comments and dollar
// quotes are left alone. They do not run with the URL's user's rights but
// as the table's post-load role, windrow_pl_<table>_<hash> (NOLOGIN; made
// on the first load with post-load SQL, so the URL's user needs
// CREATEROLE), which may query and change the table (USAGE on its schema;
// SELECT, INSERT, UPDATE, DELETE) and the tables GrantPostLoad (or an
// operator's GRANT) gives it, and nothing else: not the ledger, not the
// server's files. Each statement runs in the load's transaction through
// pg_temp.windrow_post_load, a plpgsql SECURITY DEFINER function the load
// makes and hands to the role: in it SET ROLE, RESET ROLE, set_config('role')
// and COMMIT fail. The role owns the function, so it is checked unaltered
// before each statement; RESET ALL runs before each statement and after
// the last, DISCARD TEMP after the last (a temp table named like the
// ledger would take the ledger row), and the connection is closed, not
// pooled, when the load ends. A statement that names _windrow… is refused
// (warehouse.CheckPostLoad), and so is a role that may change the ledger
// or the server's files. See decision 0011.
//
// # Read-only
//
// With Config.ReadOnly (windrow query and reconcile) every connection
// starts with default_transaction_read_only=on, so every statement runs in
// a read-only transaction: CREATE, INSERT, UPDATE, DELETE and the like
// fail. A read-only transaction still allows COPY … TO a file of the server
// (and pg_read_file, COPY … TO PROGRAM) to a role allowed those, so a
// connection whose role is a superuser or has the rights of
// pg_read_server_files, pg_write_server_files or pg_execute_server_program
// drops to pg_read_all_data (SET ROLE; PostgreSQL 14 or later), which may
// read every table and nothing more; a connection that cannot drop fails.
// This guards against mistakes, not against someone who holds the URL:
// such a statement as RESET ROLE undoes it. For untrusted SQL, connect as
// a role that may only SELECT.
//
// # Errors
//
// Failures that may go away on their own wrap warehouse.ErrTransient: a
// refused, reset or lost connection, SQLSTATE classes 08 (connection), 53
// (insufficient resources) and 58 (system), serialization failures
// (40001), deadlocks (40P01), lock timeouts (55P03) and a server shutting
// down (57P01-57P03), and read errors of an object. Everything else is
// permanent. Errors and String never show the URL's password (Redact).
package postgres
