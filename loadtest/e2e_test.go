package loadtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/warehouse/postgres"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testpg"
	"github.com/windrow/windrow/internal/tests3"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// salesPolicy: hourly windows of sales, late events dead-lettered.
const salesPolicy = `name: e2e_sales
source: {stream: E2E, subjects: [events.sales.>]}
` + SalesSchemaYAML + `window: {size: 1h, max_out_of_order: 5m, allowed_lateness: 1m, late: dlq, idle_timeout: 1s}
segment: {max_rows: 20000, max_bytes: 16MiB, max_age: 1s}
output: {sort_by: [store_id, sold_at], target_file_size: 1MiB, row_group_rows: 10000}
load: {table: sales}
`

// visitsPolicy: 30-minute windows of page visits on other subjects, epoch
// millisecond times, late events dropped (and counted).
const visitsPolicy = `name: e2e_visits
source: {stream: E2E, subjects: [events.web.>]}
schema:
  fields:
    - {name: user_id, type: string, required: true}
    - {name: page, type: string}
    - {name: duration_ms, type: int64, required: true}
    - {name: ts, type: timestamp, required: true, unit: ms}
time: {field: ts}
window: {size: 30m, max_out_of_order: 2m, allowed_lateness: 0s, late: drop, idle_timeout: 1s}
segment: {max_rows: 5000, max_age: 500ms}
load: {table: visits}
`

// visits generates page-visit events over [start, start+span).
func visits(seed uint64, n int, start time.Time, span, jitter time.Duration) []Event {
	out := make([]Event, n)
	step := span / time.Duration(n)
	for i := range out {
		t := start.Add(time.Duration(i) * step)
		if jitter > 0 {
			t = t.Add(-time.Duration((uint64(i)*2654435761 + seed) % uint64(jitter)))
		}
		if t.Before(start) {
			t = start
		}
		t = t.Truncate(time.Millisecond)
		d := int64(100 + (i*37)%5000)
		out[i] = Event{
			Subject:  fmt.Sprintf("events.web.site-%d", i%3),
			Data:     []byte(fmt.Sprintf(`{"user_id":"u-%d","page":"/p/%d","duration_ms":%d,"ts":%d}`, i%1000, i%50, d, t.UnixMilli())),
			Time:     t,
			Quantity: d,
		}
	}
	return out
}

// expect is what a policy's table must hold per window.
type expect struct {
	rows  map[string]int64
	qty   map[string]int64
	amt   map[string]float64
	late  map[string]int64
	dlq   map[string]int64 // by reason
	total int64
}

// expectOf puts each event into every window assign gives it (one for
// tumbling windows); total counts events.
func expectOf(events []Event, assign windows.WindowAssigner) *expect {
	e := &expect{rows: map[string]int64{}, qty: map[string]int64{}, amt: map[string]float64{}, late: map[string]int64{}, dlq: map[string]int64{}}
	var ws []windows.Window
	for _, ev := range events {
		if ev.Malformed {
			e.dlq[ev.Reason]++
			continue
		}
		ws = assign.AssignAll(ev.Time, ws[:0])
		for _, win := range ws {
			w := win.ID()
			e.rows[w]++
			e.qty[w] += ev.Quantity
			e.amt[w] += ev.Amount
		}
		e.total++
	}
	return e
}

