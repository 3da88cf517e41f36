package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/messages"
)

// ledgerTable is the ledger's name; policies may not use it.
const ledgerTable = warehouse.LedgerTable

// Lineage columns, appended to every table.
var lineage = []column{
	{name: "_source_seq", sqlType: "bigint"},
	{name: "_window_start", sqlType: "timestamp with time zone"},
	{name: "_window_end", sqlType: "timestamp with time zone"},
	{name: "_batch_id", sqlType: "text"},
}

// scalarTypes maps the scalar messages.Column.Type values to PostgreSQL
// types, spelt as format_type() writes them, so an existing column compares
// by string.
var scalarTypes = map[string]string{
	"string":    "text",
	"int64":     "bigint",
	"float64":   "double precision",
	"bool":      "boolean",
	"timestamp": "timestamp with time zone",
	"date":      "date",
}

// column is one column of a batch: its name, PostgreSQL type and its type
// as the policy wrote it.
type column struct {
	name     string
	sqlType  string
	required bool
	policy   string // "" for lineage
	t        *colType
}

// colType is a parsed messages.Column.Type.
type colType struct {
	kind        string // a scalar type name, "decimal", "object" or "list"
	prec, scale int    // decimal
	members     []member
	elem        *colType // list
	sqlType     string   // PostgreSQL type of a column of this type
	elemArray   bool     // list stored as a PostgreSQL array (a list of scalars)
	spelled     string   // the type as messages.Column.Type spells it
}

type member struct {
	name string
	t    *colType
}

// maxTypeDepth bounds the nesting of object and list types (the policy
// allows 4 levels; this only guards the parser).
const maxTypeDepth = 16

// parseColType parses a column type of a batch (records.ColumnType): a
// scalar type, "decimal(P,S)", "object<a:T,...>" or "list<T>".
func parseColType(s string) (*colType, error) {
	t, rest, err := parseType(s, 0)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, fmt.Errorf("unexpected %q after the type", rest)
	}
	return t, nil
}

func parseType(s string, depth int) (*colType, string, error) {
	if depth > maxTypeDepth {
		return nil, "", fmt.Errorf("types nest more than %d levels", maxTypeDepth)
	}
	switch {
	case strings.HasPrefix(s, "decimal("):
		end := strings.IndexByte(s, ')')
		if end < 0 {
			return nil, "", fmt.Errorf("%q: want decimal(P,S)", s)
		}
		var p, sc int
		if n, err := fmt.Sscanf(s[:end+1], "decimal(%d,%d)", &p, &sc); n != 2 || err != nil || p < 1 || p > 38 || sc < 0 || sc > p {
			return nil, "", fmt.Errorf("%q: want decimal(P,S) with P 1..38 and S 0..P", s[:end+1])
		}
		return &colType{kind: "decimal", prec: p, scale: sc, sqlType: fmt.Sprintf("numeric(%d,%d)", p, sc), spelled: s[:end+1]}, s[end+1:], nil
	case strings.HasPrefix(s, "list<"):
		elem, rest, err := parseType(s[len("list<"):], depth+1)
		if err != nil {
			return nil, "", err
		}
		if !strings.HasPrefix(rest, ">") {
			return nil, "", fmt.Errorf("list type: want > after the element type, got %q", rest)
		}
		t := &colType{kind: "list", elem: elem, sqlType: "jsonb", spelled: "list<" + elem.spelled + ">"}
		if elem.kind != "list" && elem.kind != "object" {
			// A list of scalars is an array of the scalar's type; lists of
			// lists (PostgreSQL arrays are rectangular) and of objects are
			// jsonb.
			t.sqlType, t.elemArray = elem.sqlType+"[]", true
		}
		return t, rest[1:], nil
	case strings.HasPrefix(s, "object<"):
		rest := s[len("object<"):]
		t := &colType{kind: "object", sqlType: "jsonb"}
		var spelled []string
		for {
			colon := strings.IndexByte(rest, ':')
			if colon < 0 {
				return nil, "", fmt.Errorf("object type: want name:type, got %q", rest)
			}
			name := rest[:colon]
			if _, err := warehouse.QuoteIdent(name); err != nil {
				return nil, "", fmt.Errorf("object member: %w", err)
			}
			mt, after, err := parseType(rest[colon+1:], depth+1)
			if err != nil {
				return nil, "", err
			}
			t.members = append(t.members, member{name: name, t: mt})
			spelled = append(spelled, name+":"+mt.spelled)
			switch {
			case strings.HasPrefix(after, ","):
				rest = after[1:]
				continue
			case strings.HasPrefix(after, ">"):
				t.spelled = "object<" + strings.Join(spelled, ",") + ">"
				return t, after[1:], nil
			}
			return nil, "", fmt.Errorf("object type: want , or > after a member, got %q", after)
		}
	}
	end := strings.IndexAny(s, "<>,")
	name := s
	if end >= 0 {
		name = s[:end]
	}
	if sql, ok := scalarTypes[name]; ok {
		return &colType{kind: name, sqlType: sql, spelled: name}, s[len(name):], nil
	}
	return nil, "", fmt.Errorf("%q is not a column type (valid: string, int64, float64, bool, timestamp, date, decimal(P,S), object<name:type,...>, list<type>)", name)
}

// quoteIdent checks name and returns it double-quoted (warehouse.QuoteIdent).
func quoteIdent(name string) (string, error) { return warehouse.QuoteIdent(name) }

