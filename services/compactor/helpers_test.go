package compactor

import (
	"context"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/loads"
	"github.com/windrow/windrow/pipeline/records"
)

type parquetRow = parquet.Row

func sortRows(l *records.Layout, rows []parquet.Row) { slices.SortFunc(rows, l.Compare) }

func filesOf(f ...*parquet.File) []*parquet.File { return f }

// batchesOf reads the batches of a compacted window run from its manifest.
func batchesOf(tb testing.TB, env *testkit.Env, st *messages.WindowState) []messages.BatchRef {
	tb.Helper()
	m, err := loads.Manifest(context.Background(), env.Store, st)
	if err != nil {
		tb.Fatal(err)
	}
	return m.Batches
}
