package collector

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/ops/inspect"
)

// TestCollectorRecordsEventsTheStreamRemovedBeforeItStarted guards issue 12
// item 2: events a source stream with max_msgs pushed out before a
// collector ran stay counted as expired once the collector's consumer
// exists and has moved past them, and a restart does not count them again.
func TestCollectorRecordsEventsTheStreamRemovedBeforeItStarted(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, policySrc)
	ctx := context.Background()
	if _, err := env.JS.CreateStream(ctx, jetstream.StreamConfig{Name: p.Source.Stream, Subjects: p.Source.Subjects, MaxMsgs: 10}); err != nil {
		t.Fatal(err)
	}
	publish(t, env.JS, 0, 30, hour)
	expired := func() int64 {
		t.Helper()
		loss, err := inspect.SourceExpired(ctx, env.JS, p)
		if err != nil {
			t.Fatal(err)
		}
		if !loss.Exact || loss.Removed != 20 {
			t.Errorf("loss %+v; want exact, 20 removed", loss)
		}
		return loss.Expired
	}
	for run := 1; run <= 2; run++ {
		c := startCollector(t, env, p)
		testkit.WaitFor(t, 10*time.Second, "10 rows staged", drained(t, env, p))
		if got := expired(); got != 20 {
			t.Errorf("run %d: expired %d; want 20", run, got)
		}
		if err := c.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
