package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/ops/inspect"
)

// TestSessionWindows: session windows per store (gap 20m, so panes of 1h)
// over 6 hours of events (50 stores with random bursts), out of order, with sessions inside a pane, across
// one and several pane boundaries, one whose end falls exactly on a pane
// boundary, and one carried into a pane that has no event of its own. The
// table holds every event once, and its sessions — GROUP BY store,
// _session_start, _session_end — are exactly those cut from the published
// events by an independent computation (sort each store's times, cut at
// pauses of 20m or more).
func TestSessionWindows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p := applyPolicy(t, ctx, s, `name: visits
source: {stream: VISITS, subjects: [visits.>]}
`+SalesSchemaYAML+`window: {kind: session, gap: 20m, max_out_of_order: 5m, idle_timeout: 1s}
key: [store_id]
segment: {max_rows: 2000, max_age: 200ms}
load: {table: visits}
`)
	if pane := p.Window.SessionPane(); pane.D() != time.Hour {
		t.Fatalf("pane %s, want 1h", pane)
	}
	h0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 4))
	var events []Event
	add := func(store int, at time.Time) {
		ev := SaleAt(fmt.Sprintf("v%d", len(events)), store, at, int64(1+rng.IntN(9)), float64(rng.IntN(1000))/100)
		ev.Subject = strings.Replace(ev.Subject, "events.sales", "visits", 1)
		events = append(events, ev)
	}
	// Stores 11..60: random bursts over 5 hours.
	for store := 11; store <= 60; store++ {
		at := h0.Add(time.Duration(rng.IntN(30)) * time.Minute)
		for at.Before(h0.Add(5 * time.Hour)) {
			for range 1 + rng.IntN(40) { // a burst: a session
				if !at.Before(h0.Add(5 * time.Hour)) {
					break
				}
				add(store, at)
				at = at.Add(time.Duration(rng.IntN(600)) * time.Second)
			}
			at = at.Add(20*time.Minute + time.Duration(rng.IntN(90))*time.Minute) // a pause
		}
	}
	// Store 7: one session over three panes (every 15 minutes, 00:30..03:00).
	for at := h0.Add(30 * time.Minute); !at.After(h0.Add(3 * time.Hour)); at = at.Add(15 * time.Minute) {
		add(7, at)
	}
	// Store 8: a session that ends exactly at 01:00 (last event 00:40), then
	// one that starts at 01:00 (a pause of exactly the gap).
	add(8, h0.Add(30*time.Minute))
	add(8, h0.Add(40*time.Minute))
	add(8, h0.Add(60*time.Minute))
	add(10, h0.Add(4*time.Hour+10*time.Minute)) // every pane up to 04:00 has events
	// Store 9: the last events, carried into the pane 06:00, which has none.
	add(9, h0.Add(5*time.Hour+50*time.Minute))
	add(9, h0.Add(5*time.Hour+55*time.Minute))
	// Out of order within 10-minute steps: no event is late.
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	slices.SortStableFunc(events, func(a, b Event) int {
		return a.Time.Truncate(10 * time.Minute).Compare(b.Time.Truncate(10 * time.Minute))
	})
	// Published before the roles start: with idle_timeout 1s, a pause in
	// publishing would let the watermark jump to the wall clock.
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "visits"); err != nil {
		t.Fatal(err)
	}
	defer runRoles(t, ctx, s)()

	want := cutSessions(events, 20*time.Minute)
	// Panes 00:00..06:00: seven windows, the last one opened by the carry
	// of store 9's session.
	ws := waitLoaded(t, ctx, s, p.Name, 7, 2*time.Minute)
	var carried int64
	for _, w := range ws {
		carried += w.CarryRows
		t.Logf("pane %s: %d rows loaded, %d carried in, %d carried out", w.ID(), w.Rows, w.BaseRows, w.CarryRows)
	}
	if carried == 0 {
		t.Errorf("no pane carried sessions into the next: the carry is not exercised")
	}
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT store_id, _session_start, _session_end, count(*), sum(quantity), count(DISTINCT _window_start)
		FROM visits GROUP BY 1, 2, 3 ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	var got []sessionRow
	for rows.Next() {
		var r sessionRow
		var panes int
		if err := rows.Scan(&r.store, &r.start, &r.end, &r.events, &r.qty, &panes); err != nil {
			t.Fatal(err)
		}
		r.start, r.end = r.start.UTC(), r.end.UTC()
		if panes != 1 {
			t.Errorf("session %s %s: loaded with %d panes, want one", r.store, r.start, panes)
		}
		got = append(got, r)
	}
	rows.Close()
	var dups, total int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) - count(DISTINCT _source_seq), count(*) FROM visits`).Scan(&dups, &total); err != nil {
		t.Fatal(err)
	}
	release()
	if dups != 0 || total != int64(len(events)) {
		t.Errorf("table: %d rows, %d source sequences twice; want %d and 0", total, dups, len(events))
	}
	if !slices.Equal(got, want) {
		t.Errorf("%d sessions in the table, want %d", len(got), len(want))
		for i := range max(len(got), len(want)) {
			var g, w sessionRow
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("session %d: got %+v, want %+v", i, g, w)
			}
		}
	}
	// The edge cases, named.
	for _, c := range []sessionRow{
		{store: "store-007", start: h0.Add(30 * time.Minute), end: h0.Add(3*time.Hour + 20*time.Minute), events: 11},
		{store: "store-008", start: h0.Add(30 * time.Minute), end: h0.Add(60 * time.Minute), events: 2},
		{store: "store-008", start: h0.Add(60 * time.Minute), end: h0.Add(80 * time.Minute), events: 1},
		{store: "store-009", start: h0.Add(5*time.Hour + 50*time.Minute), end: h0.Add(6*time.Hour + 15*time.Minute), events: 2},
	} {
		if !slices.ContainsFunc(got, func(r sessionRow) bool {
			return r.store == c.store && r.start.Equal(c.start) && r.end.Equal(c.end) && r.events == c.events
		}) {
			t.Errorf("no session %s [%s, %s) of %d events in the table", c.store, c.start.Format("15:04"), c.end.Format("15:04"), c.events)
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
	t.Logf("%d events, %d sessions; %s", len(events), len(got), rec.Summary())
}

type sessionRow struct {
	store       string
	start, end  time.Time
	events, qty int64
}

// cutSessions is the reference: per store, event times sorted, a new
// session at every pause of gap or more; end = last event + gap.
func cutSessions(events []Event, gap time.Duration) []sessionRow {
	by := map[string][]Event{}
	for _, ev := range events {
		store := ev.Subject[strings.LastIndexByte(ev.Subject, '.')+1:]
		by[store] = append(by[store], ev)
	}
	var out []sessionRow
	for store, evs := range by {
		slices.SortFunc(evs, func(a, b Event) int { return a.Time.Compare(b.Time) })
		var cur *sessionRow
		var last time.Time
		for _, ev := range evs {
			if cur == nil || ev.Time.Sub(last) >= gap {
				if cur != nil {
					cur.end = last.Add(gap)
					out = append(out, *cur)
				}
				cur = &sessionRow{store: store, start: ev.Time.UTC()}
			}
			cur.events++
			cur.qty += ev.Quantity
			last = ev.Time.UTC()
		}
		cur.end = last.Add(gap)
		out = append(out, *cur)
	}
	slices.SortFunc(out, func(a, b sessionRow) int {
		if c := strings.Compare(a.store, b.store); c != 0 {
			return c
		}
		return a.start.Compare(b.start)
	})
	return out
}
