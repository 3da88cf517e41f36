package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
	"github.com/windrow/windrow/internal/testpg"
)

// readOnlyCase is a statement `windrow query` must refuse, and what its
// error must say.
type readOnlyCase struct {
	name, sql, wantErr string
}

// checkQueryRefusesWrites runs each statement through runQuery (the
// --warehouse flag is target) and checks that it fails with its error, that
// the table u was not created, that t still has its one row, and that the
// COPY target was not written. A SELECT must work.
func checkQueryRefusesWrites(t *testing.T, target string, cases []readOnlyCase, copyFile string, count func() (tables int, rows int64)) {
	t.Helper()
	ctx := context.Background()
	for _, c := range cases {
		err := runQuery(ctx, []string{"--warehouse", target, "--wait", "0s", c.sql})
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: windrow query %q = %v, want an error with %q", c.name, c.sql, err, c.wantErr)
			continue
		}
		t.Logf("%s: %v", c.name, err)
	}
	if _, err := os.Stat(copyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("COPY wrote %s (stat: %v), want no file", copyFile, err)
	}
	tables, rows := count()
	if tables != 0 {
		t.Errorf("CREATE TABLE u: the table exists, want none")
	}
	if rows != 1 {
		t.Errorf("INSERT INTO t: t has %d rows, want 1", rows)
	}
	if err := runQuery(ctx, []string{"--warehouse", target, "SELECT x FROM t"}); err != nil {
		t.Errorf("windrow query SELECT: %v", err)
	}
}

// TestQueryRefusesWritesDuckDB guards `windrow query` against writing the
// DuckDB warehouse or any other file: it opens the file read-only with
// external access disabled.
func TestQueryRefusesWritesDuckDB(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "warehouse.duckdb")
	w, err := duckdbwh.Open(duckdbwh.Config{Path: file})
	if err != nil {
		t.Fatal(err)
	}
	db, release, err := w.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t AS SELECT 1 AS x"); err != nil {
		t.Fatal(err)
	}
	release()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile := filepath.Join(dir, "copy.csv")
	csvFile := filepath.Join(dir, "secret.csv")
	if err := os.WriteFile(csvFile, []byte("a\n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkQueryRefusesWrites(t, file, []readOnlyCase{
		{"CREATE TABLE", "CREATE TABLE u (x INTEGER)", "read-only"},
		{"INSERT", "INSERT INTO t VALUES (2)", "read-only"},
		{"COPY TO a file", "COPY (SELECT 1) TO '" + copyFile + "'", "disabled by configuration"},
		{"COPY over the database file", "COPY (SELECT 1) TO '" + file + "' (USE_TMP_FILE false)", "disabled by configuration"},
		{"COPY to the write-ahead log", "COPY (SELECT 1) TO '" + file + ".wal'", "disabled by configuration"},
		{"ATTACH", "ATTACH '" + filepath.Join(dir, "other.duckdb") + "'", "disabled by configuration"},
		{"read a file", "SELECT * FROM read_csv('" + csvFile + "')", "disabled by configuration"},
	}, copyFile, func() (int, int64) {
		w, err := duckdbwh.Open(duckdbwh.Config{Path: file})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		db, release, err := w.DB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		var tables int
		var rows int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'u'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		return tables, rows
	})
	for _, name := range []string{"other.duckdb", "warehouse.duckdb.wal"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists (stat: %v), want no file", name, err)
		}
	}
}

// TestQueryRefusesWritesPostgres guards `windrow query` against writing the
// PostgreSQL warehouse or a file of the server: every transaction is read
// only, and a superuser drops to pg_read_all_data. The COPY target is
// checked on this machine's file system, which is the server's when the
// server runs here (the project's test server does).
func TestQueryRefusesWritesPostgres(t *testing.T) {
	ctx := context.Background()
	_, dsn := testpg.Schema(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, "CREATE TABLE t AS SELECT 1 AS x"); err != nil {
		t.Fatal(err)
	}
	// The server's user must be able to write here for the COPY to be a
	// real test: a directory anyone may write to.
	dir, err := os.MkdirTemp("", "windrow-query-copy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	copyFile := filepath.Join(dir, "copy.csv")
	checkQueryRefusesWrites(t, dsn, []readOnlyCase{
		{"CREATE TABLE", "CREATE TABLE u (x integer)", "read-only transaction"},
		{"INSERT", "INSERT INTO t VALUES (2)", "read-only transaction"},
		{"COPY TO a file", "COPY (SELECT 1) TO '" + copyFile + "'", "pg_write_server_files"},
		{"read a file", "SELECT pg_read_file('postgresql.conf')", "permission denied"},
	}, copyFile, func() (int, int64) {
		var tables int
		var rows int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'u'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		return tables, rows
	})
}
