package duckdbwh

import (
	"errors"
	"fmt"

	"github.com/windrow/windrow/services/loader"
)

// ErrUnavailable is wrapped when the database file cannot be opened because
// another process holds it. It wraps loader.ErrTransient.
var ErrUnavailable = fmt.Errorf("warehouse unavailable: %w", loader.ErrTransient)

// ErrInvalidIdentifier is wrapped when a table, schema or column name is not
// a plain lower-case SQL identifier.
var ErrInvalidIdentifier = errors.New("invalid identifier")

// ErrSchemaMismatch is wrapped when an existing table cannot take a batch.
var ErrSchemaMismatch = errors.New("table does not match batch")

// ErrRowCount is wrapped when the rows inserted differ from the batch's row count.
var ErrRowCount = errors.New("row count mismatch")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("warehouse closed")

// ErrPostLoad is wrapped when a policy's post-load SQL fails; the whole
// load is rolled back.
var ErrPostLoad = errors.New("post-load SQL failed")
