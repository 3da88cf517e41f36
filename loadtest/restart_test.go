package loadtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// TestRestartMidway stops the whole process (services, NATS, warehouse) at
// several points of a run and starts it again on the same data directory;
// the final table must be exactly what a run without stops loads.
func TestRestartMidway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	day := time.Date(2026, 4, 6, 0, 0, 0, 0, time.UTC)
	events := Sales{Seed: 3, Events: 120_000, Start: day, Span: 6 * time.Hour, Jitter: 4 * time.Minute, MalformedEvery: 5000}.Generate()

	s := openStack(t, ctx, dir)
	p := applyPolicy(t, ctx, s, salesPolicy)
	if _, err := s.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "E2E", Subjects: []string{"events.>"}}); err != nil {
		t.Fatal(err)
	}
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "restart"); err != nil {
		t.Fatal(err)
	}
	assign, _ := windows.NewAssigner(p.Window)
	want := expectOf(events, assign)

	// Each stop point is a condition on the window states; the run is
	// stopped as soon as it holds.
	stops := []struct {
		name string
		at   func(ws []*messages.WindowState) bool
	}{
		{"while collecting", func(ws []*messages.WindowState) bool { return len(ws) >= 1 }},
		{"after the first seal", func(ws []*messages.WindowState) bool { return count(ws, messages.StatusOpen) < len(ws) }},
		{"with windows loaded and some not", func(ws []*messages.WindowState) bool {
			n := count(ws, messages.StatusLoaded)
			return n >= 1 && n < 6
		}},
	}
	for i, stop := range stops {
		runCtx, stopRun := context.WithCancel(ctx)
		runErr := make(chan error, 1)
		go func() { runErr <- s.Run(runCtx) }()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			ws, err := inspect.Windows(ctx, s.States, p.Name)
			if err != nil {
				t.Fatal(err)
			}
			if stop.at(ws) {
				t.Logf("stop %d %s: %d windows, %d loaded", i+1, stop.name, len(ws), count(ws, messages.StatusLoaded))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stop %d (%s) never reached", i+1, stop.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
		stopRun()
		if err := <-runErr; err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close %d: %v", i+1, err)
		}
		s = openStack(t, ctx, dir) // same data directory: NATS store, objects, DuckDB file
	}
	defer s.Close()
	runCtx, stopRun := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	defer func() {
		stopRun()
		<-runErr
	}()
	waitLoaded(t, ctx, s, p.Name, 6, 3*time.Minute)
	waitDrained(t, ctx, s, p, time.Minute)
	checkTable(t, ctx, s, "sales", "quantity", "amount", want)
	dl, err := inspect.CountDeadLetters(ctx, s.JS, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	var wantDLQ int64
	for _, n := range want.dlq {
		wantDLQ += n
	}
	if dl.Total != wantDLQ {
		t.Errorf("%d dead letters, want %d (%v)", dl.Total, wantDLQ, dl.ByReason)
	}
	r, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Published != int64(len(events)) {
		t.Errorf("reconciliation after restarts: %s; problems %v", r.Summary(), r.Problems)
	}
}

func count(ws []*messages.WindowState, status messages.WindowStatus) int {
	n := 0
	for _, w := range ws {
		if w.Status == status {
			n++
		}
	}
	return n
}
