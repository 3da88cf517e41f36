package warehousetest

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// salesPolicy is the policy of the suite's batches: daily windows of sales
// loaded into table sales.
const salesPolicy = `name: sales
source: {subjects: [events.sales.>]}
schema:
  fields:
    - {name: sold_at, type: timestamp, required: true}
    - {name: store_id, type: string, required: true}
    - {name: amount, type: float64, required: true}
    - {name: qty, type: int64}
time: {field: sold_at}
window: {size: 24h}
load: {table: sales}
`

// salesPolicyV2 adds a nullable column, as a newer policy version would.
const salesPolicyV2 = `name: sales
source: {subjects: [events.sales.>]}
schema:
  fields:
    - {name: sold_at, type: timestamp, required: true}
    - {name: store_id, type: string, required: true}
    - {name: amount, type: float64, required: true}
    - {name: qty, type: int64}
    - {name: channel, type: string}
time: {field: sold_at}
window: {size: 24h}
load: {table: sales}
`

const policyName = "sales"

// day0 is the first window of the suite's batches.
var day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// sale is one event of a batch.
type sale struct {
	Store   string
	Amount  float64
	At      time.Time
	Qty     int64 // 0: null
	Channel string
	Seq     uint64
}

func (s sale) json() string {
	out := fmt.Sprintf(`{"sold_at":%q,"store_id":%q,"amount":%v`, s.At.Format(time.RFC3339Nano), s.Store, s.Amount)
	if s.Qty != 0 {
		out += fmt.Sprintf(`,"qty":%d`, s.Qty)
	}
	if s.Channel != "" {
		out += fmt.Sprintf(`,"channel":%q`, s.Channel)
	}
	return out + "}"
}

// sales returns n events of the window starting at day: stores store-0 to
// store-4 in turn, amounts i+0.25 (exact in binary floating point), one a
// minute, sequence numbers from firstSeq, qty set on every other.
func sales(day time.Time, n int, firstSeq uint64) []sale {
	out := make([]sale, n)
	for i := range out {
		out[i] = sale{Store: fmt.Sprintf("store-%d", i%5), Amount: float64(i) + 0.25,
			At: day.Add(time.Duration(i) * time.Minute), Seq: firstSeq + uint64(i)}
		if i%2 == 0 {
			out[i].Qty = int64(i + 1)
		}
	}
	return out
}

// totals is a row count and the sum of amount.
type totals struct {
	N   int64
	Sum float64
}

func sumOf(ss ...[]sale) totals {
	var t totals
	for _, s := range ss {
		for _, r := range s {
			t.N++
			t.Sum += r.Amount
		}
	}
	return t
}

func (t totals) plus(o totals) totals { return totals{t.N + o.N, t.Sum + o.Sum} }

// env is one test's warehouse, store and policy layouts.
type env struct {
	t   *testing.T
	ctx context.Context
	in  Instance
	v1  *windows.Policy
	l1  *records.Layout
	v2  *windows.Policy
	l2  *records.Layout
	obj int // numbers the objects written

	another warehouse.Warehouse // Harness.Another's, opened on first use
	h       Harness
}

// loader is the warehouse the i-th of racing loads uses: in.Warehouse for
// even i, for odd i the harness's second warehouse if it has one. Call it
// once before starting goroutines: the first call opens that warehouse.
func (e *env) loader(i int) warehouse.Warehouse {
	if i%2 == 0 || e.h.Another == nil {
		return e.in.Warehouse
	}
	if e.another == nil {
		e.another = e.h.Another(e.t, e.in)
	}
	return e.another
}

func newEnv(t *testing.T, h Harness) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), in: h.Open(t), h: h}
	e.v1, e.l1 = layout(t, salesPolicy)
	e.v2, e.l2 = layout(t, salesPolicyV2)
	return e
}

