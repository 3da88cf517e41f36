package loadtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
)

// TestFutureEventDoesNotCloseWindows: one event from a producer whose
// clock runs 23 hours ahead (inside the default future_horizon of 24h) is
// staged in its own window but does not move the watermark past the
// present: the current hour's window stays open, and live events go on
// into it. (It used to move the watermark to the next day: the current
// window was sealed before it ended and the next live events were late.)
func TestFutureEventDoesNotCloseWindows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p := applyPolicy(t, ctx, s, `name: clocks
source: {stream: CLOCKS, subjects: [clocks.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 2m, idle_timeout: 1h}
segment: {max_age: 200ms}
load: {table: clocks}
`)
	defer runRoles(t, ctx, s)()
	publish := func(subject string, at time.Time, n int) {
		t.Helper()
		for i := range n {
			data := fmt.Sprintf(`{"store_id":"s1","sale_id":"%s-%d-%d","quantity":1,"amount":1.5,"sold_at":%q}`, subject, at.UnixNano(), i, at.UTC().Format(time.RFC3339Nano))
			if _, err := s.JS.Publish(ctx, subject, []byte(data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	now := time.Now()
	publish("clocks.live", now.Add(-30*time.Second), 50)
	publish("clocks.ahead", now.Add(23*time.Hour), 1)
	publish("clocks.live", now.Add(-20*time.Second), 50)
	// Wait until all 101 events are staged and the watermark has counted them.
	var wm messages.Watermark
	waitFor(t, time.Minute, "101 events staged and counted by the watermark", func() bool {
		ws, err := inspect.Windows(ctx, s.States, p.Name)
		if err != nil {
			return false
		}
		var staged int64
		for _, st := range ws {
			staged += st.StagedRows
		}
		got, ok, err := s.Watermarks.Get(ctx, p.Name)
		if err != nil || !ok {
			return false
		}
		wm = got
		return staged == 101 && !wm.Watermark.Before(now.Add(-30*time.Second-2*time.Minute))
	})
	if limit := time.Now().Add(-2 * time.Minute); wm.Watermark.After(limit) {
		t.Fatalf("watermark %s is past the present minus max_out_of_order (%s): the clock that runs ahead moved it", wm.Watermark, limit)
	}
	current := now.Add(-20 * time.Second).Truncate(time.Hour)
	st, _, err := s.States.Get(ctx, p.Name, messages.WindowID(current))
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != messages.StatusOpen {
		t.Fatalf("the current window %s is %s, want OPEN", st.ID(), st.Status)
	}
	future, _, err := s.States.Get(ctx, p.Name, messages.WindowID(now.Add(23*time.Hour).Truncate(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if future.Status != messages.StatusOpen || future.StagedRows != 1 {
		t.Fatalf("the future event's window is %s with %d rows, want OPEN with 1 (staged, not dead-lettered)", future.Status, future.StagedRows)
	}
}
