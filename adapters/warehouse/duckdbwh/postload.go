package duckdbwh

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/duckdb/duckdb-go/v2/mapping"

	"github.com/windrow/windrow/adapters/warehouse"
)

// postLoadKinds are the statements post-load SQL may run: queries and
// changes of rows. Everything else is refused (MERGE INTO too, for now:
// duckdb-go has no name for its kind; DELETE then INSERT does the same): COPY and EXPORT (files),
// ATTACH, DETACH and USE (other databases), SET, RESET, PRAGMA with an
// assignment, CALL, LOAD and INSTALL (settings, extensions), BEGIN, COMMIT
// and ROLLBACK (the load's own transaction), CREATE, ALTER and DROP
// (tables, views and macros that would outlive the load).
var postLoadKinds = map[duckdb.StmtType]string{
	duckdb.STATEMENT_TYPE_SELECT: "SELECT",
	duckdb.STATEMENT_TYPE_INSERT: "INSERT",
	duckdb.STATEMENT_TYPE_UPDATE: "UPDATE",
	duckdb.STATEMENT_TYPE_DELETE: "DELETE",
}

// checkPostLoad refuses a post-load statement before it runs (the error
// wraps warehouse.ErrPostLoadRefused) unless it is one statement of a kind
// in postLoadKinds that does not name windrow's own tables. It prepares
// the statement on conn, the load transaction's connection, so that it
// binds against the tables as the load left them.
func checkPostLoad(ctx context.Context, conn *sql.Conn, stmt string) error {
	if err := warehouse.CheckPostLoad(stmt); err != nil {
		return err
	}
	n, err := statementCount(stmt)
	if err != nil {
		return err
	}
	if n != 1 {
		// Preparing a text of several statements runs all but the last.
		return fmt.Errorf("%w: %d statements in one item: write one statement per list item", warehouse.ErrPostLoadRefused, n)
	}
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*duckdb.Conn)
		if !ok {
			return fmt.Errorf("post-load check: driver connection is a %T", dc)
		}
		st, err := c.PrepareContext(ctx, stmt)
		if err != nil {
			return classify(err)
		}
		defer st.Close()
		kind, err := st.(*duckdb.Stmt).StatementType()
		if err != nil {
			return err
		}
		if _, ok := postLoadKinds[kind]; ok || kind == duckdb.STATEMENT_TYPE_CREATE && createTable.MatchString(stmt) {
			return nil
		}
		return fmt.Errorf("%w: a statement of kind %d; post-load may run only SELECT, INSERT, UPDATE, DELETE and CREATE TABLE", warehouse.ErrPostLoadRefused, kind)
	})
}

// createTable matches a statement that starts (after comments) with
// CREATE TABLE: with the statement's kind CREATE, it makes a table (not a
// temp table: DuckDB wants CREATE TEMP TABLE for that, which a temp table
// named like a policy's would hide it from later loads on the connection).
var createTable = regexp.MustCompile(`(?is)^\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*CREATE\s+TABLE\s`)

// parser is a private in-memory DuckDB that only splits post-load text
// into statements (it never runs one): duckdb-go prepares a text of several
// statements by running all but the last, so the count must be known
// first. It is opened once per process and kept.
var parser struct {
	once sync.Once
	mu   sync.Mutex
	conn mapping.Connection
	err  error
}

// statementCount is the number of SQL statements in text.
func statementCount(text string) (int, error) {
	parser.once.Do(func() {
		var db mapping.Database
		if mapping.Open(":memory:", &db) == mapping.StateError {
			parser.err = errors.New("post-load check: open the SQL parser's in-memory database")
			return
		}
		if mapping.Connect(db, &parser.conn) == mapping.StateError {
			parser.err = errors.New("post-load check: connect to the SQL parser's in-memory database")
		}
	})
	if parser.err != nil {
		return 0, parser.err
	}
	parser.mu.Lock()
	defer parser.mu.Unlock()
	var stmts mapping.ExtractedStatements
	n := mapping.ExtractStatements(parser.conn, text, &stmts)
	defer mapping.DestroyExtracted(&stmts)
	if n == 0 {
		if msg := mapping.ExtractStatementsError(stmts); msg != "" {
			return 0, errors.New(strings.TrimSpace(msg))
		}
	}
	return int(n), nil
}
