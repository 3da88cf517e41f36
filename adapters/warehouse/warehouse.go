package warehouse

import (
	"context"
	"time"

	"github.com/windrow/windrow/messages"
)

// Load modes of Batch.Mode.
const (
	ModeAppend  = "append"
	ModeReplace = "replace"
	ModeMerge   = "merge"
)

// Batch is one load: Parquet objects of one window, named by their object
// store keys, and what the warehouse needs to load them.
type Batch struct {
	ID            string // the ledger key: a batch id, or messages.WindowLoadID for a whole-window load
	Policy        string
	PolicyVersion uint64
	Table         string // target table, optionally "schema.table"
	Columns       []messages.Column
	// Objects are the object store keys of the Parquet files, loaded in one
	// transaction: one batch file (mode append), or every batch file of the
	// window run (a whole-window load, modes replace and merge). Each file
	// holds the policy's columns and _source_seq, as the compactor writes
	// them. At least one is required.
	Objects     []string
	WindowStart time.Time
	WindowEnd   time.Time
	Revision    int
	Part        int
	// Rows the objects hold in total; 0 means unknown (not checked).
	Rows int64
	// Mode is ModeAppend (default when empty), ModeReplace or ModeMerge.
	Mode string
	// MergeKey and TimeColumn: mode merge (see messages.LoadCommand).
	MergeKey   []string
	TimeColumn string
	// PostLoad statements run after the rows, in the same transaction, with
	// the named parameters $window_start, $window_end, $policy, $revision.
	PostLoad []string
	// Replay > 0 (`windrow replay`): a ledger entry of this id from an
	// earlier run (a lower replay number) does not make the batch a
	// duplicate; what that load put in the table is replaced.
	Replay int
}

// Warehouse loads batches. See the package documentation for the contract.
// Implementations must be safe for concurrent use.
type Warehouse interface {
	// Load loads b in one transaction with its ledger row. rows is the
	// number of rows inserted, or for a duplicate the number the ledger
	// recorded when the batch was loaded.
	Load(ctx context.Context, b Batch) (rows int64, duplicate bool, err error)
	// Close releases the warehouse; later loads fail with ErrClosed.
	Close() error
}
