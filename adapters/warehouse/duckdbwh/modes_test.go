package duckdbwh_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
	"github.com/windrow/windrow/messages"
)

// windowLoad is a whole-window load of the objects (modes replace and merge).
func windowLoad(mode string, start time.Time, revision int, rows int64, keys ...string) warehouse.Batch {
	return warehouse.Batch{
		ID: messages.WindowLoadID("daily_sales", start, revision), Policy: "daily_sales", PolicyVersion: 1,
		Table: "sales", Columns: saleColumns(), Objects: keys, WindowStart: start, WindowEnd: start.Add(24 * time.Hour),
		Revision: revision, Rows: rows, Mode: mode,
	}
}

type windowTotals struct {
	n   int64
	sum float64
}

func totalsByWindow(t *testing.T, w *testWarehouse) map[time.Time]windowTotals {
	t.Helper()
	out := map[time.Time]windowTotals{}
	query(t, w, func(db *sql.DB) {
		rows, err := db.Query(`SELECT _window_start, count(*), sum(amount) FROM sales GROUP BY ALL`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var ws time.Time
			var wt windowTotals
			if err := rows.Scan(&ws, &wt.n, &wt.sum); err != nil {
				t.Fatal(err)
			}
			out[ws.UTC()] = wt
		}
	})
	return out
}

func sumAmounts(rows []saleRow) float64 {
	var s float64
	for _, r := range rows {
		s += r.Amount
	}
	return s
}

// TestReplaceSwapsTheWindowsRows: a whole-window replace removes every row
// the policy loaded for the window before (appended batches, an earlier
// replace) and inserts all of the window's files in one transaction; other
// windows are untouched, and the same load again is a ledger duplicate.
func TestReplaceSwapsTheWindowsRows(t *testing.T) {
	w := open(t, time.Minute)
	ctx := context.Background()
	day2 := t0.Add(24 * time.Hour)
	// Window 1 appended in two batches; window 2 appended once.
	a0, a1 := sales(40, 1), sales(30, 100)
	for i, rows := range [][]saleRow{a0, a1} {
		if _, _, err := w.Load(ctx, batch(writeParquet(t, w, rows), i, int64(len(rows)))); err != nil {
			t.Fatal(err)
		}
	}
	other := warehouse.Batch{ID: messages.BatchID("daily_sales", day2, 0, 0), Policy: "daily_sales", Table: "sales", Columns: saleColumns(),
		Objects: []string{writeParquet(t, w, sales(7, 500))}, WindowStart: day2, WindowEnd: day2.Add(24 * time.Hour), Rows: 7}
	if _, _, err := w.Load(ctx, other); err != nil {
		t.Fatal(err)
	}

	// Replace window 1 with two new files (revision 1).
	r0, r1 := sales(12, 1000), sales(9, 2000)
	rows, dup, err := w.Load(ctx, windowLoad("replace", t0, 1, 21, writeParquet(t, w, r0), writeParquet(t, w, r1)))
	if err != nil || dup || rows != 21 {
		t.Fatalf("replace: rows %d dup %v err %v", rows, dup, err)
	}
	got := totalsByWindow(t, w)
	if want := (windowTotals{21, sumAmounts(r0) + sumAmounts(r1)}); got[t0] != want {
		t.Errorf("window 1 after replace: %+v, want %+v", got[t0], want)
	}
	if want := (windowTotals{7, sumAmounts(sales(7, 500))}); got[day2] != want {
		t.Errorf("window 2 changed by a replace of window 1: %+v, want %+v", got[day2], want)
	}
	// The same load again (a redelivery) is a duplicate and changes nothing.
	rows, dup, err = w.Load(ctx, windowLoad("replace", t0, 1, 21, writeParquet(t, w, r0), writeParquet(t, w, r1)))
	if err != nil || !dup || rows != 21 {
		t.Fatalf("replace again: rows %d dup %v err %v, want a duplicate of 21", rows, dup, err)
	}
	// Revision 2 replaces revision 1.
	r2 := sales(5, 3000)
	if _, _, err := w.Load(ctx, windowLoad("replace", t0, 2, 5, writeParquet(t, w, r2))); err != nil {
		t.Fatal(err)
	}
	if got := totalsByWindow(t, w)[t0]; got != (windowTotals{5, sumAmounts(r2)}) {
		t.Errorf("window 1 after revision 2: %+v", got)
	}
	// Row count mismatch: nothing changes.
	_, _, err = w.Load(ctx, windowLoad("replace", t0, 3, 99, writeParquet(t, w, sales(4, 4000))))
	if !errors.Is(err, duckdbwh.ErrRowCount) {
		t.Fatalf("replace with a wrong row count: %v, want ErrRowCount", err)
	}
	if got := totalsByWindow(t, w)[t0]; got != (windowTotals{5, sumAmounts(r2)}) {
		t.Errorf("window 1 after a failed replace: %+v, want revision 2 intact", got)
	}
}