func openStack(t *testing.T, ctx context.Context, dir string) *stack.Stack {
	t.Helper()
	s, err := stack.Open(ctx, stack.Config{DataDir: dir, Embedded: true, NATSPort: -1, Instance: "e2e", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open stack: %v", err)
	}
	return s
}

func applyPolicy(t *testing.T, ctx context.Context, s *stack.Stack, src string) *windows.Policy {
	t.Helper()
	p, err := s.Policies.Apply(ctx, "test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("apply policy: %v", err)
	}
	return p
}

// waitLoaded waits until the policy has exactly n windows, all LOADED.
func waitLoaded(t *testing.T, ctx context.Context, s *stack.Stack, policy string, n int, timeout time.Duration) []*messages.WindowState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ws, err := inspect.Windows(ctx, s.States, policy)
		if err != nil {
			t.Fatalf("list windows: %v", err)
		}
		loaded := 0
		var b strings.Builder
		for _, w := range ws {
			if w.Status == messages.StatusFailed {
				t.Fatalf("window %s failed: %s", w.ID(), w.Error)
			}
			if w.Status == messages.StatusLoaded {
				loaded++
			}
			fmt.Fprintf(&b, "%s=%s ", w.ID(), w.Status)
		}
		last = b.String()
		if len(ws) == n && loaded == n {
			return ws
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy %s: want %d windows LOADED within %s, have: %s", policy, n, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDrained waits until the policy's collectors have acked everything.
func waitDrained(t *testing.T, ctx context.Context, s *stack.Stack, p *windows.Policy, timeout time.Duration) {
	t.Helper()
	// The consumer's pending count can lag just-published messages (the
	// server signals its consumers after it acks the publish), so "nothing
	// pending" alone may be seen before the collector got them: wait until
	// its ack floor reaches the policy's last message too.
	st, err := s.JS.Stream(ctx, p.Source.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, subj := range p.Source.Subjects {
		m, err := st.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, m.Sequence)
	}
	deadline := time.Now().Add(timeout)
	for {
		lag, err := inspect.CollectorLag(ctx, s.JS, p.Source.Stream, p.Name)
		if err == nil && lag.Pending == 0 && lag.AckPending == 0 && lag.AckFloor >= last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy %s: collectors not drained to sequence %d within %s: %+v %v", p.Name, last, timeout, lag, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type tableRow struct {
	rows, qty int64
	amt       float64
}

// checkTable compares the warehouse table with the expectation, window by
// window, and checks that no source sequence appears twice.
func checkTable(t *testing.T, ctx context.Context, s *stack.Stack, table, qtyCol, amtCol string, want *expect) {
	t.Helper()
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatalf("warehouse: %v", err)
	}
	defer release()
	amtExpr := "0.0"
	if amtCol != "" {
		amtExpr = "sum(" + amtCol + ")"
	}
	// The window id (messages.WindowID) in each dialect.
	windowID := `strftime(_window_start AT TIME ZONE 'UTC', '%Y%m%dT%H%M%SZ')`
	if _, ok := s.Warehouse.(*postgres.Warehouse); ok {
		windowID = `to_char(_window_start AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"')`
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT %s, count(*), CAST(sum(%s) AS BIGINT), %s FROM %s GROUP BY 1 ORDER BY 1`, windowID, qtyCol, amtExpr, table))
	if err != nil {
		t.Fatalf("query %s: %v", table, err)
	}
	got := map[string]tableRow{}
	for rows.Next() {
		var w string
		var r tableRow
		if err := rows.Scan(&w, &r.rows, &r.qty, &r.amt); err != nil {
			t.Fatal(err)
		}
		got[w] = r
	}
	rows.Close()
	if len(got) != len(want.rows) {
		t.Errorf("%s: %d windows in the table, want %d (got %v)", table, len(got), len(want.rows), got)
	}
	for w, n := range want.rows {
		g := got[w]
		if g.rows != n || g.qty != want.qty[w] {
			t.Errorf("%s window %s: %d rows, sum(%s) %d; want %d rows, sum %d", table, w, g.rows, qtyCol, g.qty, n, want.qty[w])
		}
		if amtCol != "" && math.Abs(g.amt-want.amt[w]) > 1e-6*math.Max(1, math.Abs(want.amt[w])) {
			t.Errorf("%s window %s: sum(%s) = %.4f, want %.4f", table, w, amtCol, g.amt, want.amt[w])
		}
	}
	var dups int64
	if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT _source_seq FROM %s GROUP BY 1 HAVING count(*) > 1) AS d`, table)).Scan(&dups); err != nil {
		t.Fatal(err)
	}
	if dups != 0 {
		t.Errorf("%s: %d source sequences appear more than once", table, dups)
	}
}

// TestEndToEnd is the spine's acceptance test: two policies on different
// subjects, 210,000 events over 12 windows, out of order within the bound,
// malformed events, and late events beyond the allowed lateness.
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	s := openStack(t, ctx, dir)
	defer s.Close()
	endToEnd(t, ctx, s)
}

// TestEndToEndOnS3AndPostgres is the same run with segments, batches and
// manifests in a real S3-compatible server (versitygw) and the tables in
// the real PostgreSQL: nothing of the roles' files is local.
func TestEndToEndOnS3AndPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := openS3PostgresStack(t, ctx, "e2e")
	defer s.Close()
	endToEnd(t, ctx, s)
}