func layout(t *testing.T, y string) (*windows.Policy, *records.Layout) {
	t.Helper()
	p, err := windows.ParsePolicy("sales.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, l
}

// put writes events as one batch object, the way the compactor writes
// them (decoded, sorted by the layout, zstd), and returns its key.
func (e *env) put(l *records.Layout, events []sale) string {
	e.t.Helper()
	d := records.NewDecoder(l)
	rows := make([]parquet.Row, 0, len(events))
	for i, ev := range events {
		row, _, err := d.Decode([]byte(ev.json()), ev.Seq, ev.At.UnixMicro())
		if err != nil {
			e.t.Fatalf("event %d: %v", i, err)
		}
		rows = append(rows, row.Clone())
	}
	l.SortRows(rows)
	e.obj++
	key := fmt.Sprintf("batches/%s/part-%04d.parquet", policyName, e.obj)
	w, err := e.in.Objects.Create(e.ctx, key)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := l.WriteFile(w, rows, records.FileOptions{Codec: records.Codec(windows.CompressZstd)}); err != nil {
		w.Abort()
		e.t.Fatal(err)
	}
	if _, _, err := w.Commit(); err != nil {
		e.t.Fatal(err)
	}
	return key
}

// appendBatch is the append-mode batch of one object: part of the window
// starting at day.
func (e *env) appendBatch(day time.Time, part int, key string, rows int) warehouse.Batch {
	return warehouse.Batch{
		ID: messages.BatchID(policyName, day, 0, part), Policy: policyName, PolicyVersion: 1,
		Table: "sales", Columns: records.Columns(e.v1), Objects: []string{key},
		WindowStart: day, WindowEnd: day.Add(24 * time.Hour), Part: part, Rows: int64(rows),
		Mode: warehouse.ModeAppend,
	}
}

// windowBatch is a whole-window load (modes replace and merge) of a
// revision of the window starting at day.
func (e *env) windowBatch(mode string, day time.Time, revision int, rows int, keys ...string) warehouse.Batch {
	return warehouse.Batch{
		ID: messages.WindowLoadID(policyName, day, revision), Policy: policyName, PolicyVersion: 1,
		Table: "sales", Columns: records.Columns(e.v1), Objects: keys,
		WindowStart: day, WindowEnd: day.Add(24 * time.Hour), Revision: revision, Rows: int64(rows),
		Mode: mode,
	}
}

// load loads b and requires it to succeed with the given rows and duplicate flag.
func (e *env) load(b warehouse.Batch, wantRows int64, wantDup bool) {
	e.t.Helper()
	rows, dup, err := e.in.Warehouse.Load(e.ctx, b)
	if err != nil || rows != wantRows || dup != wantDup {
		e.t.Fatalf("Load(%s) = %d rows, duplicate %v, err %v; want %d rows, duplicate %v", b.ID, rows, dup, err, wantRows, wantDup)
	}
}

// db runs fn with a handle of the warehouse's database.
func (e *env) db(fn func(db *sql.DB) error) {
	e.t.Helper()
	db, release, err := e.in.DB(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer release()
	if err := fn(db); err != nil {
		e.t.Fatal(err)
	}
}

// exec runs statements (DDL of a post-load target, a user's delete).
func (e *env) exec(stmts ...string) {
	e.t.Helper()
	e.db(func(db *sql.DB) error {
		for _, s := range stmts {
			if _, err := db.ExecContext(e.ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
}

// grantPostLoad lets post-load SQL of loads into table change tables
// (Instance.GrantPostLoad), if the warehouse needs it.
func (e *env) grantPostLoad(table string, tables ...string) {
	e.t.Helper()
	if e.in.GrantPostLoad == nil {
		return
	}
	if err := e.in.GrantPostLoad(e.ctx, table, tables...); err != nil {
		e.t.Fatalf("grant post-load of %s on %v: %v", table, tables, err)
	}
}

// totals counts the rows of table and sums their amount; a missing table
// is an error.
func (e *env) totals(table string) totals {
	e.t.Helper()
	var t totals
	e.db(func(db *sql.DB) error {
		return db.QueryRowContext(e.ctx, `SELECT count(*), coalesce(sum(amount), 0) FROM `+table).Scan(&t.N, &t.Sum)
	})
	return t
}

// window counts the rows of the window starting at day and sums their amount.
func (e *env) window(day time.Time) totals {
	e.t.Helper()
	var t totals
	e.db(func(db *sql.DB) error {
		return db.QueryRowContext(e.ctx, `SELECT count(*), coalesce(sum(amount), 0) FROM sales WHERE _window_start = $1`, day).Scan(&t.N, &t.Sum)
	})
	return t
}

// tableExists reports whether the warehouse has a table of that name.
func (e *env) tableExists(name string) bool {
	e.t.Helper()
	var n int
	e.db(func(db *sql.DB) error {
		return db.QueryRowContext(e.ctx, `SELECT count(*) FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_name = $1`, name).Scan(&n)
	})
	return n > 0
}

// amounts is the amount of each store_id; a store twice fails the test.
func (e *env) amounts() map[string]float64 {
	e.t.Helper()
	got := map[string]float64{}
	e.db(func(db *sql.DB) error {
		rows, err := db.QueryContext(e.ctx, `SELECT store_id, amount FROM sales`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var a float64
			if err := rows.Scan(&k, &a); err != nil {
				return err
			}
			if _, seen := got[k]; seen {
				e.t.Errorf("store %s twice", k)
			}
			got[k] = a
		}
		return rows.Err()
	})
	return got
}
