package loadtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// TestLateRevise: with late: revise, events for windows that are already
// loaded become new revisions of those windows, as their own batches:
//
//  1. 20,000 events over three hourly windows are loaded (revision 0);
//  2. late events for two of them (and for a window never seen) arrive: the
//     two windows get revision 1, the new window revision 0;
//  3. the collectors' consumer is deleted, so every event of the stream is
//     delivered again as new (what a lost consumer or a restore from backup
//     does), together with late events for the third window: the windows get
//     a revision in which the redelivered rows are all found to be
//     duplicates of what the table holds, and the third window's new rows
//     are loaded.
//
// After each step the table holds every accepted event exactly once, with
// exact per-window counts and sums; in mode replace the post-load rollup
// equals a GROUP BY over the raw rows; windrow reconcile balances.
func TestLateRevise(t *testing.T) {
	for _, mode := range []windows.LoadMode{windows.LoadReplace, windows.LoadAppend} {
		t.Run(string(mode), func(t *testing.T) { testLateRevise(t, mode) })
	}
}

func testLateRevise(t *testing.T, mode windows.LoadMode) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	name := "rev_" + string(mode)
	src := fmt.Sprintf(`name: %s
source: {stream: REV_%s, subjects: [%s.>]}
`, name, strings.ToUpper(string(mode)), name) + SalesSchemaYAML + `window: {size: 1h, max_out_of_order: 2m, idle_timeout: 1s, late: revise, revise_after: 1s}
segment: {max_rows: 5000, max_age: 200ms}
output: {target_file_size: 1MiB, row_group_rows: 2000}
load:
  table: ` + name + `
  mode: ` + string(mode) + "\n"
	if mode == windows.LoadReplace {
		// An hourly rollup per store, kept in the load's transaction.
		src += "  post_load:" + yamlList([]string{
			`CREATE TABLE IF NOT EXISTS ` + name + `_hourly (window_start TIMESTAMPTZ, store_id VARCHAR, sales BIGINT, quantity BIGINT, revenue DOUBLE)`,
			`DELETE FROM ` + name + `_hourly WHERE window_start = $window_start`,
			`INSERT INTO ` + name + `_hourly SELECT $window_start, store_id, count(*), sum(quantity), sum(amount) FROM ` + name + ` WHERE _window_start = $window_start GROUP BY store_id`,
		})
	}
	p := applyPolicy(t, ctx, s, src)
	defer runRoles(t, ctx, s)()
	assign, err := windows.NewAssigner(p.Window)
	if err != nil {
		t.Fatal(err)
	}
	pub := &Publisher{JS: s.JS, FlushAfter: []string{p.Name}}
	h0 := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	var all []Event
	publish := func(evs []Event, tag string) {
		t.Helper()
		for i := range evs {
			evs[i].Subject = strings.Replace(evs[i].Subject, "events.sales", name, 1)
		}
		if err := pub.PublishEvents(ctx, evs, tag); err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	lateFor := func(tag string, start time.Time, n int) []Event {
		out := make([]Event, n)
		for i := range out {
			out[i] = SaleAt(fmt.Sprintf("%s-%d", tag, i), 1+i%7, start.Add(time.Duration(i)*time.Second), int64(1+i%5), float64(i%13)+0.25)
		}
		return out
	}
	check := func(step string, wantRevisions map[string]int) {
		t.Helper()
		ws := waitRevisions(t, ctx, s, p.Name, wantRevisions, 2*time.Minute)
		checkTable(t, ctx, s, name, "quantity", "amount", expectOf(all, assign))
		if mode == windows.LoadReplace {
			checkHourlyRollup(t, ctx, s, name)
		}
		rec, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
		if err != nil {
			t.Fatal(err)
		}
		if !rec.OK() || rec.Published != int64(len(all)) || rec.Rows != int64(len(all)) {
			t.Errorf("%s: reconcile: %s; problems %v", step, rec.Summary(), rec.Problems)
			for _, w := range rec.Windows {
				if len(w.Problems) > 0 {
					t.Errorf("%s: reconcile window %s: %v", step, w.State.ID(), w.Problems)
				}
			}
		}
		for _, w := range ws {
			t.Logf("%s: window %s revision %d: %d rows (%d duplicates, %d carried over) in %d batches", step, w.ID(), w.Revision, w.Rows, w.Duplicates, w.BaseRows, w.BatchCount)
		}
	}

	// 1. Three windows, loaded.
	publish(slices.Collect(Sales{Seed: 11, Events: 20_000, Start: h0, Span: 3 * time.Hour, Jitter: time.Minute}.All()), "base")
	w0, w1, w2, w5 := messages.WindowID(h0), messages.WindowID(h0.Add(time.Hour)), messages.WindowID(h0.Add(2*time.Hour)), messages.WindowID(h0.Add(5*time.Hour))
	check("loaded", map[string]int{w0: 0, w1: 0, w2: 0})

	// 2. Late events for two loaded windows and for a window not seen yet.
	publish(lateFor("late-a", h0.Add(10*time.Minute), 300), "late-a")
	publish(lateFor("late-b", h0.Add(70*time.Minute), 200), "late-b")
	publish(lateFor("late-new", h0.Add(5*time.Hour), 50), "late-new")
	check("late events", map[string]int{w0: 1, w1: 1, w2: 0, w5: 0})
	ws, err := inspect.Windows(ctx, s.States, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.ID() != w0 && w.ID() != w1 {
			continue
		}
		for _, b := range batchesOf(t, s.Store, w) {
			if !strings.Contains(b.Object, "/r1/") || !strings.Contains(b.BatchID, "-r1-") {
				t.Errorf("window %s revision 1: batch %s at %s, want its own batches under r1/", w.ID(), b.BatchID, b.Object)
			}
		}
		late := map[string]int64{w0: 300, w1: 200}[w.ID()]
		if mode == windows.LoadAppend && w.Rows != late {
			t.Errorf("window %s revision 1 (append): %d rows, want the %d late rows only", w.ID(), w.Rows, late)
		}
		if mode == windows.LoadReplace && w.Rows != w.BaseRows+late {
			t.Errorf("window %s revision 1 (replace): %d rows, want %d carried over + %d late", w.ID(), w.Rows, w.BaseRows, late)
		}
	}

	// 3. Every event delivered again as new, plus late events for window 2.
	if err := s.JS.DeleteConsumer(ctx, p.Source.Stream, messages.CollectorConsumer(p.Name)); err != nil {
		t.Fatal(err)
	}
	publish(lateFor("late-c", h0.Add(150*time.Minute), 120), "late-c")
	check("redelivered", map[string]int{w0: 2, w1: 2, w2: 1, w5: 1})
	ws, err = inspect.Windows(ctx, s.States, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.ID() == w2 {
			if w.Duplicates < 1 {
				t.Errorf("window %s: the redelivered rows were not counted as duplicates (%d)", w.ID(), w.Duplicates)
			}
			continue
		}
		// Only redelivered rows: nothing new, loaded without a load.
		if fresh := w.Rows - w.BaseRows; fresh != 0 || w.Duplicates != w.StagedRows {
			t.Errorf("window %s revision %d: %d new rows, %d duplicates of %d staged; want 0 new, all duplicates", w.ID(), w.Revision, fresh, w.Duplicates, w.StagedRows)
		}
	}
}

