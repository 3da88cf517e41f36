package duckdbwh

import (
	"fmt"

	"github.com/windrow/windrow/adapters/warehouse"
)

// ErrUnavailable is wrapped when the database file cannot be opened because
// another process holds it. It wraps warehouse.ErrTransient.
var ErrUnavailable = fmt.Errorf("warehouse unavailable: %w", warehouse.ErrTransient)

// The contract's errors (package warehouse), under the names this package
// has always used.
var (
	// ErrInvalidIdentifier is warehouse.ErrInvalidIdentifier.
	ErrInvalidIdentifier = warehouse.ErrInvalidIdentifier
	// ErrSchemaMismatch is warehouse.ErrSchemaMismatch.
	ErrSchemaMismatch = warehouse.ErrSchemaMismatch
	// ErrRowCount is warehouse.ErrRowCount.
	ErrRowCount = warehouse.ErrRowCount
	// ErrClosed is warehouse.ErrClosed.
	ErrClosed = warehouse.ErrClosed
	// ErrPostLoad is warehouse.ErrPostLoad.
	ErrPostLoad = warehouse.ErrPostLoad
)
