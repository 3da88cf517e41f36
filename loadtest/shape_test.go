package loadtest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// TestWindowShapeChangeAppliesFromTheNextWindow: a new window size applied
// while windows are open is not refused; it applies from a switch instant T
// after every window that may hold events. Events before T are in 30m
// windows (also those published after the change), events from T in 1h
// windows; no window crosses T, every event is loaded exactly once, and each
// window's rows and sums are what was published into it.
func TestWindowShapeChangeAppliesFromTheNextWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	v1 := `name: shaped
source: {stream: SHAPED, subjects: [shaped.>]}
` + SalesSchemaYAML + `window: {size: 30m, max_out_of_order: 5m, idle_timeout: 1h, late: revise, revise_after: 1s, early_every: 2s}
segment: {max_age: 200ms}
load: {table: shaped}
`
	p1 := applyPolicy(t, ctx, s, v1)
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p1.Source.Stream, p1.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	defer runRoles(t, ctx, s)()

	// Event times around the wall clock: the switch instant is after now and
	// after every window holding events, so events on both sides of it are
	// in the future (within the policy's future_horizon of 24h).
	hour := time.Now().UTC().Truncate(time.Hour)
	start1, end1 := hour.Add(-90*time.Minute), hour.Add(90*time.Minute)
	first := Sales{Seed: 41, Events: 3_000, Start: start1, Span: end1.Sub(start1), SubjectPrefix: "shaped"}.Generate()
	pub := &Publisher{JS: s.JS}
	if err := pub.PublishEvents(ctx, first, "shaped-1"); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, ctx, s, p1, time.Minute) // staged: the windows exist, all open

	v2 := strings.Replace(v1, "size: 30m", "size: 1h", 1)
	p2, err := s.Policies.Apply(ctx, "shaped.yaml", []byte(v2))
	if err != nil {
		t.Fatalf("size change with open windows: %v", err)
	}
	if p2.Window.Size.D() != time.Hour || len(p2.WindowHistory) != 1 {
		t.Fatalf("stored size %s, history %+v; want 1h and one past shape", p2.Window.Size.D(), p2.WindowHistory)
	}
	switchAt := p2.WindowHistory[0].Until
	if switchAt.Before(end1) || switchAt.Minute() != 0 || switchAt.Second() != 0 {
		t.Fatalf("switch instant %v: want a whole hour at or after the last 30m window with events (%v)", switchAt, end1)
	}
	t.Logf("30m → 1h from %v", switchAt)
	// The next events must meet a collector of the new version.
	waitFor(t, time.Minute, "the collector runs the new version", func() bool {
		v, ok := s.CollectorVersion("shaped")
		return ok && v == p2.Version
	})

	// After the change: events from the end of the first batch (a 30m window
	// opened after the change) to three hours after T.
	second := Sales{Seed: 42, Events: 3_000, Start: end1, Span: switchAt.Add(3 * time.Hour).Sub(end1), SubjectPrefix: "shaped"}.Generate()
	if err := pub.PublishEvents(ctx, second, "shaped-2"); err != nil {
		t.Fatal(err)
	}
	// The windows from T on are in the future: no event closes them (an
	// event counts for the watermark only up to its arrival), so early
	// loads (early_every) load what they hold, as revisions, before they
	// close.

	assign, err := windows.NewEpochAssigner(p2)
	if err != nil {
		t.Fatal(err)
	}
	want := expectOf(slices.Concat(first, second), assign)
	var ws []*messages.WindowState
	waitFor(t, 2*time.Minute, "every window's rows in the table", func() bool {
		ws, err = s.States.List(ctx, "shaped")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if w.Status == messages.StatusFailed {
				t.Fatalf("window %s FAILED: %s", w.ID(), w.Error)
			}
		}
		counts, err := s.Warehouse.WindowCounts(ctx, "shaped")
		if err != nil || len(counts) != len(want.rows) {
			return false
		}
		for id, n := range want.rows {
			if counts[id] != n {
				return false
			}
		}
		return true
	})
	checkTable(t, ctx, s, "shaped", "quantity", "amount", want)

	// Windows before T are 30m and end by T; from T on they are 1h.
	old, new := 0, 0
	for _, w := range ws {
		size := w.WindowEnd.Sub(w.WindowStart)
		switch {
		case w.WindowStart.Before(switchAt) && (size != 30*time.Minute || w.WindowEnd.After(switchAt)):
			t.Errorf("window %s before T lasts %s, ends %v", w.ID(), size, w.WindowEnd)
		case !w.WindowStart.Before(switchAt) && size != time.Hour:
			t.Errorf("window %s from T lasts %s, want 1h", w.ID(), size)
		case w.WindowStart.Before(switchAt):
			old++
		default:
			new++
		}
	}
	// 7 or 8 windows of 30m (from 90m before the hour to T), 3 of 1h.
	if old < 7 || new != 3 {
		t.Errorf("%d windows of 30m and %d of 1h; want at least 7 and 3", old, new)
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