// openS3PostgresStack opens an embedded stack whose objects are on a fresh
// S3 server (under prefix) and whose tables are in a fresh PostgreSQL
// schema; the caller closes it.
func openS3PostgresStack(t *testing.T, ctx context.Context, prefix string) *stack.Stack {
	t.Helper()
	srv := tests3.Start(t)
	_, pgURL := testpg.Schema(t)
	// Credentials come from the AWS environment, as in production.
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", tests3.Region)
	objects := "s3://" + srv.Bucket + "/" + prefix + "?endpoint=" + url.QueryEscape(srv.Endpoint)
	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), Embedded: true, NATSPort: -1, Instance: prefix, Logger: testLogger(t),
		Objects: objects, Warehouse: pgURL})
	if err != nil {
		t.Fatalf("open stack: %v", err)
	}
	if _, ok := s.Store.(objstore.LocalFiles); ok {
		s.Close()
		t.Fatalf("object store %s has local files; want S3", s.Store)
	}
	if _, ok := s.Warehouse.(*postgres.Warehouse); !ok {
		s.Close()
		t.Fatalf("warehouse %s is not PostgreSQL", s.Warehouse)
	}
	return s
}

// endToEnd runs the spine's acceptance checks on an opened stack.
func endToEnd(t *testing.T, ctx context.Context, s *stack.Stack) {
	sales := applyPolicy(t, ctx, s, salesPolicy)
	web := applyPolicy(t, ctx, s, visitsPolicy)

	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	salesEvents := Sales{Seed: 7, Events: 150_000, Start: day, Span: 6 * time.Hour, Jitter: 4 * time.Minute, MalformedEvery: 1000}.Generate()
	webEvents := visits(11, 60_000, day.Add(2*time.Hour), 3*time.Hour, 90*time.Second)
	// Interleave the two streams as producers would.
	var all []Event
	for i := 0; i < len(salesEvents) || i < len(webEvents); i++ {
		if i < len(salesEvents) {
			all = append(all, salesEvents[i])
		}
		if i < len(webEvents) {
			all = append(all, webEvents[i])
		}
	}
	// The stream is filled before the services start, so that no pause of
	// the publisher can look like an idle stream (idle_timeout is 1s here).
	if _, err := s.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "E2E", Subjects: []string{"events.>"}}); err != nil {
		t.Fatal(err)
	}
	pub := &Publisher{JS: s.JS, FlushAfter: []string{sales.Name, web.Name}}
	if err := pub.PublishEvents(ctx, all, "e2e"); err != nil {
		t.Fatalf("publish: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	salesAssign, _ := windows.NewAssigner(sales.Window)
	webAssign, _ := windows.NewAssigner(web.Window)
	wantSales := expectOf(salesEvents, salesAssign)
	wantWeb := expectOf(webEvents, webAssign)
	if len(wantSales.rows) != 6 || len(wantWeb.rows) != 6 {
		t.Fatalf("test setup: %d sales windows, %d visit windows; want 6 each", len(wantSales.rows), len(wantWeb.rows))
	}
	waitLoaded(t, ctx, s, sales.Name, 6, 3*time.Minute)
	waitLoaded(t, ctx, s, web.Name, 6, time.Minute)

	// Late events: their windows are sealed and loaded now.
	var late []Event
	for i := 0; i < 7; i++ {
		ev := SaleAt(fmt.Sprintf("late-%d", i), 1+i, day.Add(time.Duration(10+i)*time.Minute), 1, 1)
		late = append(late, ev)
		wantSales.late[salesAssign.Assign(ev.Time).ID()]++
	}
	lateWeb := visits(99, 5, day.Add(2*time.Hour), 10*time.Minute, 0)
	for _, ev := range lateWeb {
		wantWeb.late[webAssign.Assign(ev.Time).ID()]++
	}
	late = append(late, lateWeb...)
	if err := pub.PublishEvents(ctx, late, "e2e-late"); err != nil {
		t.Fatalf("publish late: %v", err)
	}
	waitDrained(t, ctx, s, sales, time.Minute)
	waitDrained(t, ctx, s, web, time.Minute)

	checkTable(t, ctx, s, "sales", "quantity", "amount", wantSales)
	checkTable(t, ctx, s, "visits", "duration_ms", "", wantWeb)

	// Dead letters and late counts.
	for _, c := range []struct {
		p    *windows.Policy
		want *expect
	}{{sales, wantSales}, {web, wantWeb}} {
		dl, err := inspect.CountDeadLetters(ctx, s.JS, c.p.Name)
		if err != nil {
			t.Fatal(err)
		}
		for reason, n := range c.want.dlq {
			if dl.ByReason[reason] != n {
				t.Errorf("%s: %d dead letters with reason %s, want %d", c.p.Name, dl.ByReason[reason], reason, n)
			}
		}
		for w, n := range c.want.late {
			if dl.LateByWindow[w] != n {
				t.Errorf("%s window %s: %d late, want %d", c.p.Name, w, dl.LateByWindow[w], n)
			}
		}
		var lateTotal, wantLate int64
		for _, n := range dl.LateByWindow {
			lateTotal += n
		}
		for _, n := range c.want.late {
			wantLate += n
		}
		if lateTotal != wantLate {
			t.Errorf("%s: %d late in all, want %d", c.p.Name, lateTotal, wantLate)
		}
	}
	if got := wantSales.dlq["malformed_json"] + wantSales.dlq["wrong_type"] + wantSales.dlq["missing_field"]; got != 150 {
		t.Errorf("test setup: %d malformed sales events, want 150", got)
	}

	// windrow's own reconciliation agrees: every window adds up, and
	// published = loaded + dead-lettered + late-dropped for each policy.
	for _, c := range []struct {
		p         *windows.Policy
		published int64
	}{{sales, int64(len(salesEvents)) + 7}, {web, int64(len(webEvents)) + 5}} {
		r, err := inspect.Reconcile(ctx, s.JS, s.States, c.p, s.Warehouse)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || r.Published != c.published {
			t.Errorf("%s: reconciliation %s; problems %v; published %d, want %d", c.p.Name, r.Summary(), r.Problems, r.Published, c.published)
		}
		for _, w := range r.Windows {
			if len(w.Problems) > 0 || w.Warehouse != w.State.Rows {
				t.Errorf("%s window %s: %v (warehouse %d, rows %d)", c.p.Name, w.State.ID(), w.Problems, w.Warehouse, w.State.Rows)
			}
		}
	}

	if _, ok := s.Store.(objstore.LocalFiles); !ok {
		return
	}
	// Every batch file reads back in DuckDB with the declared types and its row count.
	checkParquetTypes(t, ctx, s, sales, map[string]string{
		"store_id": "VARCHAR", "sale_id": "VARCHAR", "sku": "VARCHAR", "quantity": "BIGINT", "amount": "DOUBLE",
		"currency": "VARCHAR", "paid": "BOOLEAN", "sold_at": "TIMESTAMP WITH TIME ZONE", "business_day": "DATE", "_source_seq": "BIGINT",
	})
	checkParquetTypes(t, ctx, s, web, map[string]string{
		"user_id": "VARCHAR", "page": "VARCHAR", "duration_ms": "BIGINT", "ts": "TIMESTAMP WITH TIME ZONE", "_source_seq": "BIGINT",
	})
}

func checkParquetTypes(t *testing.T, ctx context.Context, s *stack.Stack, p *windows.Policy, want map[string]string) {
	t.Helper()
	ws, err := inspect.Windows(ctx, s.States, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	// A DuckDB of its own: the warehouse's may read no files but its load
	// directory (duckdbwh confines it for post-load SQL).
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	files := 0
	for _, w := range ws {
		var rows int64
		for _, b := range batchesOf(t, s.Store, w) {
			files++
			path, err := s.Store.(objstore.LocalFiles).Path(b.Object)
			if err != nil {
				t.Fatal(err)
			}
			r, err := db.QueryContext(ctx, "DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)", path)
			if err != nil {
				t.Fatalf("describe %s: %v", b.Object, err)
			}
			got := map[string]string{}
			for r.Next() {
				var name, typ string
				var null, key, def, extra any
				if err := r.Scan(&name, &typ, &null, &key, &def, &extra); err != nil {
					t.Fatal(err)
				}
				got[name] = typ
			}
			r.Close()
			for col, typ := range want {
				if got[col] != typ {
					t.Errorf("%s: column %s is %q, want %q", b.Object, col, got[col], typ)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%s: columns %v, want %v", b.Object, got, want)
			}
			var n int64
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet(?, hive_partitioning = false)", path).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != b.Rows {
				t.Errorf("%s: %d rows, manifest says %d", b.Object, n, b.Rows)
			}
			rows += n
		}
		if rows != w.Rows {
			t.Errorf("window %s: files hold %d rows, state says %d", w.ID(), rows, w.Rows)
		}
	}
	if files == 0 {
		t.Errorf("%s: no batch files", p.Name)
	}
}
