package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/internal/testpg"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// typesPolicy has a field of each type: decimals of each Parquet width, a
// date, an object, a list of scalars, a list of objects holding a list.
const typesPolicy = `name: typed
source: {subjects: [events.typed.>]}
schema:
  fields:
    - {name: sold_at, type: timestamp, required: true}
    - {name: store_id, type: string, required: true}
    - {name: paid, type: bool}
    - {name: day, type: date}
    - {name: price, type: "decimal(12,2)", required: true}
    - {name: small, type: "decimal(5,2)"}
    - {name: big, type: "decimal(38,10)"}
    - name: s
      type: object
      fields:
        - {name: a, type: int64}
        - {name: c, type: "decimal(9,3)"}
        - {name: t, type: timestamp}
    - {name: l, type: list, items: {type: int64}}
    - {name: prices, type: list, items: {type: "decimal(6,2)"}}
    - name: lines
      type: list
      items:
        type: object
        fields:
          - {name: sku, type: string}
          - {name: tags, type: list, items: {type: string}}
time: {field: sold_at}
window: {size: 24h}
load: {table: shop.typed}
`

// TestLoadEveryType loads a batch with every column type into a
// schema-qualified table and reads each value back as PostgreSQL renders it.
func TestLoadEveryType(t *testing.T) {
	_, dsn := testpg.Schema(t)
	store, err := local.New(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	w := openWarehouse(t, dsn, store)
	p, l := policyLayout(t, typesPolicy)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	key := putEvents(t, store, l, "typed.parquet",
		`{"sold_at":"2026-11-20T01:00:00Z","store_id":"a","paid":true,"day":"2026-11-19","price":"12.50","small":"-1.05",
		  "big":"-1234567890123456789012345678.0123456789","s":{"a":7,"c":"2.500","t":"2026-11-20T01:02:03.000004Z"},
		  "l":[1,null,3],"prices":["1.10",null],"lines":[{"sku":"x","tags":["p","q"]},{"sku":"y"},null]}`,
		`{"sold_at":"2026-11-20T02:00:00Z","store_id":"b","price":"-0.01","l":[],"s":{}}`,
		`{"sold_at":"2026-11-20T03:00:00Z","store_id":"c","price":"9999999999.99","big":"0"}`)
	b := warehouse.Batch{ID: messages.BatchID("typed", day, 0, 0), Policy: "typed", PolicyVersion: 1, Table: "shop.typed",
		Columns: records.Columns(p), Objects: []string{key}, WindowStart: day, WindowEnd: day.Add(24 * time.Hour), Rows: 3}
	if n, dup, err := w.Load(context.Background(), b); err != nil || dup || n != 3 {
		t.Fatalf("Load = %d, %v, %v; want 3 rows", n, dup, err)
	}
	conn := testpg.Connect(t)
	rows, err := conn.Query(context.Background(), `SELECT store_id, concat_ws(' | ', paid, day, price, small, big, s, l, prices, lines,
		to_char(sold_at AT TIME ZONE 'UTC', 'HH24:MI'))
		FROM shop.typed ORDER BY store_id`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		got[id] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a": `t | 2026-11-19 | 12.50 | -1.05 | -1234567890123456789012345678.0123456789 | ` +
			`{"a": 7, "c": 2.500, "t": "2026-11-20T01:02:03.000004Z"} | {1,NULL,3} | {1.10,NULL} | ` +
			`[{"sku": "x", "tags": ["p", "q"]}, {"sku": "y", "tags": null}, null] | 01:00`,
		"b": `-0.01 | {"a": null, "c": null, "t": null} | {} | 02:00`,
		"c": `9999999999.99 | 0.0000000000 | 03:00`,
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("row %s:\n got %s\nwant %s", id, got[id], w)
		}
	}
	var types string
	if err := conn.QueryRow(context.Background(), `SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
		CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END, ', ' ORDER BY a.attnum)
		FROM pg_attribute a WHERE a.attrelid = 'shop.typed'::regclass AND a.attnum > 0`).Scan(&types); err != nil {
		t.Fatal(err)
	}
	wantTypes := "sold_at timestamp with time zone NOT NULL, store_id text NOT NULL, paid boolean, day date, " +
		"price numeric(12,2) NOT NULL, small numeric(5,2), big numeric(38,10), s jsonb, l bigint[], prices numeric(6,2)[], " +
		"lines jsonb, _source_seq bigint, _window_start timestamp with time zone, _window_end timestamp with time zone, _batch_id text"
	if types != wantTypes {
		t.Errorf("columns:\n got %s\nwant %s", types, wantTypes)
	}
	// A batch whose objects do not hold the columns it names is refused.
	bad := b
	bad.ID = "other"
	bad.Columns = append(bad.Columns[:len(bad.Columns):len(bad.Columns)], messages.Column{Name: "extra", Type: "string"})
	if _, _, err := w.Load(context.Background(), bad); !errors.Is(err, warehouse.ErrSchemaMismatch) || warehouse.IsTransient(err) {
		t.Errorf("object without a batch column: err = %v, want ErrSchemaMismatch", err)
	}
}

func policyLayout(t testing.TB, y string) (*windows.Policy, *records.Layout) {
	t.Helper()
	p, err := windows.ParsePolicy("policy.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, l
}

// putEvents writes events as one batch object, as the compactor does.
func putEvents(t testing.TB, store objstore.Store, l *records.Layout, key string, events ...string) string {
	t.Helper()
	d := records.NewDecoder(l)
	rows := make([]parquet.Row, 0, len(events))
	for i, ev := range events {
		row, _, err := d.Decode([]byte(ev), uint64(i+1), 0)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		rows = append(rows, row.Clone())
	}
	l.SortRows(rows)
	w, err := store.Create(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFile(w, rows, records.FileOptions{}); err != nil {
		t.Fatal(fmt.Errorf("write %s: %w", key, err))
	}
	if _, _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return key
}