// waitRevisions waits until the policy's windows are exactly want's, each
// LOADED at (at least) its revision, with no late rows pending.
func waitRevisions(t *testing.T, ctx context.Context, s *stack.Stack, policy string, want map[string]int, timeout time.Duration) []*messages.WindowState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ws, err := inspect.Windows(ctx, s.States, policy)
		if err != nil {
			t.Fatalf("list windows: %v", err)
		}
		done := len(ws) == len(want)
		var b strings.Builder
		for _, w := range ws {
			if w.Status == messages.StatusFailed {
				t.Fatalf("window %s failed: %s", w.ID(), w.Error)
			}
			rev, ok := want[w.ID()]
			if !ok || w.Status != messages.StatusLoaded || w.Revision < rev || w.Next != nil || !w.StagingDeleted {
				done = false
			}
			fmt.Fprintf(&b, "%s=%s/r%d(next %v) ", w.ID(), w.Status, w.Revision, w.Next != nil)
		}
		if done {
			return ws
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy %s: want windows %v loaded within %s, have: %s", policy, want, timeout, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkHourlyRollup compares table_hourly, kept by post-load SQL, with a
// GROUP BY over the table's rows.
func checkHourlyRollup(t *testing.T, ctx context.Context, s *stack.Stack, table string) {
	t.Helper()
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	raw := `SELECT _window_start, store_id, count(*), sum(quantity), round(sum(amount), 6) FROM ` + table + ` GROUP BY ALL`
	rollup := `SELECT window_start, store_id, sales, quantity, round(revenue, 6) FROM ` + table + `_hourly`
	var diff, sales, rows int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ((`+raw+` EXCEPT `+rollup+`) UNION ALL (`+rollup+` EXCEPT `+raw+`))`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT (SELECT coalesce(sum(sales), 0) FROM `+table+`_hourly), (SELECT count(*) FROM `+table+`)`).Scan(&sales, &rows); err != nil {
		t.Fatal(err)
	}
	if diff != 0 || sales != rows {
		t.Errorf("rollup %s_hourly: %d groups differ from the raw rows; it counts %d sales, the table holds %d rows", table, diff, sales, rows)
	}
}

