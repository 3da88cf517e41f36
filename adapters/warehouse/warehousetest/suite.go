// Package warehousetest is the conformance suite of package warehouse: the
// tests every warehouse.Warehouse must pass (see the contract in
// adapters/warehouse), the way watermill's tests.TestPubSub is for its
// Pub/Subs. An implementation's test runs it with a Harness:
//
//	func TestConformance(t *testing.T) {
//		warehousetest.Run(t, warehousetest.Harness{Open: func(t *testing.T) warehousetest.Instance { … }})
//	}
//
// The suite writes its own batch objects (Parquet, as the compactor writes
// them, through pipeline/records) into the instance's object store, loads
// them, and reads the tables back through the instance's *sql.DB with
// portable SQL ($1 placeholders, information_schema).
package warehousetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
)

// Instance is one warehouse under test, over its own object store.
type Instance struct {
	// Warehouse under test; the harness closes it when the test ends
	// (tests may close it before: Close must be idempotent).
	Warehouse warehouse.Warehouse
	// Objects is the store the warehouse reads batch objects from; it is
	// empty when the test starts.
	Objects objstore.Store
	// DB lends a handle on the warehouse's database, to read tables back
	// and to create post-load targets. The suite calls release exactly
	// once and never closes db.
	DB func(ctx context.Context) (db *sql.DB, release func(), err error)
	// GrantPostLoad, if set, lets the post-load SQL of loads into table
	// query and change tables (the suite's rollups), as an operator would
	// for a warehouse whose post-load SQL runs with the rights of the
	// policy's table only (postgres). Nil: post-load SQL needs no grant.
	GrantPostLoad func(ctx context.Context, table string, tables ...string) error
}

// Harness opens the warehouses the suite tests.
type Harness struct {
	// Open returns a fresh warehouse over a fresh, empty object store, and
	// registers their cleanup with t.Cleanup. Required.
	Open func(t *testing.T) Instance
	// Unavailable, if set, makes in's warehouse unavailable for a while
	// (another process holds the file, the server is down) and returns
	// the func that ends it. Loads meanwhile must fail with an error
	// wrapping warehouse.ErrTransient. Nil skips TestTransientError.
	Unavailable func(t *testing.T, in Instance) (restore func())
	// Another, if set, opens a second warehouse over in's database and
	// object store, as another loader process would, closed when t ends.
	// The concurrency tests race it against in.Warehouse; nil races loads
	// of in.Warehouse alone.
	Another func(t *testing.T, in Instance) warehouse.Warehouse
}

// Run runs every test of the suite as a subtest of t.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("warehousetest: Harness.Open is required")
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Append", testAppend},
		{"DuplicateBatchLoadsNothing", testDuplicate},
		{"ConcurrentLoadsOfOneBatchLoadOnce", testConcurrentDuplicates},
		{"ReplaceSwapsTheWindow", testReplace},
		{"OlderRevisionIsSuperseded", testSuperseded},
		{"RacingRevisionsKeepTheNewest", testRacingRevisions},
		{"ConcurrentBatchesOfOneTable", testConcurrentBatches},
		{"ConcurrentWindowsOfOneTable", testConcurrentWindows},
		{"MergeKeepsTheNewestRowPerKey", testMerge},
		{"ReplayReplacesTheEarlierLoad", testReplay},
		{"PostLoadSeesRowsAndParameters", testPostLoad},
		{"SchemaEvolvesByNullableColumns", testSchemaEvolution},
		{"FailedLoadLeavesNothing", testFailedLoadLeavesNothing},
		{"MissingObject", testMissingObject},
		{"PermanentErrors", testPermanentErrors},
		{"TransientError", testTransient},
		{"LoadAfterClose", testLoadAfterClose},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// Appended batches add their rows with the lineage columns; other windows