// TestMergeUpsertsOnTheKey: rows whose key the window brings are replaced by
// the window's newest row of that key; other keys are kept.
func TestMergeUpsertsOnTheKey(t *testing.T) {
	w := open(t, time.Minute)
	ctx := context.Background()
	// First window: stores 000..004 (sales() cycles store ids over 5), the
	// newest row of each store kept.
	first := sales(10, 1)
	b := windowLoad("merge", t0, 0, 10, writeParquet(t, w, first))
	b.MergeKey, b.TimeColumn = []string{"store_id"}, "sold_at"
	rows, _, err := w.Load(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 5 {
		t.Fatalf("merge inserted %d rows, want 5 (one per store)", rows)
	}
	// The next window brings stores 000 and 001 only.
	day2 := t0.Add(24 * time.Hour)
	next := []saleRow{
		{StoreID: "store-000", Amount: 1000, SoldAt: day2.Add(time.Minute).UnixMicro(), Day: int32(day2.Unix() / 86400), SourceSeq: 50},
		{StoreID: "store-000", Amount: 2000, SoldAt: day2.Add(2 * time.Minute).UnixMicro(), Day: int32(day2.Unix() / 86400), SourceSeq: 49},
		{StoreID: "store-001", Amount: 3000, SoldAt: day2.Add(time.Minute).UnixMicro(), Day: int32(day2.Unix() / 86400), SourceSeq: 51},
	}
	b2 := windowLoad("merge", day2, 0, 3, writeParquet(t, w, next))
	b2.MergeKey, b2.TimeColumn = []string{"store_id"}, "sold_at"
	if _, _, err := w.Load(ctx, b2); err != nil {
		t.Fatal(err)
	}
	// Stores 002..004 keep their newest first-window row (i = 7, 8, 9).
	want := map[string]float64{"store-000": 2000, "store-001": 3000, "store-002": 7.25, "store-003": 8.25, "store-004": 9.25}
	checkAmounts(t, w, want)
	// A window of older events loads late: its rows of existing keys are
	// older and lose; its new key is added.
	day0 := t0.Add(-24 * time.Hour)
	old := []saleRow{
		{StoreID: "store-000", Amount: 9999, SoldAt: day0.Add(time.Hour).UnixMicro(), Day: int32(day0.Unix() / 86400), SourceSeq: 90},
		{StoreID: "store-999", Amount: 42, SoldAt: day0.Add(time.Hour).UnixMicro(), Day: int32(day0.Unix() / 86400), SourceSeq: 91},
	}
	b0 := windowLoad("merge", day0, 0, 2, writeParquet(t, w, old))
	b0.MergeKey, b0.TimeColumn = []string{"store_id"}, "sold_at"
	if rows, _, err := w.Load(ctx, b0); err != nil || rows != 1 {
		t.Fatalf("late older window: %d rows inserted (%v), want 1 (the new key only)", rows, err)
	}
	want["store-999"] = 42
	checkAmounts(t, w, want)
}

// checkAmounts checks that the table holds exactly one row per store, with
// the wanted amount.
func checkAmounts(t *testing.T, w *testWarehouse, want map[string]float64) {
	t.Helper()
	got := map[string]float64{}
	query(t, w, func(db *sql.DB) {
		rs, err := db.Query(`SELECT store_id, amount FROM sales`)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		for rs.Next() {
			var k string
			var a float64
			if err := rs.Scan(&k, &a); err != nil {
				t.Fatal(err)
			}
			if _, seen := got[k]; seen {
				t.Errorf("store %s twice", k)
			}
			got[k] = a
		}
	})
	if len(got) != len(want) {
		t.Fatalf("table %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: amount %v, want %v (newest by event time)", k, got[k], v)
		}
	}
}

