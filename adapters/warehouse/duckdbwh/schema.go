package duckdbwh

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/messages"
)

// ledgerTable is the ledger's name; policies may not use it.
const ledgerTable = warehouse.LedgerTable

// Lineage columns, appended to every table.
var lineage = []column{
	{name: "_source_seq", sqlType: "BIGINT"},
	{name: "_window_start", sqlType: "TIMESTAMPTZ"},
	{name: "_window_end", sqlType: "TIMESTAMPTZ"},
	{name: "_batch_id", sqlType: "VARCHAR"},
}

// sqlTypes maps the scalar messages.Column.Type values to DuckDB types;
// sqlType maps the others.
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
	policy   string // the batch's column type as the policy wrote it; "" for lineage
}

// maxTypeDepth bounds the nesting of object and list types (the policy
// allows 4 levels; this only guards the parser).
const maxTypeDepth = 16

// sqlType maps a column type of a batch (records.ColumnType) to DuckDB's:
// a scalar type, "decimal(P,S)" → DECIMAL(P,S), "object<a:T,...>" →
// STRUCT("a" T, ...) with members in that order, "list<T>" → T[].
func sqlType(t string) (string, error) {
	s, rest, err := parseType(t, 0)
	if err != nil {
		return "", err
	}
	if rest != "" {
		return "", fmt.Errorf("unexpected %q after the type", rest)
	}
	return s, nil
}

// parseType reads one type at the start of t and returns its DuckDB type
// and what follows it.
func parseType(t string, depth int) (string, string, error) {
	if depth > maxTypeDepth {
		return "", "", fmt.Errorf("types nest more than %d levels", maxTypeDepth)
	}
	end := strings.IndexAny(t, "<>,")
	name := t
	if end >= 0 {
		name = t[:end]
	}
	switch {
	case strings.HasPrefix(t, "decimal("):
		close := strings.IndexByte(t, ')')
		if close < 0 {
			return "", "", fmt.Errorf("%q: want decimal(P,S)", t)
		}
		var p, sc int
		if n, err := fmt.Sscanf(t[:close+1], "decimal(%d,%d)", &p, &sc); n != 2 || err != nil || p < 1 || p > 38 || sc < 0 || sc > p {
			return "", "", fmt.Errorf("%q: want decimal(P,S) with P 1..38 and S 0..P", t[:close+1])
		}
		return fmt.Sprintf("DECIMAL(%d,%d)", p, sc), t[close+1:], nil
	case strings.HasPrefix(t, "list<"):
		elem, rest, err := parseType(t[len("list<"):], depth+1)
		if err != nil {
			return "", "", err
		}
		if !strings.HasPrefix(rest, ">") {
			return "", "", fmt.Errorf("list type: want > after the element type, got %q", rest)
		}
		return elem + "[]", rest[1:], nil
	case strings.HasPrefix(t, "object<"):
		rest := t[len("object<"):]
		var members []string
		for {
			colon := strings.IndexByte(rest, ':')
			if colon < 0 {
				return "", "", fmt.Errorf("object type: want name:type, got %q", rest)
			}
			q, err := quoteIdent(rest[:colon])
			if err != nil {
				return "", "", fmt.Errorf("object member: %w", err)
			}
			mt, after, err := parseType(rest[colon+1:], depth+1)
			if err != nil {
				return "", "", err
			}
			members = append(members, q+" "+mt)
			switch {
			case strings.HasPrefix(after, ","):
				rest = after[1:]
				continue
			case strings.HasPrefix(after, ">"):
				return "STRUCT(" + strings.Join(members, ", ") + ")", after[1:], nil
			}
			return "", "", fmt.Errorf("object type: want , or > after a member, got %q", after)
		}
	}
	if s, ok := sqlTypes[name]; ok {
		return s, t[len(name):], nil
	}
	return "", "", fmt.Errorf("%q is not a column type (valid: string, int64, float64, bool, timestamp, date, decimal(P,S), object<name:type,...>, list<type>)", name)
}

// quoteIdent checks name and returns it double-quoted (warehouse.QuoteIdent).
func quoteIdent(name string) (string, error) { return warehouse.QuoteIdent(name) }

// tableName is a checked "schema.table" or "table".
type tableName struct {
	schema, table string // schema empty: the current schema
}

// parseTable checks a batch's table (warehouse.ParseTable).
func parseTable(s string) (tableName, error) {
	t, err := warehouse.ParseTable(s)
	return tableName{schema: t.Schema, table: t.Name}, err
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
		t, err := sqlType(c.Type)
		if err != nil {
			return nil, fmt.Errorf("%w: column %q has type %q: %w", ErrSchemaMismatch, c.Name, c.Type, err)
		}
		out = append(out, column{name: c.Name, sqlType: t, required: c.Required, policy: c.Type})
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
				what := "NOT NULL"
				if isLineage(c.name) {
					what = "a lineage column"
				}
				return fmt.Errorf("%w: table %s has no column %q, and the batch's %s column %s cannot be added to an existing table (%s)",
					ErrSchemaMismatch, t, c.name, what, batchType(c), evolutionHint)
			}
			if _, err := tx.ExecContext(ctx, "ALTER TABLE "+t.sql()+" ADD COLUMN "+columnDDL(c)); err != nil {
				return fmt.Errorf("add column %s.%s: %w", t, c.name, err)
			}
			continue
		}
		wantType, err := describeType(ctx, tx, c.sqlType)
		if err != nil {
			return fmt.Errorf("column %s.%s: %w", t, c.name, err)
		}
		if h.dataType != wantType {
			return fmt.Errorf("%w: table %s column %q is %s in the table, but the batch has %s (%s)",
				ErrSchemaMismatch, t, c.name, h.dataType, batchType(c), evolutionHint)
		}
		if !h.nullable && !c.required {
			return fmt.Errorf("%w: table %s column %q is %s NOT NULL in the table, but the batch's column is nullable (%s)",
				ErrSchemaMismatch, t, c.name, h.dataType, evolutionHint)
		}
	}
	for _, name := range order {
		if !want[name] && !have[name].nullable {
			return fmt.Errorf("%w: table %s column %q is %s NOT NULL in the table, and the batch has no such column (%s)",
				ErrSchemaMismatch, t, name, have[name].dataType, evolutionHint)
		}
	}
	return nil
}

// evolutionHint ends every refused schema change.
const evolutionHint = "only new nullable columns can be added; use a new table or migrate by hand"

// batchType names a batch column's type for an error: DuckDB's, and the
// policy's when it is spelt differently.
func batchType(c column) string {
	s := c.sqlType
	if c.required {
		s += " NOT NULL"
	}
	if c.policy != "" && !strings.EqualFold(c.policy, c.sqlType) {
		s += " (policy type " + c.policy + ")"
	}
	return s
}

// describeType returns a DDL type as information_schema.columns writes it
// (TIMESTAMPTZ is "TIMESTAMP WITH TIME ZONE", STRUCT members unquoted).
func describeType(ctx context.Context, tx *sql.Tx, ddl string) (string, error) {
	if d, ok := describedTypes[ddl]; ok {
		return d, nil
	}
	if !strings.ContainsAny(ddl, "([") {
		return ddl, nil
	}
	var s string
	if err := tx.QueryRowContext(ctx, "SELECT typeof(CAST(NULL AS "+ddl+"))").Scan(&s); err != nil {
		return "", fmt.Errorf("describe type %s: %w", ddl, err)
	}
	return s, nil
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
