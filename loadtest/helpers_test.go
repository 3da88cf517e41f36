package loadtest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/windrow/windrow/app/stack"
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
