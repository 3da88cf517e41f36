package loader

import (
	"context"
	"time"

	"github.com/windrow/windrow/messages"
)

// Batch is one Parquet file to load, as the warehouse sees it.
type Batch struct {
	ID            string // batch id, the ledger key
	Policy        string
	PolicyVersion uint64
	Table         string // target table, optionally "schema.table"
	Columns       []messages.Column
	File          string // local absolute path of the Parquet file
	WindowStart   time.Time
	WindowEnd     time.Time
	Revision      int
	Part          int
	Rows          int64 // rows the file holds (all files for a whole-window load); 0 means unknown (not checked)

	// Files, for a whole-window load (modes replace and merge), are every
	// batch file of the window run, loaded in one transaction; File is the
	// first of them. ID is then messages.WindowLoadID.
	Files []string
	// Mode is "append" (default when empty), "replace" or "merge".
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

// AllFiles returns Files, or File alone.
func (b Batch) AllFiles() []string {
	if len(b.Files) > 0 {
		return b.Files
	}
	return []string{b.File}
}

// Warehouse loads batches. Implementations must be safe for concurrent use.
type Warehouse interface {
	// Load creates the table if missing (policy columns + lineage columns
	// _source_seq BIGINT, _window_start TIMESTAMPTZ, _window_end TIMESTAMPTZ,
	// _batch_id VARCHAR), then in ONE transaction: if the batch id is in the
	// ledger, return duplicate=true and load nothing; else insert the file's
	// rows with the lineage values and insert the ledger row; commit.
	//
	// rows is the number of rows inserted, or for a duplicate the number the
	// ledger recorded when the batch was loaded. Errors that may go away on
	// their own wrap ErrTransient.
	Load(ctx context.Context, b Batch) (rows int64, duplicate bool, err error)
	Close() error
}

// FileResolver maps an object store key to a local file path.
// *local.Store (adapters/objstore/local) satisfies it.
type FileResolver interface {
	Path(key string) (string, error)
}
