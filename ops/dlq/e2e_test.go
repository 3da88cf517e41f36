package dlq_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/dlq"
	"github.com/windrow/windrow/ops/inspect"
)

// e2ePolicy: hourly windows that close by event time only (the idle rule
// would close them all at once), dead letters for bad events.
const e2ePolicy = testkit.OrdersPolicy

// TestRedrivenEventsLoadOnce runs collector, compactor and loader: events
// dead-lettered for a wrong type are redriven with fixes while their window
// is open, the redrive is repeated, and the window's rows in DuckDB hold
// each fixed event exactly once.
func TestRedrivenEventsLoadOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), Embedded: true, NATSPort: -1, Instance: "t",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.ApplyPolicy(ctx, "orders.yaml", []byte(e2ePolicy))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	h0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	ev := func(id string, at time.Time, n string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"n":%s,"at":%q}`, id, n, at.Format(time.RFC3339))
	}
	publish := func(events ...[]byte) {
		t.Helper()
		for _, e := range events {
			if _, err := s.JS.Publish(ctx, "orders.eu", e); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Window 00h: two events. Window 01h: one good, three with a wrong
	// type, and one at 01:30 that moves the watermark to 01:29 (00h closes).
	publish(ev("a1", h0.Add(5*time.Minute), "1"), ev("a2", h0.Add(10*time.Minute), "2"),
		ev("b1", h0.Add(65*time.Minute), "3"),
		ev("bad1", h0.Add(70*time.Minute), `"4"`), ev("bad2", h0.Add(71*time.Minute), `"5"`), ev("bad3", h0.Add(72*time.Minute), `"6"`),
		ev("b2", h0.Add(90*time.Minute), "7"))
	w0, w1 := messages.WindowID(h0), messages.WindowID(h0.Add(time.Hour))
	waitStatus := func(window string, want messages.WindowStatus) {
		t.Helper()
		testnats.WaitForNil(t, 30*time.Second, func() error {
			st, _, err := s.States.Get(ctx, p.Name, window)
			if err != nil {
				return err
			}
			if st.Status != want {
				return fmt.Errorf("window %s is %s, want %s", window, st.Status, want)
			}
			return nil
		})
	}
	waitStatus(w0, messages.StatusLoaded)

	var fixes strings.Builder
	var bad []*dlq.Entry
	testnats.WaitForNil(t, 10*time.Second, func() error {
		bad = bad[:0]
		err := dlq.Entries(ctx, s.JS, dlq.Filter{Policy: p.Name, Reason: messages.ReasonWrongType}, true, func(e *dlq.Entry) error {
			bad = append(bad, e)
			return nil
		})
		if err == nil && len(bad) != 3 {
			err = fmt.Errorf("%d wrong_type dead letters, want 3", len(bad))
		}
		return err
	})
	for _, e := range bad {
		fmt.Fprintf(&fixes, "{\"dlq_seq\": %d, \"event\": %s}\n", e.Seq, strings.Replace(strings.Replace(string(e.Data), `"n":"`, `"n":`, 1), `","at"`, `,"at"`, 1))
	}
	fix, err := dlq.ReadFixes(strings.NewReader(fixes.String()))
	if err != nil {
		t.Fatal(err)
	}
	others, err := s.Policies.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := dlq.Request{Policy: p, Others: others, Reason: messages.ReasonWrongType, Fixes: fix}
	for run := range 2 {
		rep, err := dlq.Redrive(ctx, s.JS, req)
		if err != nil {
			t.Fatalf("redrive %d: %v", run, err)
		}
		want := map[int]dlq.Outcome{0: dlq.OutcomeSent, 1: dlq.OutcomeAlreadyRedriven}[run]
		if n := rep.Count(want); n != 3 {
			t.Fatalf("redrive %d: %d %q, want 3: %+v", run, n, want, rep.Items)
		}
	}
	// An event at 03:00 moves the watermark past 02:00: window 01h closes.
	publish(ev("c1", h0.Add(3*time.Hour), "8"))
	waitStatus(w1, messages.StatusLoaded)

	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT id, count(*), sum(n) FROM orders WHERE _window_start = ? GROUP BY id ORDER BY id`, h0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		var n, sum int64
		if err := rows.Scan(&id, &n, &sum); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s×%d=%d", id, n, sum))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	release()
	if want := "b1×1=3 b2×1=7 bad1×1=4 bad2×1=5 bad3×1=6"; strings.Join(got, " ") != want {
		t.Errorf("window %s rows: %s, want %s", w1, strings.Join(got, " "), want)
	}
	if sum, err := dlq.List(ctx, s.JS, dlq.Filter{Policy: p.Name}); err != nil || len(sum.Groups) != 0 || sum.Redriven[p.Name] != 3 {
		t.Errorf("dlq after the redrive: %+v, %v; want empty, 3 redriven", sum, err)
	}
	// Reconciliation counts each redriven original once: nothing is flagged.
	r, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Redriven != 3 {
		t.Errorf("reconciliation after the redrive: %s; problems %v", r.Summary(), r.Problems)
	}
}
