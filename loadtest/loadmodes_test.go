package loadtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// rollupSQL keeps daily_store_sales, one row per day and store, from the
// loaded rows of the window, in the load's transaction.
var rollupSQL = []string{
	`CREATE TABLE IF NOT EXISTS daily_store_sales (day DATE, store_id VARCHAR, sales BIGINT, quantity BIGINT, revenue DOUBLE)`,
	`DELETE FROM daily_store_sales WHERE day = CAST($window_start AS DATE)`,
	`INSERT INTO daily_store_sales SELECT CAST($window_start AS DATE), store_id, count(*), sum(quantity), sum(amount)
	 FROM rsales WHERE sold_at >= $window_start AND sold_at < $window_end GROUP BY store_id`,
}

func yamlList(items []string) string {
	out := "\n"
	for _, it := range items {
		out += fmt.Sprintf("    - %q\n", it)
	}
	return out
}

// TestReplaceModeWithRollup: daily windows loaded with mode replace (each
// window in one transaction, all its batch files at once) and a post-load
// rollup; the table holds every window's rows exactly and the rollup equals
// a GROUP BY over the raw rows.
func TestReplaceModeWithRollup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	src := `name: rsales
source: {stream: RSALES, subjects: [rsales.>]}
` + SalesSchemaYAML + `window: {size: 24h, max_out_of_order: 5m, idle_timeout: 1s}
segment: {max_rows: 50000, max_age: 1s}
output: {target_file_size: 1MiB, row_group_rows: 10000}
load:
  table: rsales
  mode: replace
  post_load:` + yamlList(rollupSQL)
	p := applyPolicy(t, ctx, s, src)
	defer runRoles(t, ctx, s)()

	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	gen := Sales{Seed: 7, Events: 100_000, Start: day, Span: 48 * time.Hour, Jitter: time.Minute, SubjectPrefix: "rsales"}
	events := slices.Collect(gen.All())
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "rsales"); err != nil {
		t.Fatal(err)
	}
	assign, err := windows.NewAssigner(p.Window)
	if err != nil {
		t.Fatal(err)
	}
	want := expectOf(events, assign)
	ws := waitLoaded(t, ctx, s, p.Name, 2, 2*time.Minute)
	multi := false
	for _, w := range ws {
		if w.BatchCount > 1 {
			multi = true
		}
		t.Logf("window %s: %d rows in %d batches", w.ID(), w.Rows, w.BatchCount)
	}
	if !multi {
		t.Errorf("no window has more than one batch: the whole-window load of several files is not exercised")
	}
	checkTable(t, ctx, s, "rsales", "quantity", "amount", want)
	// The rollup equals a GROUP BY over the raw rows.
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var diff, rollupRows int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM (
		(SELECT CAST(_window_start AS DATE) AS day, store_id, count(*) AS sales, sum(quantity) AS quantity, round(sum(amount), 6) AS revenue FROM rsales GROUP BY ALL
		 EXCEPT SELECT day, store_id, sales, quantity, round(revenue, 6) FROM daily_store_sales)
		UNION ALL
		(SELECT day, store_id, sales, quantity, round(revenue, 6) FROM daily_store_sales
		 EXCEPT SELECT CAST(_window_start AS DATE), store_id, count(*), sum(quantity), round(sum(amount), 6) FROM rsales GROUP BY ALL))`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT sum(sales) FROM daily_store_sales`).Scan(&rollupRows); err != nil {
		t.Fatal(err)
	}
	if diff != 0 || rollupRows != want.total {
		t.Errorf("rollup: %d groups differ from the raw rows, it counts %d sales, want 0 and %d", diff, rollupRows, want.total)
	}
	// The ledger holds one whole-window load per window.
	for _, w := range ws {
		var n int64
		id := messages.WindowLoadID(p.Name, w.WindowStart, w.Revision)
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM _windrow_ledger WHERE batch_id = ?`, id).Scan(&n); err != nil || n != 1 {
			t.Errorf("ledger rows of %s: %d (%v), want 1", id, n, err)
		}
	}
}

// TestMergeModeKeepsTheNewestRowPerKey: orders updated in a later window
// replace their earlier rows (merge_key order_id); the table holds one row
// per order, the newest.
func TestMergeModeKeepsTheNewestRowPerKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p := applyPolicy(t, ctx, s, `name: orders_state
source: {stream: ORDERSTATE, subjects: [orderstate.>]}
schema:
  fields:
    - {name: order_id, type: string, required: true}
    - {name: status, type: string, required: true}
    - {name: amount, type: float64, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h, max_out_of_order: 1m, idle_timeout: 1s}
segment: {max_age: 200ms}
load: {table: orders_state, mode: merge, merge_key: [order_id]}
`)
	defer runRoles(t, ctx, s)()
	h0 := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	var events []Event
	add := func(id, status string, amount float64, at time.Time) {
		events = append(events, Event{Subject: "orderstate.eu", Time: at,
			Data: fmt.Appendf(nil, `{"order_id":%q,"status":%q,"amount":%g,"at":%q}`, id, status, amount, at.Format(time.RFC3339))})
	}
	// Hour 8: 300 orders placed. Hour 9: 100 of them paid, one paid twice
	// (the later event wins). Hour 10: 20 of the paid ones shipped.
	for i := range 300 {
		add(fmt.Sprintf("o-%03d", i), "placed", float64(i), h0.Add(time.Duration(i)*time.Second))
	}
	for i := range 100 {
		add(fmt.Sprintf("o-%03d", i), "paid", float64(i)+0.5, h0.Add(time.Hour+time.Duration(i)*time.Second))
	}
	add("o-000", "paid-corrected", 7, h0.Add(time.Hour+30*time.Minute))
	for i := range 20 {
		add(fmt.Sprintf("o-%03d", i+50), "shipped", float64(i+50)+0.5, h0.Add(2*time.Hour+time.Duration(i)*time.Second))
	}
	// A publish that fails is sent again after the events published
	// meanwhile: MaxOutOfOrder keeps those within the policy's
	// max_out_of_order of it, or hour 8's re-sent events could land after
	// hour 10's and be dropped as late (as they once were in CI).
	pub := &Publisher{JS: s.JS, FlushAfter: []string{p.Name}, MaxOutOfOrder: p.Window.MaxOutOfOrder.D()}
	if err := pub.PublishEvents(ctx, events, "orderstate"); err != nil {
		t.Fatal(err)
	}
	waitLoaded(t, ctx, s, p.Name, 3, time.Minute)
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	counts := map[string]int64{}
	rows, err := db.QueryContext(ctx, `SELECT status, count(*) FROM orders_state GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			t.Fatal(err)
		}
		counts[st] = n
	}
	rows.Close()
	want := map[string]int64{"placed": 200, "paid": 79, "paid-corrected": 1, "shipped": 20}
	for st, n := range want {
		if counts[st] != n {
			t.Errorf("status %s: %d orders, want %d (all: %v)", st, counts[st], n, counts)
		}
	}
	var distinct, total int64
	if err := db.QueryRowContext(ctx, `SELECT count(DISTINCT order_id), count(*) FROM orders_state`).Scan(&distinct, &total); err != nil {
		t.Fatal(err)
	}
	if distinct != 300 || total != 300 {
		t.Errorf("%d rows for %d orders, want one row for each of 300", total, distinct)
	}
}
