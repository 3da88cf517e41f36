package loadtest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// TestHoppingWindows runs 1-hour windows that start every 15 minutes: each
// event is in the 4 windows that cover it, and each window's table rows are
// exactly its events (counts and sums), every event once per window.
func TestHoppingWindows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p := applyPolicy(t, ctx, s, `name: hop
source: {stream: HOP, subjects: [hop.>]}
`+SalesSchemaYAML+`window: {kind: hopping, size: 1h, slide: 15m, max_out_of_order: 5m, idle_timeout: 1s, late: dlq}
segment: {max_age: 500ms}
load: {table: hop}
`)
	h0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	events := slices.Collect(Sales{Seed: 11, Events: 30_000, Start: h0, Span: 3 * time.Hour, Jitter: 2 * time.Minute, MalformedEvery: 500, SubjectPrefix: "hop"}.All())
	// Fill the stream first: no publishing pause can look idle.
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "hop"); err != nil {
		t.Fatal(err)
	}
	hop, err := windows.NewHoppingAssigner(p.Window)
	if err != nil {
		t.Fatal(err)
	}
	type agg struct {
		n, qty int64
		amt    float64
	}
	want := map[string]*agg{}
	good := 0
	for _, ev := range events {
		if ev.Malformed {
			continue
		}
		good++
		for _, w := range hop.AssignAll(ev.Time, nil) {
			a := want[w.ID()]
			if a == nil {
				a = &agg{}
				want[w.ID()] = a
			}
			a.n++
			a.qty += ev.Quantity
			a.amt += ev.Amount
		}
	}
	defer runRoles(t, ctx, s)()
	waitLoaded(t, ctx, s, p.Name, len(want), 2*time.Minute)

	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rows, err := db.QueryContext(ctx, `SELECT strftime(_window_start AT TIME ZONE 'UTC', '%Y%m%dT%H%M%SZ'), count(*), sum(quantity), sum(amount),
		count(DISTINCT _source_seq), min(sold_at) >= min(_window_start) AND max(sold_at) < max(_window_end) FROM hop GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*agg{}
	for rows.Next() {
		var id string
		var a agg
		var distinct int64
		var inside bool
		if err := rows.Scan(&id, &a.n, &a.qty, &a.amt, &distinct, &inside); err != nil {
			t.Fatal(err)
		}
		if distinct != a.n {
			t.Errorf("window %s: %d rows for %d events: an event twice", id, a.n, distinct)
		}
		if !inside {
			t.Errorf("window %s holds an event outside its bounds", id)
		}
		got[id] = &a
	}
	rows.Close()
	if len(got) != len(want) {
		t.Errorf("%d windows in the table, want %d", len(got), len(want))
	}
	var total int64
	for id, w := range want {
		g := got[id]
		if g == nil || g.n != w.n || g.qty != w.qty || math.Abs(g.amt-w.amt) > 1e-6*math.Max(1, w.amt) {
			t.Errorf("window %s: got %+v, want %+v", id, g, w)
		}
		total += w.n
	}
	var distinct int64
	if err := db.QueryRowContext(ctx, `SELECT count(DISTINCT _source_seq) FROM hop`).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if distinct != int64(good) {
		t.Errorf("%d distinct events in the table, published %d good ones", distinct, good)
	}
	t.Logf("%d events in %d hopping windows, %d window rows", good, len(want), total)

	// Late events: each is late for every window that covers it, one dead
	// letter per window (not one per event, which dedup would make of them).
	var late []Event
	wantLate := map[string]int64{}
	for i := range 3 {
		ev := SaleAt(fmt.Sprintf("late-%d", i), 1, h0.Add(time.Duration(70+i)*time.Minute), 1, 1)
		ev.Subject = "hop.store-001"
		late = append(late, ev)
		for _, w := range hop.AssignAll(ev.Time, nil) {
			wantLate[w.ID()]++
		}
	}
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, late, "hop-late"); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, ctx, s, p, time.Minute)
	dl, err := inspect.CountDeadLetters(ctx, s.JS, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if dl.ByReason["late"] != 12 {
		t.Errorf("%d late dead letters, want 12 (3 events × 4 windows)", dl.ByReason["late"])
	}
	for id, n := range wantLate {
		if dl.LateByWindow[id] != n {
			t.Errorf("window %s: %d late, want %d", id, dl.LateByWindow[id], n)
		}
	}
	rec, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() {
		t.Errorf("reconcile: %s %v", rec.Summary(), rec.Problems)
		for _, w := range rec.Windows {
			if len(w.Problems) > 0 {
				t.Errorf("window %s: %v", w.State.ID(), w.Problems)
			}
		}
	}
}
