package duckdbwh_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
	"github.com/windrow/windrow/messages"
)

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// saleRow is a batch row as the compactor writes it: policy columns plus _source_seq.
type saleRow struct {
	StoreID   string  `parquet:"store_id"`
	Amount    float64 `parquet:"amount"`
	SoldAt    int64   `parquet:"sold_at,timestamp(microsecond)"`
	Day       int32   `parquet:"day,date"`
	Qty       *int64  `parquet:"qty,optional"`
	Promo     *bool   `parquet:"promo,optional"`
	SourceSeq int64   `parquet:"_source_seq"`
}

// saleRowV2 adds a nullable column, as a newer policy version would.
type saleRowV2 struct {
	saleRow
	Channel *string `parquet:"channel,optional"`
}

func saleColumns() []messages.Column {
	return []messages.Column{
		{Name: "store_id", Type: "string", Required: true},
		{Name: "amount", Type: "float64", Required: true},
		{Name: "sold_at", Type: "timestamp", Required: true},
		{Name: "day", Type: "date", Required: true},
		{Name: "qty", Type: "int64"},
		{Name: "promo", Type: "bool"},
	}
}

func sales(n int, firstSeq int64) []saleRow {
	rows := make([]saleRow, n)
	for i := range rows {
		qty := int64(i)
		rows[i] = saleRow{
			StoreID: fmt.Sprintf("store-%03d", i%5), Amount: float64(i) + 0.25,
			SoldAt: t0.Add(time.Duration(i) * time.Minute).UnixMicro(), Day: int32(t0.Unix() / 86400),
			SourceSeq: firstSeq + int64(i),
		}
		if i%2 == 0 {
			rows[i].Qty = &qty
		}
	}
	return rows
}

// testWarehouse is a warehouse over its own local object store.
type testWarehouse struct {
	*duckdbwh.Warehouse
	store *local.Store
	n     atomic.Int64 // numbers the objects
}

// newKey names a new object: DuckDB caches what it read of a file, so a
// name is never reused.
func (w *testWarehouse) newKey() string {
	return fmt.Sprintf("batches/%04d.parquet", w.n.Add(1))
}