// and batches are untouched.
func testAppend(t *testing.T, h Harness) {
	e := newEnv(t, h)
	day1 := day0.Add(24 * time.Hour)
	a, b, c := sales(day0, 40, 1), sales(day0, 25, 1000), sales(day1, 7, 2000)
	e.load(e.appendBatch(day0, 0, e.put(e.l1, a), len(a)), 40, false)
	e.load(e.appendBatch(day0, 1, e.put(e.l1, b), len(b)), 25, false)
	e.load(e.appendBatch(day1, 0, e.put(e.l1, c), len(c)), 7, false)

	if got, want := e.window(day0), sumOf(a, b); got != want {
		t.Errorf("window %s: %+v, want %+v", day0, got, want)
	}
	if got, want := e.window(day1), sumOf(c); got != want {
		t.Errorf("window %s: %+v, want %+v", day1, got, want)
	}
	e.db(func(db *sql.DB) error {
		// Lineage: each row carries its batch, window and source sequence.
		var batches, qtyNulls, minSeq, maxSeq int64
		var end time.Time
		err := db.QueryRowContext(e.ctx, `SELECT count(DISTINCT _batch_id), count(*) FILTER (WHERE qty IS NULL),
			min(_source_seq), max(_source_seq), max(_window_end) FROM sales WHERE _window_start = $1`, day0).
			Scan(&batches, &qtyNulls, &minSeq, &maxSeq, &end)
		if err != nil {
			return err
		}
		if batches != 2 || qtyNulls != 20+12 || minSeq != 1 || maxSeq != 1024 || !end.Equal(day1) {
			t.Errorf("window %s: %d batches, %d null qty, seq [%d, %d], window end %s; want 2, 32, [1, 1024], %s",
				day0, batches, qtyNulls, minSeq, maxSeq, end, day1)
		}
		var n int64
		id := messages.BatchID(policyName, day0, 0, 1)
		if err := db.QueryRowContext(e.ctx, `SELECT count(*) FROM sales WHERE _batch_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n != 25 {
			t.Errorf("batch %s: %d rows, want 25", id, n)
		}
		return nil
	})
}

// The same batch id again is a duplicate: the rows the ledger recorded,
// nothing loaded, whatever the new batch holds.
func testDuplicate(t *testing.T, h Harness) {
	e := newEnv(t, h)
	a := sales(day0, 30, 1)
	b := e.appendBatch(day0, 0, e.put(e.l1, a), len(a))
	e.load(b, 30, false)
	e.load(b, 30, true)
	// The same id naming other objects (a re-compaction) is still the
	// batch the ledger knows.
	other := sales(day0, 12, 500)
	b2 := e.appendBatch(day0, 0, e.put(e.l1, other), len(other))
	e.load(b2, 30, true)
	if got, want := e.totals("sales"), sumOf(a); got != want {
		t.Errorf("table after duplicates: %+v, want %+v", got, want)
	}
}

// Loads of one batch id racing each other load it once.
func testConcurrentDuplicates(t *testing.T, h Harness) {
	e := newEnv(t, h)
	a := sales(day0, 50, 1)
	b := e.appendBatch(day0, 0, e.put(e.l1, a), len(a))
	const n = 6
	e.loader(1) // open the second warehouse before the race
	var wg sync.WaitGroup
	type result struct {
		rows int64
		dup  bool
		err  error
	}
	results := make([]result, n)
	for i := range n {
		wg.Go(func() {
			r := &results[i]
			r.rows, r.dup, r.err = e.loader(i).Load(e.ctx, b)
		})
	}
	wg.Wait()
	loaded := 0
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("load %d: %v", i, r.err)
		case r.rows != 50:
			t.Errorf("load %d: %d rows, want 50", i, r.rows)
		case !r.dup:
			loaded++
		}
	}
	if loaded != 1 {
		t.Errorf("%d of %d racing loads loaded the batch, want 1 (the others duplicates)", loaded, n)
	}
	if got, want := e.totals("sales"), sumOf(a); got != want {
		t.Errorf("table: %+v, want %+v", got, want)
	}
}

// A whole-window replace removes every row the policy loaded for the window
// before (appended batches, an earlier revision) and inserts all of its
// objects; the newer revision's rows are the window's; other windows stay.
func testReplace(t *testing.T, h Harness) {
	e := newEnv(t, h)
	day1 := day0.Add(24 * time.Hour)
	a0, a1, other := sales(day0, 40, 1), sales(day0, 30, 100), sales(day1, 7, 500)
	e.load(e.appendBatch(day0, 0, e.put(e.l1, a0), len(a0)), 40, false)
	e.load(e.appendBatch(day0, 1, e.put(e.l1, a1), len(a1)), 30, false)
	e.load(e.appendBatch(day1, 0, e.put(e.l1, other), len(other)), 7, false)

	r0, r1 := sales(day0, 12, 1000), sales(day0, 9, 2000)
	rev1 := e.windowBatch(warehouse.ModeReplace, day0, 1, 21, e.put(e.l1, r0), e.put(e.l1, r1))
	e.load(rev1, 21, false)
	if got, want := e.window(day0), sumOf(r0, r1); got != want {
		t.Errorf("window after revision 1: %+v, want %+v", got, want)
	}
	e.load(rev1, 21, true) // a redelivery
	if got, want := e.window(day0), sumOf(r0, r1); got != want {
		t.Errorf("window after a duplicate of revision 1: %+v, want %+v", got, want)
	}
	r2 := sales(day0, 5, 3000)
	e.load(e.windowBatch(warehouse.ModeReplace, day0, 2, 5, e.put(e.l1, r2)), 5, false)
	if got, want := e.window(day0), sumOf(r2); got != want {
		t.Errorf("window after revision 2: %+v, want %+v (revision 2 alone)", got, want)
	}
	if got, want := e.window(day1), sumOf(other); got != want {
		t.Errorf("other window: %+v, want %+v (untouched)", got, want)
	}
}

// A replace load of a revision older than one already loaded for its
// window is superseded: it changes nothing and returns duplicate=true with
// 0 rows, now and when redelivered; a later revision still loads.
func testSuperseded(t *testing.T, h Harness) {
	e := newEnv(t, h)
	r1, r2, r3 := sales(day0, 12, 1000), sales(day0, 9, 2000), sales(day0, 4, 3000)
	rev1 := e.windowBatch(warehouse.ModeReplace, day0, 1, len(r1), e.put(e.l1, r1))
	e.load(e.windowBatch(warehouse.ModeReplace, day0, 2, len(r2), e.put(e.l1, r2)), 9, false)
	e.load(rev1, 0, true)
	e.load(rev1, 0, true)
	rev1.Replay = 1 // a replay of the older revision is superseded too
	e.load(rev1, 0, true)
	if got, want := e.window(day0), sumOf(r2); got != want {
		t.Errorf("window after an older revision: %+v, want %+v (revision 2 alone)", got, want)
	}
	e.load(e.windowBatch(warehouse.ModeReplace, day0, 3, len(r3), e.put(e.l1, r3)), 4, false)
	if got, want := e.window(day0), sumOf(r3); got != want {
		t.Errorf("window after revision 3: %+v, want %+v", got, want)
	}
}

// Two revisions of one window racing in replace mode end with the newer
// one's rows only, whichever commits first; the newer always loads.
func testRacingRevisions(t *testing.T, h Harness) {
	e := newEnv(t, h)
	const rounds = 4
	e.loader(1) // open the second warehouse before the race
	for i := range rounds {
		day := day0.Add(time.Duration(i) * 24 * time.Hour)
		older, newer := sales(day, 300, uint64(10000*i+1)), sales(day, 200, uint64(10000*i+5000))
		batches := []warehouse.Batch{
			e.windowBatch(warehouse.ModeReplace, day, 1, len(older), e.put(e.l1, older)),
			e.windowBatch(warehouse.ModeReplace, day, 2, len(newer), e.put(e.l1, newer)),
		}
		type result struct {
			rows int64
			dup  bool
			err  error
		}
		var results [2]result
		var wg sync.WaitGroup
		for j := range batches {
			wg.Go(func() {
				r := &results[j]
				r.rows, r.dup, r.err = e.loader(j+i).Load(e.ctx, batches[j])
			})
		}
		wg.Wait()
		for j, r := range results {
			if r.err != nil {
				t.Fatalf("round %d, revision %d: %v", i, j+1, r.err)
			}
		}
		if r := results[1]; r.dup || r.rows != 200 {
			t.Errorf("round %d: newer revision: %d rows, duplicate %v; want 200, false", i, r.rows, r.dup)
		}
		if r := results[0]; r.rows != 300 && !(r.dup && r.rows == 0) {
			t.Errorf("round %d: older revision: %d rows, duplicate %v; want 300 rows loaded, or superseded (0, true)", i, r.rows, r.dup)
		}
		if got, want := e.window(day), sumOf(newer); got != want {
			t.Errorf("round %d: window %+v, want %+v (the newer revision's rows only)", i, got, want)
		}
	}
}

// Different batches of one table, loaded at once into a table that does
// not exist yet, all load: creating the table races nothing.
func testConcurrentBatches(t *testing.T, h Harness) {
	e := newEnv(t, h)
	const n = 6
	var want totals
	batches := make([]warehouse.Batch, n)
	for i := range batches {
		rows := sales(day0, 20+i, uint64(1000*i+1))
		want = want.plus(sumOf(rows))
		batches[i] = e.appendBatch(day0, i, e.put(e.l1, rows), len(rows))
	}
	errs := make([]error, n)
	e.loader(1) // open the second warehouse before the race
	var wg sync.WaitGroup
	for i := range batches {
		wg.Go(func() {
			var rows int64
			var dup bool
			rows, dup, errs[i] = e.loader(i).Load(e.ctx, batches[i])
			if errs[i] == nil && (dup || rows != batches[i].Rows) {
				errs[i] = fmt.Errorf("%d rows, duplicate %v; want %d, false", rows, dup, batches[i].Rows)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := e.totals("sales"); got != want {
		t.Errorf("table: %+v, want %+v", got, want)
	}
}

// loadRetrying loads b, retrying errors that wrap warehouse.ErrTransient
// (a transaction conflict of concurrent loads) as the loader would, and
// counts those retries.
func loadRetrying(ctx context.Context, wh warehouse.Warehouse, b warehouse.Batch, retries *atomic.Int64) (int64, bool, error) {
	for attempt := 0; ; attempt++ {
		rows, dup, err := wh.Load(ctx, b)
		if err == nil || !warehouse.IsTransient(err) || attempt == 20 {
			return rows, dup, err
		}
		retries.Add(1)
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
}

// Loads of different windows of one table at once, as a loader's workers
// run them: replaces of windows that hold rows (their deletes touch one
// table) and merges whose keys overlap across windows all succeed, at
// worst after transient conflicts that the loader retries, and leave what
// loading them one after another would.
func testConcurrentWindows(t *testing.T, h Harness) {
	e := newEnv(t, h)
	const windows = 4
	days := make([]time.Time, windows)
	for i := range days {
		days[i] = day0.Add(time.Duration(i) * 24 * time.Hour)
		rows := sales(days[i], 30, uint64(10000*i+1))
		e.load(e.windowBatch(warehouse.ModeReplace, days[i], 1, len(rows), e.put(e.l1, rows)), int64(len(rows)), false)
	}
	e.loader(1) // open the second warehouse before the race
	var retries atomic.Int64
	// race loads batches at once; checkRows: each must load all its rows
	// (a merge loads only the rows that win).
	race := func(batches []warehouse.Batch, checkRows bool) {
		t.Helper()
		errs := make([]error, len(batches))
		var wg sync.WaitGroup
		for i := range batches {
			wg.Go(func() {
				rows, dup, err := loadRetrying(e.ctx, e.loader(i), batches[i], &retries)
				if err == nil && (dup || checkRows && rows != batches[i].Rows) {
					err = fmt.Errorf("%d rows, duplicate %v; want %d, false", rows, dup, batches[i].Rows)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}

	want := map[time.Time]totals{}
	batches := make([]warehouse.Batch, windows)
	for i, day := range days {
		rows := sales(day, 10+i, uint64(10000*i+5000))
		want[day] = sumOf(rows)
		batches[i] = e.windowBatch(warehouse.ModeReplace, day, 2, len(rows), e.put(e.l1, rows))
	}
	race(batches, true)
	for day, w := range want {
		if got := e.window(day); got != w {
			t.Errorf("window %s: %+v, want %+v (revision 2 only)", day.Format(time.DateOnly), got, w)
		}
	}

	// Merges into a new table's keys store-0..store-4 from every window:
	// the newest row of each key wins, here the last window's.
	e.exec(`DELETE FROM sales`)
	for i, day := range days {
		rows := sales(day, 5, uint64(20000+10*i))
		b := e.windowBatch(warehouse.ModeMerge, day, 3, len(rows), e.put(e.l1, rows))
		b.MergeKey, b.TimeColumn = []string{"store_id"}, "sold_at"
		batches[i] = b
	}
	race(batches, false)
	checkAmounts(t, e, map[string]float64{"store-0": 0.25, "store-1": 1.25, "store-2": 2.25, "store-3": 3.25, "store-4": 4.25})
	if got := e.window(days[windows-1]); got.N != 5 {
		t.Errorf("last window holds %d rows after the merges, want all 5 keys", got.N)
	}
	t.Logf("%d transient failures retried", retries.Load())
}

// Merge keeps one row per key: the newest by the time column, then source
// sequence, whatever order windows load in.
func testMerge(t *testing.T, h Harness) {
	e := newEnv(t, h)
	merge := func(day time.Time, rows []sale) warehouse.Batch {
		b := e.windowBatch(warehouse.ModeMerge, day, 0, len(rows), e.put(e.l1, rows))
		b.MergeKey, b.TimeColumn = []string{"store_id"}, "sold_at"
		return b
	}
	// Stores 0..4, two rows each: the later (i = 5..9) wins.
	e.load(merge(day0, sales(day0, 10, 1)), 5, false)
	want := map[string]float64{"store-0": 5.25, "store-1": 6.25, "store-2": 7.25, "store-3": 8.25, "store-4": 9.25}
	checkAmounts(t, e, want)

	day1 := day0.Add(24 * time.Hour)
	next := []sale{
		{Store: "store-0", Amount: 1000, At: day1.Add(time.Minute), Seq: 50},
		{Store: "store-0", Amount: 2000, At: day1.Add(2 * time.Minute), Seq: 49}, // newer event, older sequence
		{Store: "store-1", Amount: 3000, At: day1.Add(time.Minute), Seq: 51},
	}
	e.load(merge(day1, next), 2, false)
	want["store-0"], want["store-1"] = 2000, 3000
	checkAmounts(t, e, want)

	// An older window loads late: its rows of known keys are older and
	// lose; its new key is added.
	before := day0.Add(-24 * time.Hour)
	old := []sale{
		{Store: "store-0", Amount: 9999, At: before.Add(time.Hour), Seq: 90},
		{Store: "store-9", Amount: 42, At: before.Add(time.Hour), Seq: 91},
	}
	e.load(merge(before, old), 1, false)
	want["store-9"] = 42
	checkAmounts(t, e, want)
}

func checkAmounts(t *testing.T, e *env, want map[string]float64) {
	t.Helper()
	got := e.amounts()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("amount by store:\n got %v\nwant %v", got, want)
	}
}

// A replay (Replay > 0) of a loaded batch is not a duplicate: it replaces
// what the earlier load put in the table, exactly once, whether those rows
// are still there or not; the same replay again is a duplicate.
func testReplay(t *testing.T, h Harness) {
	e := newEnv(t, h)
	a := sales(day0, 30, 1)
	b := e.appendBatch(day0, 0, e.put(e.l1, a), len(a))
	e.load(b, 30, false)
	e.exec(`DELETE FROM sales`) // a user drops the rows; a redelivery does not bring them back
	e.load(b, 30, true)
	if got := e.totals("sales"); got != (totals{}) {
		t.Fatalf("table after a duplicate: %+v, want empty", got)
	}
	for i, step := range []struct {
		replay int
		dup    bool
	}{{1, false}, {1, true}, {2, false}, {1, true}} {
		b.Replay = step.replay
		e.load(b, 30, step.dup)
		if got, want := e.totals("sales"), sumOf(a); got != want {
			t.Errorf("step %d (replay %d): table %+v, want %+v (the batch once)", i, step.replay, got, want)
		}
	}
}

// Post-load statements run in the load's transaction: they see its rows
// and the named parameters, and a reload keeps a rollup exact.
func testPostLoad(t *testing.T, h Harness) {
	e := newEnv(t, h)
	e.exec(`CREATE TABLE daily (window_start TIMESTAMPTZ, store_id VARCHAR, n BIGINT, amount FLOAT8)`,
		`CREATE TABLE load_log (policy VARCHAR, revision BIGINT, window_start TIMESTAMPTZ, window_end TIMESTAMPTZ, n BIGINT)`)
	e.grantPostLoad("sales", "daily", "load_log")
	postLoad := []string{
		`DELETE FROM daily WHERE window_start = $window_start`,
		`INSERT INTO daily SELECT $window_start, store_id, count(*), sum(amount) FROM sales
		 WHERE sold_at >= $window_start AND sold_at < $window_end GROUP BY store_id`,
		`INSERT INTO load_log SELECT CAST($policy AS VARCHAR), CAST($revision AS BIGINT), $window_start, $window_end, count(*)
		 FROM sales WHERE _window_start = $window_start`,
	}
	r0 := sales(day0, 50, 1)
	b := e.windowBatch(warehouse.ModeReplace, day0, 0, len(r0), e.put(e.l1, r0))
	b.PostLoad = postLoad
	e.load(b, 50, false)
	r1 := sales(day0, 20, 100)
	b = e.windowBatch(warehouse.ModeReplace, day0, 1, len(r1), e.put(e.l1, r1))
	b.PostLoad = postLoad
	e.load(b, 20, false)

	e.db(func(db *sql.DB) error {
		var diff, n int64
		var sum float64
		if err := db.QueryRowContext(e.ctx, `SELECT count(*) FROM (
			SELECT _window_start, store_id, count(*), sum(amount) FROM sales GROUP BY _window_start, store_id
			EXCEPT SELECT window_start, store_id, n, amount FROM daily) AS d`).Scan(&diff); err != nil {
			return err
		}
		if err := db.QueryRowContext(e.ctx, `SELECT sum(n), sum(amount) FROM daily`).Scan(&n, &sum); err != nil {
			return err
		}
		if want := sumOf(r1); diff != 0 || n != want.N || sum != want.Sum {
			t.Errorf("rollup differs from the rows in %d groups, holds %d rows summing %v; want 0, %d, %v", diff, n, sum, want.N, want.Sum)
		}
		rows, err := db.QueryContext(e.ctx, `SELECT policy, revision, window_start, window_end, n FROM load_log ORDER BY revision`)
		if err != nil {
			return err
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var policy string
			var rev, n int64
			var start, end time.Time
			if err := rows.Scan(&policy, &rev, &start, &end, &n); err != nil {
				return err
			}
			got = append(got, fmt.Sprintf("%s r%d %s..%s %d", policy, rev, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), n))
		}
		want := []string{"sales r0 2026-11-20T00:00:00Z..2026-11-21T00:00:00Z 50", "sales r1 2026-11-20T00:00:00Z..2026-11-21T00:00:00Z 20"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("load_log:\n got %q\nwant %q", got, want)
		}
		return rows.Err()
	})
}

// A later batch may bring a new nullable column: the table gains it, older
// rows hold NULL. A new required column or a changed type is refused.
func testSchemaEvolution(t *testing.T, h Harness) {
	e := newEnv(t, h)
	a := sales(day0, 10, 1)
	e.load(e.appendBatch(day0, 0, e.put(e.l1, a), len(a)), 10, false)
	b := sales(day0, 4, 100)
	for i := range b {
		b[i].Channel = "web"
	}
	v2 := e.appendBatch(day0, 1, e.put(e.l2, b), len(b))
	v2.PolicyVersion, v2.Columns = 2, records.Columns(e.v2)
	e.load(v2, 4, false)
	e.db(func(db *sql.DB) error {
		var withChannel, web, total int64
		if err := db.QueryRowContext(e.ctx, `SELECT count(channel), count(*) FILTER (WHERE channel = 'web'), count(*) FROM sales`).
			Scan(&withChannel, &web, &total); err != nil {
			return err
		}
		if withChannel != 4 || web != 4 || total != 14 {
			t.Errorf("count(channel), web, count(*) = %d, %d, %d; want 4, 4, 14", withChannel, web, total)
		}
		return nil
	})
	// A batch without the new column still loads (it is nullable).
	c := sales(day0, 3, 200)
	e.load(e.appendBatch(day0, 2, e.put(e.l1, c), len(c)), 3, false)

	for _, tc := range []struct {
		name string
		edit func(cols []messages.Column) []messages.Column
	}{
		{"new required column", func(cols []messages.Column) []messages.Column {
			return append(cols, messages.Column{Name: "region", Type: "string", Required: true})
		}},
		{"changed type", func(cols []messages.Column) []messages.Column {
			for i := range cols {
				if cols[i].Name == "amount" {
					cols[i].Type = "int64"
				}
			}
			return cols
		}},
	} {
		bad := e.appendBatch(day0, 3, e.put(e.l1, sales(day0, 2, 300)), 2)
		bad.Columns = tc.edit(bad.Columns)
		_, _, err := e.in.Warehouse.Load(e.ctx, bad)
		if !errors.Is(err, warehouse.ErrSchemaMismatch) || warehouse.IsTransient(err) {
			t.Errorf("%s: err = %v, want ErrSchemaMismatch (permanent)", tc.name, err)
		}
	}
	if got, want := e.totals("sales"), sumOf(a, b, c); got != want {
		t.Errorf("table: %+v, want %+v", got, want)
	}
}

// A load that fails after its rows were inserted (a post-load statement, a
// wrong row count) leaves no rows and no ledger row: retried, it loads once.
func testFailedLoadLeavesNothing(t *testing.T, h Harness) {
	e := newEnv(t, h)
	a := sales(day0, 20, 1)
	b := e.appendBatch(day0, 0, e.put(e.l1, a), len(a))
	b.PostLoad = []string{`INSERT INTO no_such_table VALUES (1)`}
	_, _, err := e.in.Warehouse.Load(e.ctx, b)
	if !errors.Is(err, warehouse.ErrPostLoad) || warehouse.IsTransient(err) {
		t.Fatalf("failing post-load: err = %v, want ErrPostLoad (permanent)", err)
	}
	if e.tableExists("sales") {
		if got := e.totals("sales"); got != (totals{}) {
			t.Fatalf("table after a failed load: %+v, want no rows", got)
		}
	}
	// Wrong row counts, in both modes that check them differently.
	wrong := b
	wrong.PostLoad, wrong.Rows = nil, 21
	if _, _, err := e.in.Warehouse.Load(e.ctx, wrong); !errors.Is(err, warehouse.ErrRowCount) || warehouse.IsTransient(err) {
		t.Fatalf("append with a wrong row count: err = %v, want ErrRowCount (permanent)", err)
	}
	rep := e.windowBatch(warehouse.ModeReplace, day0, 0, 99, b.Objects[0])
	if _, _, err := e.in.Warehouse.Load(e.ctx, rep); !errors.Is(err, warehouse.ErrRowCount) {
		t.Fatalf("replace with a wrong row count: err = %v, want ErrRowCount", err)
	}
	// No ledger row was left: the retries load, once.
	b.PostLoad = nil
	e.load(b, 20, false)
	e.load(b, 20, true)
	rep.Rows = 20
	e.load(rep, 20, false)
	e.load(rep, 20, true)
	if got, want := e.totals("sales"), sumOf(a); got != want {
		t.Errorf("table: %+v, want %+v", got, want)
	}
}

// An object that is not in the store fails the load, permanently, and a
// whole-window load with one missing object loads none of them.
func testMissingObject(t *testing.T, h Harness) {
	e := newEnv(t, h)
	a := sales(day0, 10, 1)
	present := e.put(e.l1, a)
	missing := "batches/sales/nowhere.parquet"
	for _, b := range []warehouse.Batch{
		e.appendBatch(day0, 0, missing, 10),
		e.windowBatch(warehouse.ModeReplace, day0, 0, 20, present, missing),
	} {
		_, _, err := e.in.Warehouse.Load(e.ctx, b)
		if !errors.Is(err, warehouse.ErrObjectMissing) || warehouse.IsTransient(err) {
			t.Errorf("load of %v: err = %v, want ErrObjectMissing (permanent)", b.Objects, err)
		}
	}
	if e.tableExists("sales") {
		if got := e.totals("sales"); got != (totals{}) {
			t.Errorf("table: %+v, want no rows", got)
		}
	}
	// The store gets the object: the same batch now loads.
	if _, err := e.in.Objects.Put(e.ctx, missing, mustGet(t, e, present)); err != nil {
		t.Fatal(err)
	}
	e.load(e.appendBatch(day0, 0, missing, 10), 10, false)
}

func mustGet(t *testing.T, e *env, key string) []byte {
	t.Helper()
	data, err := e.in.Objects.Get(e.ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Names that are not plain lower-case identifiers, or are lineage columns,
// are refused, permanently, before anything runs.
func testPermanentErrors(t *testing.T, h Harness) {
	e := newEnv(t, h)
	key := e.put(e.l1, sales(day0, 3, 1))
	for _, tc := range []struct {
		name string
		edit func(b *warehouse.Batch)
	}{
		{"table injection", func(b *warehouse.Batch) { b.Table = "sales; DROP TABLE x" }},
		{"quoted table", func(b *warehouse.Batch) { b.Table = `sales"` }},
		{"upper case", func(b *warehouse.Batch) { b.Table = "Sales" }},
		{"three parts", func(b *warehouse.Batch) { b.Table = "a.b.c" }},
		{"schema injection", func(b *warehouse.Batch) { b.Table = "x--.sales" }},
		{"column injection", func(b *warehouse.Batch) {
			b.Columns = append(b.Columns, messages.Column{Name: `a" VARCHAR); DROP TABLE sales; --`, Type: "string"})
		}},
		{"lineage column", func(b *warehouse.Batch) {
			b.Columns = append(b.Columns, messages.Column{Name: "_batch_id", Type: "string"})
		}},
		{"merge key injection", func(b *warehouse.Batch) {
			b.Mode, b.MergeKey = warehouse.ModeMerge, []string{`store_id" = 1; --`}
		}},
	} {
		b := e.appendBatch(day0, 0, key, 3)
		tc.edit(&b)
		_, _, err := e.in.Warehouse.Load(e.ctx, b)
		if !errors.Is(err, warehouse.ErrInvalidIdentifier) || warehouse.IsTransient(err) {
			t.Errorf("%s: err = %v, want ErrInvalidIdentifier (permanent)", tc.name, err)
		}
	}
	// The batch itself was never loaded.
	e.load(e.appendBatch(day0, 0, key, 3), 3, false)
}

// While the warehouse is unavailable a load fails with a transient error
// and loads nothing; once it is back, the same load succeeds, once.
func testTransient(t *testing.T, h Harness) {
	if h.Unavailable == nil {
		t.Skip("the harness cannot make the warehouse unavailable")
	}
	e := newEnv(t, h)
	a, b := sales(day0, 8, 1), sales(day0, 5, 100)
	e.load(e.appendBatch(day0, 0, e.put(e.l1, a), len(a)), 8, false)
	second := e.appendBatch(day0, 1, e.put(e.l1, b), len(b))
	restore := h.Unavailable(t, e.in)
	_, _, err := e.in.Warehouse.Load(e.ctx, second)
	restore()
	if !warehouse.IsTransient(err) {
		t.Fatalf("load while unavailable: err = %v, want one wrapping ErrTransient", err)
	}
	e.load(second, 5, false)
	e.load(second, 5, true)
	if got, want := e.totals("sales"), sumOf(a, b); got != want {
		t.Errorf("table: %+v, want %+v", got, want)
	}
}

// Close is idempotent and later loads fail with ErrClosed.
func testLoadAfterClose(t *testing.T, h Harness) {
	e := newEnv(t, h)
	a := sales(day0, 3, 1)
	b := e.appendBatch(day0, 0, e.put(e.l1, a), len(a))
	if err := e.in.Warehouse.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.in.Warehouse.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := e.in.Warehouse.Load(e.ctx, b); !errors.Is(err, warehouse.ErrClosed) {
		t.Fatalf("Load after Close: err = %v, want ErrClosed", err)
	}
}
