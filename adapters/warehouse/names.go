package warehouse

import (
	"fmt"
	"regexp"
	"strings"
)

// LedgerTable is the ledger's table name; a policy's table may not use it.
const LedgerTable = "_windrow_ledger"

// IdentPattern is what every table, schema and column name must match.
const IdentPattern = `^[a-z_][a-z0-9_]{0,62}$`

var identRE = regexp.MustCompile(IdentPattern)

// QuoteIdent checks name against IdentPattern and returns it double-quoted;
// an error wraps ErrInvalidIdentifier.
func QuoteIdent(name string) (string, error) {
	if !identRE.MatchString(name) {
		return "", fmt.Errorf("%w: %q, want %s", ErrInvalidIdentifier, name, IdentPattern)
	}
	return `"` + name + `"`, nil
}

// Table is a checked table name: Name, in Schema when that is not empty.
type Table struct {
	Schema, Name string
}

// ParseTable checks a Batch.Table, "table" or "schema.table": both parts
// match IdentPattern and the table is not the ledger. Errors wrap
// ErrInvalidIdentifier.
func ParseTable(s string) (Table, error) {
	parts := strings.Split(s, ".")
	var t Table
	switch len(parts) {
	case 1:
		t.Name = parts[0]
	case 2:
		t.Schema, t.Name = parts[0], parts[1]
		if _, err := QuoteIdent(t.Schema); err != nil {
			return t, fmt.Errorf("table %q: schema: %w", s, err)
		}
	default:
		return t, fmt.Errorf("%w: table %q, want \"table\" or \"schema.table\"", ErrInvalidIdentifier, s)
	}
	if _, err := QuoteIdent(t.Name); err != nil {
		return t, fmt.Errorf("table %q: %w", s, err)
	}
	if t.Name == LedgerTable {
		return t, fmt.Errorf("%w: table %q is reserved for the ledger", ErrInvalidIdentifier, s)
	}
	return t, nil
}

// ReservedPrefix starts the names of windrow's own tables (the ledger).
const ReservedPrefix = "_windrow"

// CheckPostLoad refuses a post-load statement that names windrow's own
// tables: any mention of ReservedPrefix, in any case, also in a string or
// a comment (a statement has no business there; the ledger is what makes
// loads exactly-once). The error wraps ErrPostLoadRefused. windows.Policy
// validation refuses the same statements when a policy is applied.
func CheckPostLoad(stmt string) error {
	if strings.Contains(strings.ToLower(stmt), ReservedPrefix) {
		return fmt.Errorf("%w: it names %s…, windrow's own tables (the load ledger %s)", ErrPostLoadRefused, ReservedPrefix, LedgerTable)
	}
	return nil
}