// writeParquet writes rows as a Parquet object in w's store and returns its key.
func writeParquet[T any](t *testing.T, w *testWarehouse, rows []T) string {
	t.Helper()
	var buf bytes.Buffer
	pw := parquet.NewGenericWriter[T](&buf)
	if _, err := pw.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	key := w.newKey()
	if _, err := w.store.Put(context.Background(), key, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	return key
}

func batch(key string, part int, rows int64) warehouse.Batch {
	return warehouse.Batch{
		ID: messages.BatchID("daily_sales", t0, 0, part), Policy: "daily_sales", PolicyVersion: 1,
		Table: "sales", Columns: saleColumns(), Objects: []string{key}, WindowStart: t0, WindowEnd: t0.Add(24 * time.Hour),
		Part: part, Rows: rows,
	}
}

func open(t *testing.T, idle time.Duration) *testWarehouse {
	t.Helper()
	store, err := local.New(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := duckdbwh.Open(duckdbwh.Config{Path: filepath.Join(t.TempDir(), "wh.duckdb"), IdleClose: idle, Threads: 1, Objects: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &testWarehouse{Warehouse: w, store: store}
}

// query runs fn against the warehouse's database.
func query(t *testing.T, w *testWarehouse, fn func(db *sql.DB)) {
	t.Helper()
	db, release, err := w.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	fn(db)
}

func countAndSum(t *testing.T, w *testWarehouse, table string) (n int64, sum float64) {
	t.Helper()
	query(t, w, func(db *sql.DB) {
		if err := db.QueryRow(`SELECT count(*), coalesce(sum(amount), 0) FROM `+table).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
	})
	return n, sum
}

func describe(t *testing.T, w *testWarehouse, table string) map[string]string {
	t.Helper()
	got := map[string]string{}
	query(t, w, func(db *sql.DB) {
		rows, err := db.Query(`SELECT column_name, column_type, "null" FROM (DESCRIBE ` + table + `)`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, typ, null string
			if err := rows.Scan(&name, &typ, &null); err != nil {
				t.Fatal(err)
			}
			got[name] = typ + " " + null
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	})
	return got
}

func TestLoadThenDuplicate(t *testing.T) {
	w := open(t, time.Minute)
	ctx := context.Background()
	const n = 250
	b := batch(writeParquet(t, w, sales(n, 1000)), 0, n)

	rows, dup, err := w.Load(ctx, b)
	if err != nil || dup || rows != n {
		t.Fatalf("Load = %d, %v, %v; want %d, false, nil", rows, dup, err, n)
	}
	wantSum := float64(n*(n-1))/2 + 0.25*n
	if gotN, gotSum := countAndSum(t, w, "sales"); gotN != n || gotSum != wantSum {
		t.Fatalf("count, sum = %d, %v; want %d, %v", gotN, gotSum, n, wantSum)
	}
	wantCols := map[string]string{
		"store_id": "VARCHAR NO", "amount": "DOUBLE NO", "sold_at": "TIMESTAMP WITH TIME ZONE NO",
		"day": "DATE NO", "qty": "BIGINT YES", "promo": "BOOLEAN YES",
		"_source_seq": "BIGINT YES", "_window_start": "TIMESTAMP WITH TIME ZONE YES",
		"_window_end": "TIMESTAMP WITH TIME ZONE YES", "_batch_id": "VARCHAR YES",
	}
	if got := describe(t, w, "sales"); fmt.Sprint(got) != fmt.Sprint(wantCols) {
		t.Fatalf("DESCRIBE sales:\n got %v\nwant %v", got, wantCols)
	}
	query(t, w, func(db *sql.DB) {
		var nulls, minSeq, maxSeq int64
		var start, soldAt time.Time
		var id string
		if err := db.QueryRow(`SELECT count(*) FILTER (WHERE qty IS NULL), min(_source_seq), max(_source_seq),
			min(_window_start), min(sold_at), min(_batch_id) FROM sales`).Scan(&nulls, &minSeq, &maxSeq, &start, &soldAt, &id); err != nil {
			t.Fatal(err)
		}
		if nulls != n/2 || minSeq != 1000 || maxSeq != 1000+n-1 || !start.Equal(t0) || !soldAt.Equal(t0) || id != b.ID {
			t.Fatalf("nulls %d seq [%d,%d] window start %s sold_at %s batch %s", nulls, minSeq, maxSeq, start, soldAt, id)
		}
		var ledgerRows int64
		if err := db.QueryRow(`SELECT rows FROM _windrow_ledger WHERE batch_id = ?`, b.ID).Scan(&ledgerRows); err != nil || ledgerRows != n {
			t.Fatalf("ledger rows = %d, %v", ledgerRows, err)
		}
	})

	rows, dup, err = w.Load(ctx, b)
	if err != nil || !dup || rows != n {
		t.Fatalf("second Load = %d, %v, %v; want %d, true, nil", rows, dup, err, n)
	}
	if gotN, _ := countAndSum(t, w, "sales"); gotN != n {
		t.Fatalf("rows after duplicate load = %d, want %d", gotN, n)
	}
}

func TestRejectsUnsafeIdentifiers(t *testing.T) {
	w := open(t, time.Minute)
	file := writeParquet(t, w, sales(3, 1))
	tests := []struct {
		name string
		edit func(b *warehouse.Batch)
	}{
		{"table injection", func(b *warehouse.Batch) { b.Table = "sales; DROP TABLE x" }},
		{"quoted table", func(b *warehouse.Batch) { b.Table = `sales"` }},
		{"upper case", func(b *warehouse.Batch) { b.Table = "Sales" }},
		{"three parts", func(b *warehouse.Batch) { b.Table = "a.b.c" }},
		{"schema injection", func(b *warehouse.Batch) { b.Table = "x--.sales" }},
		{"ledger table", func(b *warehouse.Batch) { b.Table = "_windrow_ledger" }},
		{"column injection", func(b *warehouse.Batch) {
			b.Columns = append(saleColumns(), messages.Column{Name: `a" VARCHAR); DROP TABLE sales; --`, Type: "string"})
		}},
		{"lineage column", func(b *warehouse.Batch) {
			b.Columns = append(saleColumns(), messages.Column{Name: "_batch_id", Type: "string"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := batch(file, 0, 3)
			tt.edit(&b)
			_, _, err := w.Load(context.Background(), b)
			if !errors.Is(err, duckdbwh.ErrInvalidIdentifier) {
				t.Fatalf("err = %v, want ErrInvalidIdentifier", err)
			}
		})
	}
}

func TestNullableColumnIsAdded(t *testing.T) {
	w := open(t, time.Minute)
	ctx := context.Background()
	if _, _, err := w.Load(ctx, batch(writeParquet(t, w, sales(10, 1)), 0, 10)); err != nil {
		t.Fatal(err)
	}
	v2 := make([]saleRowV2, 4)
	web := "web"
	for i, r := range sales(4, 100) {
		v2[i] = saleRowV2{saleRow: r, Channel: &web}
	}
	b := batch(writeParquet(t, w, v2), 1, 4)
	b.Columns = append(saleColumns(), messages.Column{Name: "channel", Type: "string"})
	if _, _, err := w.Load(ctx, b); err != nil {
		t.Fatalf("load with new column: %v", err)
	}
	if got := describe(t, w, "sales")["channel"]; got != "VARCHAR YES" {
		t.Fatalf("channel column = %q, want VARCHAR YES", got)
	}
	query(t, w, func(db *sql.DB) {
		var withChannel, total int64
		if err := db.QueryRow(`SELECT count(channel), count(*) FROM sales`).Scan(&withChannel, &total); err != nil {
			t.Fatal(err)
		}
		if withChannel != 4 || total != 14 {
			t.Fatalf("count(channel), count(*) = %d, %d; want 4, 14", withChannel, total)
		}
	})

	// A required column the table lacks is refused, and so is a type change.
	b = batch(writeParquet(t, w, v2), 2, 4)
	b.Columns = append(saleColumns(), messages.Column{Name: "channel", Type: "string"}, messages.Column{Name: "region", Type: "string", Required: true})
	if _, _, err := w.Load(ctx, b); !errors.Is(err, duckdbwh.ErrSchemaMismatch) {
		t.Fatalf("required new column: err = %v, want ErrSchemaMismatch", err)
	}
	b = batch(writeParquet(t, w, v2), 2, 4)
	b.Columns = saleColumns()
	b.Columns[1].Type = "int64"
	if _, _, err := w.Load(ctx, b); !errors.Is(err, duckdbwh.ErrSchemaMismatch) {
		t.Fatalf("changed type: err = %v, want ErrSchemaMismatch", err)
	}
}

func TestRowCountMismatchLoadsNothing(t *testing.T) {
	w := open(t, time.Minute)
	b := batch(writeParquet(t, w, sales(5, 1)), 0, 6)
	if _, _, err := w.Load(context.Background(), b); !errors.Is(err, duckdbwh.ErrRowCount) {
		t.Fatalf("err = %v, want ErrRowCount", err)
	}
	query(t, w, func(db *sql.DB) {
		var n int64
		// The whole transaction rolled back: not even the tables were created.
		if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables
			WHERE table_name IN ('sales', '_windrow_ledger')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d tables exist after a failed load, want 0", n)
		}
	})
	b.Rows = 5
	if rows, dup, err := w.Load(context.Background(), b); err != nil || dup || rows != 5 {
		t.Fatalf("retry with the right count = %d, %v, %v", rows, dup, err)
	}
}

func TestSchemaQualifiedTable(t *testing.T) {
	w := open(t, time.Minute)
	b := batch(writeParquet(t, w, sales(7, 1)), 0, 7)
	b.Table = "analytics.sales"
	if _, _, err := w.Load(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if n, _ := countAndSum(t, w, "analytics.sales"); n != 7 {
		t.Fatalf("rows = %d, want 7", n)
	}
}

// holdEnv names the database file the helper process locks.
const holdEnv = "DUCKDBWH_TEST_HOLD"

// TestHelperHoldLock is not a test: run as a child process, it opens the
// database named by $DUCKDBWH_TEST_HOLD, prints "locked" (or "error: …") and
// holds the file until its stdin closes.
func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv(holdEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	db, err := sql.Open("duckdb", path)
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		fmt.Println("error:", strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	defer db.Close()
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
}

// holdLock starts a process that opens path; it returns the process's first
// line ("locked" or "error: …") and a func that ends the process.
func holdLock(t *testing.T, path string) (string, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		stdin.Close()
		cmd.Wait()
	}
	t.Cleanup(stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	return strings.TrimSpace(line), stop
}

// The file is held only while loading: after IdleClose another process can
// open it, and while another process holds it a load fails with
// ErrUnavailable (transient), then succeeds once the file is free.
func TestFileIsReleasedWhenIdleAndLockIsTransient(t *testing.T) {
	w := open(t, 100*time.Millisecond)
	ctx := context.Background()
	if _, _, err := w.Load(ctx, batch(writeParquet(t, w, sales(3, 1)), 0, 3)); err != nil {
		t.Fatal(err)
	}

	var line string
	var stop func()
	deadline := time.Now().Add(10 * time.Second)
	for {
		line, stop = holdLock(t, w.Path())
		if line == "locked" {
			break
		}
		stop()
		if time.Now().After(deadline) {
			t.Fatalf("file still held by the warehouse after idle close: %s", line)
		}
		time.Sleep(50 * time.Millisecond)
	}

	b := batch(writeParquet(t, w, sales(4, 10)), 1, 4)
	_, _, err := w.Load(ctx, b)
	if !errors.Is(err, duckdbwh.ErrUnavailable) || !errors.Is(err, warehouse.ErrTransient) {
		t.Fatalf("load while another process holds the file: err = %v, want ErrUnavailable and warehouse.ErrTransient", err)
	}
	stop()
	if rows, dup, err := w.Load(ctx, b); err != nil || dup || rows != 4 {
		t.Fatalf("load after the file was freed = %d, %v, %v", rows, dup, err)
	}
	if n, _ := countAndSum(t, w, "sales"); n != 7 {
		t.Fatalf("rows = %d, want 7", n)
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := duckdbwh.Open(duckdbwh.Config{IdleClose: -time.Second, Threads: -1})
	for _, want := range []string{"Path: required", "IdleClose", "Threads"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

// read_parquet expands globs; a batch names exactly one file.
func TestRejectsGlobFile(t *testing.T) {
	w := open(t, time.Minute)
	key := writeParquet(t, w, sales(3, 1))
	b := batch(path.Join(path.Dir(key), "*.parquet"), 0, 3)
	if _, _, err := w.Load(context.Background(), b); err == nil || !strings.Contains(err.Error(), "glob") {
		t.Fatalf("err = %v, want a glob error", err)
	}
}
