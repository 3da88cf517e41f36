package compactor

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/loads"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
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

// sealAndCompact seals win with a watermark past it, compacts it, and
// returns its state after the compaction.
func sealAndCompact(tb testing.TB, c *Service, env *testkit.Env, win windows.Window) *messages.WindowState {
	tb.Helper()
	ctx := context.Background()
	st, err := c.seal(ctx, win, win.End.Add(time.Minute))
	if err != nil || st == nil {
		tb.Fatalf("seal: %v %v", st, err)
	}
	if err := c.compact(ctx, st); err != nil {
		tb.Fatal(err)
	}
	done, _, err := env.States.Get(ctx, c.cfg.Policy.Name, win.ID())
	if err != nil {
		tb.Fatal(err)
	}
	return done
}