// tableName is a checked "schema.table" or "table".
type tableName struct {
	schema, table string // schema empty: the first schema of the search path
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

// ident is the name as pgx.CopyFrom takes it.
func (t tableName) ident() pgx.Identifier {
	if t.schema == "" {
		return pgx.Identifier{t.table}
	}
	return pgx.Identifier{t.schema, t.table}
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
		return nil, fmt.Errorf("%w: no columns", warehouse.ErrSchemaMismatch)
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
			return nil, fmt.Errorf("%w: column %q is repeated or reserved for lineage", warehouse.ErrInvalidIdentifier, c.Name)
		}
		seen[c.Name] = true
		t, err := parseColType(c.Type)
		if err != nil {
			if errors.Is(err, warehouse.ErrInvalidIdentifier) {
				return nil, fmt.Errorf("column %q: %w", c.Name, err)
			}
			return nil, fmt.Errorf("%w: column %q has type %q: %w", warehouse.ErrSchemaMismatch, c.Name, c.Type, err)
		}
		out = append(out, column{name: c.Name, sqlType: t.sqlType, required: c.Required, policy: c.Type, t: t})
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

// evolutionHint ends every refused schema change.
const evolutionHint = "only new nullable columns can be added; use a new table or migrate by hand"

// batchType names a batch column's type for an error: PostgreSQL's, and
// the policy's.
func batchType(c column) string {
	s := c.sqlType
	if c.required {
		s += " NOT NULL"
	}
	if c.policy != "" {
		s += " (policy type " + c.policy + ")"
	}
	return s
}

func isLineage(name string) bool {
	for _, l := range lineage {
		if l.name == name {
			return true
		}
	}
	return false
}

// tableColumns returns t's columns, none if t does not exist. An
// unqualified name resolves through the search path, as the load's SQL does.
func tableColumns(ctx context.Context, q querier, t tableName) (map[string]existingColumn, []string, error) {
	rows, err := q.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, t.sql())
	if err != nil {
		return nil, nil, fmt.Errorf("columns of %s: %w", t, classify(err))
	}
	defer rows.Close()
	have := map[string]existingColumn{}
	var order []string
	for rows.Next() {
		var name, typ string
		var nullable bool
		if err := rows.Scan(&name, &typ, &nullable); err != nil {
			return nil, nil, fmt.Errorf("columns of %s: %w", t, classify(err))
		}
		have[name] = existingColumn{dataType: typ, nullable: nullable}
		order = append(order, name)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("columns of %s: %w", t, classify(err))
	}
	return have, order, nil
}

// tableChanges compares the batch's columns with the table's: the DDL that
// creates or evolves the table (none when it fits), or an error wrapping
// ErrSchemaMismatch.
func tableChanges(t tableName, cols []column, have map[string]existingColumn, order []string) ([]string, error) {
	all := append(append([]column(nil), cols...), lineage...)
	if len(have) == 0 {
		defs := make([]string, len(all))
		for i, c := range all {
			defs[i] = columnDDL(c)
		}
		return []string{"CREATE TABLE " + t.sql() + " (" + strings.Join(defs, ", ") + ")"}, nil
	}
	var ddl []string
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
				return nil, fmt.Errorf("%w: table %s has no column %q, and the batch's %s column %s cannot be added to an existing table (%s)",
					warehouse.ErrSchemaMismatch, t, c.name, what, batchType(c), evolutionHint)
			}
			ddl = append(ddl, "ALTER TABLE "+t.sql()+" ADD COLUMN IF NOT EXISTS "+columnDDL(c))
			continue
		}
		if h.dataType != c.sqlType {
			return nil, fmt.Errorf("%w: table %s column %q is %s in the table, but the batch has %s (%s)",
				warehouse.ErrSchemaMismatch, t, c.name, h.dataType, batchType(c), evolutionHint)
		}
		if !h.nullable && !c.required {
			return nil, fmt.Errorf("%w: table %s column %q is %s NOT NULL in the table, but the batch's column is nullable (%s)",
				warehouse.ErrSchemaMismatch, t, c.name, h.dataType, evolutionHint)
		}
	}
	for _, name := range order {
		if !want[name] && !have[name].nullable {
			return nil, fmt.Errorf("%w: table %s column %q is %s NOT NULL in the table, and the batch has no such column (%s)",
				warehouse.ErrSchemaMismatch, t, name, have[name].dataType, evolutionHint)
		}
	}
	return ddl, nil
}

// mergeIndex is the name of the unique index on a table's merge key: a
// hash of the table and the key columns, so it fits in 63 bytes.
func mergeIndex(t tableName, keys []string) string {
	h := sha256.Sum256([]byte(t.String() + "\x00" + strings.Join(keys, "\x00")))
	return "_windrow_merge_" + hex.EncodeToString(h[:8])
}

// ledgerDDL creates the ledger: the same columns as duckdbwh's.
var ledgerDDL = []string{
	`CREATE TABLE IF NOT EXISTS ` + ledgerTable + ` (
	batch_id text PRIMARY KEY,
	policy text,
	table_name text,
	window_start timestamptz,
	window_end timestamptz,
	revision integer,
	part integer,
	policy_version numeric(20,0),
	rows bigint,
	loaded_at timestamptz,
	replay integer DEFAULT 0
)`,
	`CREATE INDEX IF NOT EXISTS ` + ledgerTable + `_window ON ` + ledgerTable + ` (table_name, window_start, policy)`,
}