// TestPostLoadRunsInTheLoadTransaction: a post-load rollup sees the loaded
// rows and the window bounds; a failing statement rolls the rows back too.
func TestPostLoadRunsInTheLoadTransaction(t *testing.T) {
	w := open(t, time.Minute)
	ctx := context.Background()
	query(t, w, func(db *sql.DB) {
		if _, err := db.Exec(`CREATE TABLE daily (day DATE, store_id VARCHAR, n BIGINT, amount DOUBLE)`); err != nil {
			t.Fatal(err)
		}
	})
	rollup := []string{
		`DELETE FROM daily WHERE day = CAST($window_start AS DATE)`,
		`INSERT INTO daily SELECT CAST($window_start AS DATE), store_id, count(*), sum(amount) FROM sales
		 WHERE sold_at >= $window_start AND sold_at < $window_end GROUP BY store_id`,
	}
	rows := sales(50, 1)
	b := windowLoad("replace", t0, 0, 50, writeParquet(t, w, rows))
	b.PostLoad = rollup
	if _, _, err := w.Load(ctx, b); err != nil {
		t.Fatal(err)
	}
	// Reload (revision 1) replaces the rows and the rollup stays exact.
	rows = sales(20, 100)
	b = windowLoad("replace", t0, 1, 20, writeParquet(t, w, rows))
	b.PostLoad = rollup
	if _, _, err := w.Load(ctx, b); err != nil {
		t.Fatal(err)
	}
	query(t, w, func(db *sql.DB) {
		var diff int64
		err := db.QueryRow(`SELECT count(*) FROM (
			SELECT store_id, count(*) AS n, sum(amount) AS amount FROM sales GROUP BY store_id
			EXCEPT SELECT store_id, n, amount FROM daily)`).Scan(&diff)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := db.QueryRow(`SELECT sum(n) FROM daily`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if diff != 0 || n != 20 {
			t.Errorf("rollup differs from the raw rows in %d groups, holds %d rows, want 0 and 20", diff, n)
		}
	})
	// A broken statement: the load fails with ErrPostLoad and nothing of it stays.
	b = windowLoad("replace", t0, 2, 3, writeParquet(t, w, sales(3, 200)))
	b.PostLoad = []string{`INSERT INTO no_such_table VALUES (1)`}
	if _, _, err := w.Load(ctx, b); !errors.Is(err, duckdbwh.ErrPostLoad) {
		t.Fatalf("broken post-load: %v, want ErrPostLoad", err)
	}
	if n, _ := countAndSum(t, w, "sales"); n != 20 {
		t.Errorf("%d rows after a failed post-load, want the 20 of revision 1", n)
	}
}

// TestReplayReplacesWhatTheBatchLoaded: a replay of a loaded batch is not a
// duplicate; it replaces the batch's rows (exactly once, whether the rows
// were dropped meanwhile or are still there), and the same replay again is.
func TestReplayReplacesWhatTheBatchLoaded(t *testing.T) {
	w := open(t, time.Minute)
	ctx := context.Background()
	rows := sales(30, 1)
	want := windowTotals{30, sumAmounts(rows)}
	b := batch(writeParquet(t, w, rows), 0, 30)
	if _, _, err := w.Load(ctx, b); err != nil {
		t.Fatal(err)
	}
	// A user drops the window's rows; a plain redelivery would not bring them back.
	query(t, w, func(db *sql.DB) {
		if _, err := db.Exec(`DELETE FROM sales`); err != nil {
			t.Fatal(err)
		}
	})
	if _, dup, _ := w.Load(ctx, b); !dup {
		t.Fatal("a redelivered load was not a duplicate")
	}
	for i, tc := range []struct {
		replay  int
		wantDup bool
	}{{1, false}, {1, true}, {2, false}} {
		b.Replay = tc.replay
		n, dup, err := w.Load(ctx, b)
		if err != nil || dup != tc.wantDup || n != 30 {
			t.Fatalf("step %d (replay %d): rows %d dup %v err %v; want 30 rows, dup %v", i, tc.replay, n, dup, err, tc.wantDup)
		}
		if got := totalsByWindow(t, w)[t0]; got != want {
			t.Errorf("step %d (replay %d): window %+v, want %+v (the batch once)", i, tc.replay, got, want)
		}
	}
}
