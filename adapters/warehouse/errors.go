package warehouse

import (
	"errors"
	"fmt"
)

// ErrTransient is wrapped by errors that may go away on their own (a locked
// database file, a lost connection). The loader retries only these; every
// other error is permanent.
var ErrTransient = errors.New("transient failure")

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }

// ErrObjectMissing is wrapped when an object a batch names does not exist.
var ErrObjectMissing = errors.New("batch object missing")

// ErrInvalidIdentifier is wrapped when a table, schema or column name is not
// a plain lower-case SQL identifier, or is reserved (the ledger, a lineage
// column).
var ErrInvalidIdentifier = errors.New("invalid identifier")

// ErrSchemaMismatch is wrapped when an existing table cannot take a batch.
var ErrSchemaMismatch = errors.New("table does not match batch")

// ErrRowCount is wrapped when the rows of a batch differ from Batch.Rows.
var ErrRowCount = errors.New("row count mismatch")

// ErrPostLoad is wrapped when a policy's post-load SQL fails; the whole
// load is rolled back.
var ErrPostLoad = errors.New("post-load SQL failed")

// ErrDiskFull is wrapped when the warehouse's disk is full. It wraps
// ErrTransient: the loader retries with backoff and the window waits,
// instead of failing, until space is freed.
var ErrDiskFull = fmt.Errorf("warehouse disk full: %w", ErrTransient)

// ErrDamaged is wrapped when the warehouse's storage is damaged (a DuckDB
// file that is not one). It is permanent: loading into it would fail
// batch after batch, so it is reported when the warehouse is opened.
var ErrDamaged = errors.New("warehouse damaged")

// ErrClosed is wrapped by Load after Close.
var ErrClosed = errors.New("warehouse closed")

// ErrReadOnly is wrapped by Load of a warehouse opened read-only (for
// windrow query and reconcile).
var ErrReadOnly = errors.New("warehouse opened read-only")

// ErrPostLoadRefused is wrapped (with ErrPostLoad) when a post-load
// statement is refused before it runs: it names windrow's own tables (the
// ledger), or is of a kind post-load may not run (see each warehouse).
var ErrPostLoadRefused = fmt.Errorf("%w: refused", ErrPostLoad)