// TestLateReviseKeepsTheKeysOfEarlierRevisions: with a key cap, the keys a
// window loaded stay admitted in its revisions, and a new key counts
// against the cap with them: revision 0 loads stores 004 and 005 (cap 3);
// late events of stores 001, 002 and 004 make revision 1, which admits
// 001 (the third key), dead-letters 002 (key_overflow) and adds to 004,
// although 001 and 002 sort before the keys already loaded.
func TestLateReviseKeepsTheKeysOfEarlierRevisions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p := applyPolicy(t, ctx, s, `name: krev
source: {stream: KREV, subjects: [krev.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 1m, idle_timeout: 1s, late: revise, revise_after: 1s}
segment: {max_age: 200ms}
key: [store_id]
max_keys_per_window: 3
load: {table: krev}
`)
	defer runRoles(t, ctx, s)()
	h0 := time.Date(2026, 4, 6, 0, 0, 0, 0, time.UTC)
	sales := func(tag string, stores []int, n int) []Event {
		var out []Event
		for _, store := range stores {
			for i := range n {
				ev := SaleAt(fmt.Sprintf("%s-%d-%d", tag, store, i), store, h0.Add(time.Duration(i)*time.Second), int64(store), 1)
				ev.Subject = strings.Replace(ev.Subject, "events.sales", "krev", 1)
				out = append(out, ev)
			}
		}
		return out
	}
	pub := &Publisher{JS: s.JS, FlushAfter: []string{p.Name}}
	if err := pub.PublishEvents(ctx, sales("r0", []int{4, 5}, 500), "r0"); err != nil {
		t.Fatal(err)
	}
	w0 := messages.WindowID(h0)
	waitRevisions(t, ctx, s, p.Name, map[string]int{w0: 0}, 2*time.Minute)
	if err := pub.PublishEvents(ctx, sales("r1", []int{1, 2, 4}, 100), "r1"); err != nil {
		t.Fatal(err)
	}
	ws := waitRevisions(t, ctx, s, p.Name, map[string]int{w0: 1}, 2*time.Minute)
	if w := ws[0]; w.Rows != 200 || w.KeyOverflow != 100 {
		t.Errorf("revision 1: %d rows, %d over the key cap; want 200 (stores 001, 004) and 100 (store 002)", w.Rows, w.KeyOverflow)
	}
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rows, err := db.QueryContext(ctx, `SELECT store_id, count(*) FROM krev GROUP BY 1 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var store string
		var n int64
		if err := rows.Scan(&store, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%d", store, n))
	}
	rows.Close()
	if want := []string{"store-001=100", "store-004=600", "store-005=500"}; !slices.Equal(got, want) {
		t.Errorf("table: %v, want %v", got, want)
	}
	dl, err := inspect.CountDeadLetters(ctx, s.JS, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if dl.ByReason[messages.ReasonKeyOverflow] != 100 {
		t.Errorf("%d key_overflow dead letters, want 100 (store 002)", dl.ByReason[messages.ReasonKeyOverflow])
	}
	rec, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() {
		t.Errorf("reconcile: %s %v", rec.Summary(), rec.Problems)
	}
}

// TestEarlyLoads: a daily window with early_every is loaded while it is
// still open: its first part as revision 0, what arrives later as
// revisions, and what arrives after it closed as a last one. After each
// step the table holds exactly what was published for the day so far (in
// mode append only the new rows are loaded each time; in mode replace the
// window's rows so far are swapped in).
func TestEarlyLoads(t *testing.T) {
	for _, mode := range []windows.LoadMode{windows.LoadAppend, windows.LoadReplace} {
		t.Run(string(mode), func(t *testing.T) { testEarlyLoads(t, mode) })
	}
}

func testEarlyLoads(t *testing.T, mode windows.LoadMode) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	name := "early_" + string(mode)
	// idle_timeout 1h: the watermark only moves with events, so the day
	// stays open until an event of the next day arrives.
	p := applyPolicy(t, ctx, s, fmt.Sprintf(`name: %s
source: {stream: EARLY_%s, subjects: [%s.>]}
`, name, strings.ToUpper(string(mode)), name)+SalesSchemaYAML+`window: {size: 24h, max_out_of_order: 10m, idle_timeout: 1h, late: revise, revise_after: 1s, early_every: 2s}
segment: {max_rows: 5000, max_age: 200ms}
load: {table: `+name+`, mode: `+string(mode)+`}
`)
	defer runRoles(t, ctx, s)()
	assign, err := windows.NewAssigner(p.Window)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 9, 14, 0, 0, 0, 0, time.UTC)
	d0, d1 := messages.WindowID(day), messages.WindowID(day.Add(24*time.Hour))
	pub := &Publisher{JS: s.JS}
	var all []Event
	publish := func(from, to time.Duration, n int, seed uint64) {
		t.Helper()
		evs := slices.Collect(Sales{Seed: seed, Events: n, Start: day.Add(from), Span: to - from, SubjectPrefix: name}.All())
		if err := pub.PublishEvents(ctx, evs, fmt.Sprintf("%s-%d", name, seed)); err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	open := func(step string) {
		t.Helper()
		wm, ok, err := s.Watermarks.Get(ctx, p.Name)
		if err != nil {
			t.Fatal(err)
		}
		if ok && !wm.Watermark.Before(day.Add(24*time.Hour)) {
			t.Fatalf("%s: watermark %s has closed the day: the loads checked were not early", step, wm.Watermark)
		}
	}

	// 1. The morning: loaded while the day is open.
	publish(0, 8*time.Hour, 6000, 1)
	waitRevisions(t, ctx, s, p.Name, map[string]int{d0: 0}, 2*time.Minute)
	open("morning")
	checkTable(t, ctx, s, name, "quantity", "amount", expectOf(all, assign))

	// 2. The afternoon: a revision, the day still open.
	publish(8*time.Hour, 16*time.Hour, 6000, 2)
	ws := waitRevisions(t, ctx, s, p.Name, map[string]int{d0: 1}, 2*time.Minute)
	open("afternoon")
	for _, w := range ws {
		t.Logf("afternoon: window %s revision %d: %d rows", w.ID(), w.Revision, w.Rows)
	}
	checkTable(t, ctx, s, name, "quantity", "amount", expectOf(all, assign))

	// 3. The evening, then an event of the next day closes the day: at least
	// one more revision (an early one may come before the close).
	rev := ws[0].Revision + 1
	publish(16*time.Hour, 24*time.Hour, 6000, 3)
	publish(24*time.Hour+30*time.Minute, 24*time.Hour+31*time.Minute, 1, 4)
	ws = waitRevisions(t, ctx, s, p.Name, map[string]int{d0: rev, d1: 0}, 2*time.Minute)
	for _, w := range ws {
		t.Logf("closed: window %s revision %d: %d rows", w.ID(), w.Revision, w.Rows)
	}
	checkTable(t, ctx, s, name, "quantity", "amount", expectOf(all, assign))
	rec, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() || rec.Rows != int64(len(all)) {
		t.Errorf("reconcile: %s %v", rec.Summary(), rec.Problems)
	}
}
