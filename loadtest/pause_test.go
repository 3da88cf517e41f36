package loadtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
)

// TestPausedBackfill: a replay of last year's events whose producer pauses
// for several idle_timeouts in the middle of an hour. The idle rule moves
// the watermark by the length of the pause only, so the hour being replayed
// stays open and the rest of the replay is loaded, not turned late; a flush
// at the end closes the last hour. Every event is loaded once, per window.
func TestPausedBackfill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p := applyPolicy(t, ctx, s, `name: paused
source: {stream: PAUSED, subjects: [paused.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 2m, idle_timeout: 1s, late: dlq}
segment: {max_age: 200ms}
load: {table: paused}
`)
	if _, err := s.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "PAUSED", Subjects: []string{"paused.>"}}); err != nil {
		t.Fatal(err)
	}
	h0 := time.Now().UTC().AddDate(-1, 0, 0).Truncate(time.Hour)
	want := map[string]int64{}
	n := 0
	publish := func(from, to time.Duration) { // one event a minute in [h0+from, h0+to)
		t.Helper()
		for d := from; d < to; d += time.Minute {
			at := h0.Add(d)
			data := fmt.Sprintf(`{"store_id":"s%d","sale_id":"p-%d","quantity":1,"amount":2.5,"sold_at":%q}`, n%5, n, at.Format(time.RFC3339))
			if _, err := s.JS.Publish(ctx, fmt.Sprintf("paused.s%d", n%5), []byte(data)); err != nil {
				t.Fatal(err)
			}
			want[messages.WindowID(at.Truncate(time.Hour))]++
			n++
		}
	}
	defer runRoles(t, ctx, s)()
	publish(0, 90*time.Minute) // up to h0+1h29m: the first hour closes by event time
	waitDrained(t, ctx, s, p, time.Minute)
	// The pause: five idle_timeouts with nothing pending. The old rule moved
	// the watermark to the wall clock here and sealed the second hour.
	time.Sleep(5 * time.Second)
	second, _, err := s.States.Get(ctx, p.Name, messages.WindowID(h0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if second.Status != messages.StatusOpen {
		wm, _, _ := s.Watermarks.Get(ctx, p.Name)
		t.Fatalf("after the pause the hour being replayed is %s (watermark %s), want OPEN", second.Status, wm.Watermark)
	}
	publish(90*time.Minute, 3*time.Hour)
	if err := (&Publisher{JS: s.JS}).Flush(ctx, p.Name); err != nil {
		t.Fatal(err)
	}
	ws := waitLoaded(t, ctx, s, p.Name, len(want), time.Minute)
	for _, w := range ws {
		if w.Rows != want[w.ID()] {
			t.Errorf("window %s: %d rows, want %d", w.ID(), w.Rows, want[w.ID()])
		}
	}
	dl, err := inspect.CountDeadLetters(ctx, s.JS, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if dl.Total != 0 {
		t.Errorf("%d dead letters (%v), want none: the pause turned the replay late", dl.Total, dl.ByReason)
	}
	rec, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() || rec.Rows != int64(n) {
		t.Errorf("reconcile: %s %v; want %d loaded", rec.Summary(), rec.Problems, n)
	}
}
