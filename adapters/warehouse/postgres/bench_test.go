package postgres_test

import (
	"context"
	"fmt"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/internal/testpg"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// benchPolicy has eight columns of the common types.
const benchPolicy = `name: bench
source: {subjects: [events.bench.>]}
schema:
  fields:
    - {name: sold_at, type: timestamp, required: true}
    - {name: store_id, type: string, required: true}
    - {name: sku, type: string}
    - {name: amount, type: float64, required: true}
    - {name: qty, type: int64}
    - {name: price, type: "decimal(12,2)"}
    - {name: paid, type: bool}
    - {name: day, type: date}
time: {field: sold_at}
window: {size: 24h}
load: {table: bench}
`

// benchRows is the benchmark's batch size.
const benchRows = 1_000_000

// BenchmarkLoad compares, in one run, Load of a 1,000,000-row batch (the
// Parquet object streamed from the object store through CopyFrom, the
// ledger row in the same transaction) with a plain pgx CopyFrom of the same
// rows, already decoded into Go values in memory, into an identical table.
// The ratio of their rows/s is the measure (target ≥ 0.7):
//
//	go test -run '^$' -bench BenchmarkLoad -benchtime 3x ./adapters/warehouse/postgres/
func BenchmarkLoad(b *testing.B) {
	_, dsn := testpg.Schema(b)
	p, err := windows.ParsePolicy("bench.yaml", []byte(benchPolicy))
	if err != nil {
		b.Fatal(err)
	}
	l, err := records.NewLayout(p)
	if err != nil {
		b.Fatal(err)
	}
	store, err := local.New(filepath.Join(b.TempDir(), "objects"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	rows := benchBatch(b, l, day)
	w, err := store.Create(ctx, "batches/bench/part-0000.parquet")
	if err != nil {
		b.Fatal(err)
	}
	if err := l.WriteFile(w, rows, records.FileOptions{Codec: records.Codec(windows.CompressZstd)}); err != nil {
		b.Fatal(err)
	}
	if _, _, err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	wh := openWarehouse(b, dsn, store)
	batch := warehouse.Batch{Policy: "bench", PolicyVersion: 1, Table: "bench", Columns: records.Columns(p),
		Objects: []string{"batches/bench/part-0000.parquet"}, WindowStart: day, WindowEnd: day.Add(24 * time.Hour),
		Rows: benchRows, Mode: warehouse.ModeAppend}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	// The plain path's rows, decoded once, outside the timer.
	plain, names := plainRows(l, rows, batch)
	if _, err := conn.Exec(ctx, `CREATE TABLE plain (sold_at timestamptz NOT NULL, store_id text NOT NULL, sku text,
		amount double precision NOT NULL, qty bigint, price numeric(12,2), paid boolean, day date,
		_source_seq bigint, _window_start timestamptz, _window_end timestamptz, _batch_id text)`); err != nil {
		b.Fatal(err)
	}
	rows = nil

	var loadTime, plainTime time.Duration
	for i := 0; b.Loop(); i++ {
		{
			if _, err := conn.Exec(ctx, `TRUNCATE plain`); err != nil {
				b.Fatal(err)
			}
		}
		if i > 0 {
			if _, err := conn.Exec(ctx, `TRUNCATE bench`); err != nil {
				b.Fatal(err)
			}
		}
		batch.ID = fmt.Sprintf("bench-%d", i)
		start := time.Now()
		n, dup, err := wh.Load(ctx, batch)
		if err != nil || dup || n != benchRows {
			b.Fatalf("Load: %d rows, duplicate %v, %v", n, dup, err)
		}
		loadTime += time.Since(start)

		start = time.Now()
		tx, err := conn.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n, err = tx.CopyFrom(ctx, pgx.Identifier{"plain"}, names, pgx.CopyFromRows(plain))
		if err != nil || n != benchRows {
			b.Fatalf("plain CopyFrom: %d rows, %v", n, err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		plainTime += time.Since(start)
		if i == 0 {
			// Both paths loaded the same values.
			var diff int64
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM (
				SELECT sold_at, store_id, sku, amount, qty, price, paid, day, _source_seq, _window_start, _window_end FROM bench
				EXCEPT ALL
				SELECT sold_at, store_id, sku, amount, qty, price, paid, day, _source_seq, _window_start, _window_end FROM plain) AS d`).Scan(&diff); err != nil {
				b.Fatal(err)
			}
			if diff != 0 {
				b.Fatalf("%d rows of Load differ from the plain CopyFrom's", diff)
			}
		}
	}
	loads := float64(b.N) * benchRows
	b.ReportMetric(loads/loadTime.Seconds(), "load_rows/s")
	b.ReportMetric(loads/plainTime.Seconds(), "plain_rows/s")
	b.ReportMetric(plainTime.Seconds()/loadTime.Seconds(), "load/plain")
}

// benchBatch decodes benchRows events of the window starting at day.
func benchBatch(b *testing.B, l *records.Layout, day time.Time) []parquet.Row {
	d := records.NewDecoder(l)
	rows := make([]parquet.Row, 0, benchRows)
	for i := range benchRows {
		at := day.Add(time.Duration(i) * 80 * time.Millisecond)
		ev := fmt.Sprintf(`{"sold_at":%q,"store_id":"store-%03d","sku":"sku-%05d","amount":%d.5,"qty":%d,"price":"%d.%02d","paid":%v,"day":"2026-11-20"}`,
			at.Format(time.RFC3339Nano), i%500, i%20000, i%1000, i%7, i%10000, i%100, i%3 == 0)
		row, _, err := d.Decode([]byte(ev), uint64(i+1), at.UnixMicro())
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, row.Clone())
		if i%10000 == 9999 {
			d.Reset()
		}
	}
	l.SortRows(rows)
	return rows
}

// plainRows converts rows to the Go values a plain CopyFrom takes, in the
// plain table's column order.
func plainRows(l *records.Layout, rows []parquet.Row, batch warehouse.Batch) ([][]any, []string) {
	names := []string{"sold_at", "store_id", "sku", "amount", "qty", "price", "paid", "day", "_source_seq", "_window_start", "_window_end", "_batch_id"}
	col := map[string]int{}
	for i, n := range l.ColumnNames() {
		col[n] = i
	}
	out := make([][]any, len(rows))
	for i, r := range rows {
		v := func(name string) parquet.Value { return r[col[name]] }
		out[i] = []any{
			time.UnixMicro(v("sold_at").Int64()), string(v("store_id").ByteArray()), string(v("sku").ByteArray()),
			v("amount").Double(), v("qty").Int64(),
			pgtype.Numeric{Int: bigInt(v("price").Int64()), Exp: -2, Valid: true}, v("paid").Boolean(),
			pgtype.Date{Time: time.Unix(int64(v("day").Int32())*86400, 0).UTC(), Valid: true},
			v("_source_seq").Int64(), batch.WindowStart, batch.WindowEnd, "bench-plain",
		}
	}
	return out, names
}

func bigInt(v int64) *big.Int { return big.NewInt(v) }
