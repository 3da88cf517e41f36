package duckdbwh

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	"github.com/windrow/windrow/messages"
)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ledgerTable is the ledger's name; policies may not use it.
const ledgerTable = "_windrow_ledger"

// Lineage columns, appended to every table.
var lineage = []column{
	{name: "_source_seq", sqlType: "BIGINT"},
	{name: "_window_start", sqlType: "TIMESTAMPTZ"},
	{name: "_window_end", sqlType: "TIMESTAMPTZ"},
	{name: "_batch_id", sqlType: "VARCHAR"},
}

// sqlTypes maps messages.Column.Type to DuckDB types.
var sqlTypes = map[string]string{
	"string":    "VARCHAR",
	"int64":     "BIGINT",
	"float64":   "DOUBLE",
	"bool":      "BOOLEAN",
	"timestamp": "TIMESTAMPTZ",
	"date":      "DATE",
}

// describedTypes maps our DDL types to the names information_schema reports.
var describedTypes = map[string]string{
	"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE",
}

type column struct {
	name     string
	sqlType  string
	required bool
}

// quoteIdent checks name and returns it double-quoted.
func quoteIdent(name string) (string, error) {
	if !identRE.MatchString(name) {
		return "", fmt.Errorf("%w: %q, want ^[a-z_][a-z0-9_]{0,62}$", ErrInvalidIdentifier, name)
	}
	return `"` + name + `"`, nil
}

// tableName is a checked "schema.table" or "table".
type tableName struct {
	schema, table string // schema empty: the current schema
}

func parseTable(s string) (tableName, error) {
	parts := strings.Split(s, ".")
	var t tableName
	switch len(parts) {
	case 1:
		t.table = parts[0]
	case 2:
		t.schema, t.table = parts[0], parts[1]
		if _, err := quoteIdent(t.schema); err != nil {
			return t, fmt.Errorf("table %q: schema: %w", s, err)
		}
	default:
		return t, fmt.Errorf("%w: table %q, want \"table\" or \"schema.table\"", ErrInvalidIdentifier, s)
	}
	if _, err := quoteIdent(t.table); err != nil {
		return t, fmt.Errorf("table %q: %w", s, err)
	}
	if t.table == ledgerTable {
		return t, fmt.Errorf("%w: table %q is reserved for the ledger", ErrInvalidIdentifier, s)
	}
	return t, nil
}

// sql is the quoted, qualified name (both parts are checked by parseTable).
func (t tableName) sql() string {
	if t.schema == "" {
		return `"` + t.table + `"`
	}
	return `"` + t.schema + `"."` + t.table + `"`
}

func (t tableName) String() string {
	if t.schema == "" {
		return t.table
	}
	return t.schema + "." + t.table
}

// batchColumns checks a batch's policy columns and maps their types.
func batchColumns(cols []messages.Column) ([]column, error) {
	if len(cols) == 0 {
		return nil, fmt.Errorf("%w: no columns", ErrSchemaMismatch)
	}
	seen := map[string]bool{}
	for _, l := range lineage {
		seen[l.name] = true
	}
	out := make([]column, 0, len(cols))
	for _, c := range cols {
		if _, err := quoteIdent(c.Name); err != nil {
			return nil, fmt.Errorf("column: %w", err)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("%w: column %q is repeated or reserved for lineage", ErrInvalidIdentifier, c.Name)
		}
		seen[c.Name] = true
		t, ok := sqlTypes[c.Type]
		if !ok {
			return nil, fmt.Errorf("%w: column %q has type %q, want string, int64, float64, bool, timestamp or date", ErrSchemaMismatch, c.Name, c.Type)
		}
		out = append(out, column{name: c.Name, sqlType: t, required: c.Required})
	}
	return out, nil
}

func columnDDL(c column) string {
	s := `"` + c.name + `" ` + c.sqlType
	if c.required {
		s += " NOT NULL"
	}
	return s
}

type existingColumn struct {
	dataType string
	nullable bool
}

// ensureTable creates t or adds the batch's missing nullable columns to it;
// any other difference is an error wrapping ErrSchemaMismatch.
func ensureTable(ctx context.Context, tx *sql.Tx, t tableName, cols []column) error {
	if t.schema != "" {
		if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+t.schema+`"`); err != nil {
			return fmt.Errorf("create schema %s: %w", t.schema, err)
		}
	}
	have, order, err := tableColumns(ctx, tx, t)
	if err != nil {
		return err
	}
	all := append(append([]column(nil), cols...), lineage...)
	if len(have) == 0 {
		defs := make([]string, len(all))
		for i, c := range all {
			defs[i] = columnDDL(c)
		}
		if _, err := tx.ExecContext(ctx, "CREATE TABLE "+t.sql()+" ("+strings.Join(defs, ", ")+")"); err != nil {
			return fmt.Errorf("create table %s: %w", t, err)
		}
		return nil
	}
	want := map[string]bool{}
	for _, c := range all {
		want[c.name] = true
		h, ok := have[c.name]
		if !ok {
			if c.required || isLineage(c.name) {
				return fmt.Errorf("%w: table %s lacks column %q, which is NOT NULL or lineage (only nullable columns are added)", ErrSchemaMismatch, t, c.name)
			}
			if _, err := tx.ExecContext(ctx, "ALTER TABLE "+t.sql()+" ADD COLUMN "+columnDDL(c)); err != nil {
				return fmt.Errorf("add column %s.%s: %w", t, c.name, err)
			}
			continue
		}
		wantType := c.sqlType
		if d, ok := describedTypes[wantType]; ok {
			wantType = d
		}
		if h.dataType != wantType {
			return fmt.Errorf("%w: %s.%s is %s, batch has %s", ErrSchemaMismatch, t, c.name, h.dataType, wantType)
		}
		if !h.nullable && !c.required {
			return fmt.Errorf("%w: %s.%s is NOT NULL, batch column is nullable", ErrSchemaMismatch, t, c.name)
		}
	}
	for _, name := range order {
		if !want[name] && !have[name].nullable {
			return fmt.Errorf("%w: %s.%s is NOT NULL and the batch has no such column", ErrSchemaMismatch, t, name)
		}
	}
	return nil
}

func isLineage(name string) bool {
	for _, l := range lineage {
		if l.name == name {
			return true
		}
	}
	return false
}

// tableColumns returns t's columns, none if t does not exist.
func tableColumns(ctx context.Context, tx *sql.Tx, t tableName) (map[string]existingColumn, []string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name, data_type, is_nullable FROM information_schema.columns
		WHERE table_catalog = current_database() AND table_schema = coalesce(?, current_schema()) AND table_name = ?
		ORDER BY ordinal_position`, nullIfEmpty(t.schema), t.table)
	if err != nil {
		return nil, nil, fmt.Errorf("columns of %s: %w", t, err)
	}
	defer rows.Close()
	have := map[string]existingColumn{}
	var order []string
	for rows.Next() {
		var name, typ, nullable string
		if err := rows.Scan(&name, &typ, &nullable); err != nil {
			return nil, nil, fmt.Errorf("columns of %s: %w", t, err)
		}
		have[name] = existingColumn{dataType: typ, nullable: nullable == "YES"}
		order = append(order, name)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("columns of %s: %w", t, err)
	}
	return have, order, nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
