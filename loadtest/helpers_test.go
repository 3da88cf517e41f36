package loadtest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/loads"
)

// testLogger sends service logs to the test log, shown only on failure or -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// runRoles runs the stack's roles until the returned stop is called (defer
// it after s.Close's defer, so that the roles stop first); a run error fails
// the test.
func runRoles(t *testing.T, ctx context.Context, s *stack.Stack) (stop func()) {
	t.Helper()
	runCtx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	return func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}

// batchesOf reads the batches of a compacted window run from its manifest.
func batchesOf(tb testing.TB, store objstore.Store, st *messages.WindowState) []messages.BatchRef {
	tb.Helper()
	m, err := loads.Manifest(context.Background(), store, st)
	if err != nil {
		tb.Fatal(err)
	}
	return m.Batches
}
