package loadtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/windrow/windrow/app/stack"
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
	wm := waitStaged(t, ctx, s, p.Name, 101, now.Add(-30*time.Second-2*time.Minute))
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

// TestAheadProducerInBackfill: a backfill of last month's events in which
// one producer's clock runs a day ahead (20 of 3,020 events; the cap at
// ingest time cannot catch them, all of them are in the past) does not move
// the watermark a day ahead: it follows what the quorum of the events
// supports, so the backfilled hour stays open for its own events instead of
// being sealed with the rest of the backfill about to turn late.
func TestAheadProducerInBackfill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p := applyPolicy(t, ctx, s, `name: backfill
source: {stream: BACKFILL, subjects: [backfill.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 2m, idle_timeout: 1h}
segment: {max_age: 200ms}
load: {table: backfill}
`)
	if _, err := s.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "BACKFILL", Subjects: []string{"backfill.>"}}); err != nil {
		t.Fatal(err)
	}
	h0 := time.Now().UTC().AddDate(0, -1, 0).Truncate(time.Hour)
	const n = 3000
	publish := func(subject string, at time.Time, i int) {
		t.Helper()
		data := fmt.Sprintf(`{"store_id":"s1","sale_id":"%s-%d","quantity":1,"amount":1.5,"sold_at":%q}`, subject, i, at.Format(time.RFC3339Nano))
		if _, err := s.JS.Publish(ctx, subject, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	ahead := 0
	for i := range n {
		at := h0.Add(time.Duration(i) * 58 * time.Minute / n)
		publish(fmt.Sprintf("backfill.store-%d", i%7), at, i)
		if i >= 150 && i%150 == 0 {
			publish("backfill.ahead", at.Add(24*time.Hour), i)
			ahead++
		}
	}
	defer runRoles(t, ctx, s)()
	wm := waitStaged(t, ctx, s, p.Name, int64(n+ahead), h0.Add(50*time.Minute))
	if wm.Watermark.After(h0.Add(time.Hour)) {
		t.Fatalf("watermark %s is past the backfilled hour %s: the producer whose clock runs a day ahead moved it", wm.Watermark, h0)
	}
	st, _, err := s.States.Get(ctx, p.Name, messages.WindowID(h0))
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != messages.StatusOpen || st.StagedRows != n {
		t.Fatalf("the backfilled hour %s is %s with %d rows, want OPEN with %d", st.ID(), st.Status, st.StagedRows, n)
	}
}

// waitStaged waits until the policy's windows hold n staged rows and its
// watermark is at least atLeast, and returns the watermark.
func waitStaged(t *testing.T, ctx context.Context, s *stack.Stack, policy string, n int64, atLeast time.Time) messages.Watermark {
	t.Helper()
	var wm messages.Watermark
	waitFor(t, time.Minute, fmt.Sprintf("%d events staged and counted by the watermark", n), func() bool {
		ws, err := inspect.Windows(ctx, s.States, policy)
		if err != nil {
			return false
		}
		var staged int64
		for _, st := range ws {
			staged += st.StagedRows
		}
		got, ok, err := s.Watermarks.Get(ctx, policy)
		if err != nil || !ok {
			return false
		}
		wm = got
		return staged == n && !wm.Watermark.Before(atLeast)
	})
	return wm
}
