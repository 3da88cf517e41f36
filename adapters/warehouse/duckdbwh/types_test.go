package duckdbwh_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"pgregory.net/rapid"

	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// typesPolicy has a field of each decimal width, a rename, a default, an
// object and lists of scalars and of objects.
const typesPolicy = `name: typed_sales
source:
  subjects: [events.typed.>]
schema:
  fields:
    - {name: sold_at, type: timestamp, required: true}
    - {name: store_id, from: storeId, type: string, required: true}
    - {name: channel, type: string, required: true, default: web}
    - {name: price, type: "decimal(12,2)", required: true}
    - {name: small, type: "decimal(5,2)"}
    - {name: big, type: "decimal(38,10)"}
    - name: s
      type: object
      fields:
        - {name: a, type: int64}
        - {name: b, type: string}
        - {name: c, type: "decimal(9,3)"}
    - {name: l, type: list, items: {type: int64}}
    - name: lines
      type: list
      items:
        type: object
        fields:
          - {name: sku, type: string}
          - {name: qty, type: int64}
          - {name: tags, type: list, items: {type: string}}
time:
  field: sold_at
window:
  size: 24h
output:
  sort_by: [store_id, sold_at]
load:
  table: typed_sales
`

func parsePolicy(t testing.TB, y string) (*windows.Policy, *records.Layout) {
	t.Helper()
	p, err := windows.ParsePolicy("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, l
}

// stage decodes events (sequence numbers from firstSeq), sorts them and
// writes them as one Parquet file, as the collector stages a segment.
func stage(t testing.TB, l *records.Layout, dir string, firstSeq uint64, events ...string) string {
	t.Helper()
	d := records.NewDecoder(l)
	rows := make([]parquet.Row, 0, len(events))
	for i, e := range events {
		row, _, err := d.Decode([]byte(e), firstSeq+uint64(i), t0.UnixMicro())
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		rows = append(rows, row)
	}
	l.SortRows(rows)
	path := filepath.Join(dir, fmt.Sprintf("segment-%d.parquet", firstSeq))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := l.WriteFile(f, rows, records.FileOptions{Codec: records.Codec(windows.CompressZstd)}); err != nil {
		t.Fatal(err)
	}
	return path
}

// compact merges segments into one batch object in w's store, as the
// compactor does, and returns its key.
func compact(t testing.TB, w *testWarehouse, l *records.Layout, segments ...string) (string, int64) {
	t.Helper()
	var files []*parquet.File
	for _, s := range segments {
		f, err := os.Open(s)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		pf, err := l.OpenFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, pf)
	}
	key := w.newKey()
	out, err := w.store.Create(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort() // no-op after Commit
	pw := l.NewWriter(out, records.FileOptions{Codec: records.Codec(windows.CompressZstd)})
	stats, err := l.Merge(files, func(rows []parquet.Row) error {
		_, err := pw.WriteRows(rows)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	return key, stats.Rows
}

func typedBatch(p *windows.Policy, key string, rows int64) warehouse.Batch {
	return warehouse.Batch{
		ID: messages.BatchID(p.Name, t0, 0, 0), Policy: p.Name, PolicyVersion: 1,
		Table: p.Load.Table, Columns: records.Columns(p), Objects: []string{key}, WindowStart: t0, WindowEnd: t0.Add(24 * time.Hour),
		Rows: rows,
	}
}

// TestLoadDecimalNestedRenamedDefaulted: events → segments → Merge (which
// drops a redelivered event) → batch → DuckDB; every new type reads back
// exactly, in the column type the docs promise.
func TestLoadDecimalNestedRenamedDefaulted(t *testing.T) {
	p, l := parsePolicy(t, typesPolicy)
	dir := t.TempDir()
	ev := func(sec int, store, rest string) string {
		return fmt.Sprintf(`{"sold_at":%q,"storeId":%q%s}`, t0.Add(time.Duration(sec)*time.Second).Format(time.RFC3339), store, rest)
	}
	seg1 := stage(t, l, dir, 1,
		ev(1, "s1", `,"price":0.1,"small":"-999.99","big":"1234567890123456789012345678.0123456789","s":{"a":1,"b":"x","c":1.5},"l":[1,2,3],"lines":[{"sku":"latte","qty":2,"tags":["hot","large"]},{"sku":"tea","qty":1,"tags":[]}]`),
		ev(2, "s2", `,"price":"0.2","channel":"app","big":-0.0000000001,"s":{"b":"y"},"l":[],"lines":null`),
		ev(3, "s1", `,"price":1e2,"channel":null,"l":[null,5],"lines":[{"tags":null},null]`),
	)
	// A second segment repeats sequence 2 (a redelivery).
	seg2 := stage(t, l, dir, 2,
		ev(2, "s2", `,"price":"0.2","channel":"app","big":-0.0000000001,"s":{"b":"y"},"l":[],"lines":null`),
	)
	seg3 := stage(t, l, dir, 4,
		ev(4, "s3", `,"price":"-0.30","s":null,"lines":[{"sku":"bagel","qty":3,"tags":["x"]}]`),
	)
	w := open(t, time.Minute)
	file, n := compact(t, w, l, seg1, seg2, seg3)
	if n != 4 {
		t.Fatalf("merged %d rows, want 4", n)
	}
	if rows, _, err := w.Load(context.Background(), typedBatch(p, file, n)); err != nil || rows != 4 {
		t.Fatalf("Load = %d, %v", rows, err)
	}
	wantCols := map[string]string{
		"sold_at": "TIMESTAMP WITH TIME ZONE NO", "store_id": "VARCHAR NO", "channel": "VARCHAR NO",
		"price": "DECIMAL(12,2) NO", "small": "DECIMAL(5,2) YES", "big": "DECIMAL(38,10) YES",
		"s":           "STRUCT(a BIGINT, b VARCHAR, c DECIMAL(9,3)) YES",
		"l":           "BIGINT[] YES",
		"lines":       "STRUCT(sku VARCHAR, qty BIGINT, tags VARCHAR[])[] YES",
		"_source_seq": "BIGINT YES", "_window_start": "TIMESTAMP WITH TIME ZONE YES",
		"_window_end": "TIMESTAMP WITH TIME ZONE YES", "_batch_id": "VARCHAR YES",
	}
	if got := describe(t, w, p.Load.Table); fmt.Sprint(got) != fmt.Sprint(wantCols) {
		t.Fatalf("DESCRIBE:\n got %v\nwant %v", got, wantCols)
	}
	query(t, w, func(db *sql.DB) {
		// 0.1 + 0.2 + 100 - 0.30 is exactly 100.00 in DECIMAL, not 100.00000000000001.
		var sum, typ, big string
		if err := db.QueryRow(`SELECT sum(price)::VARCHAR, typeof(sum(price)), sum(big)::VARCHAR FROM typed_sales`).Scan(&sum, &typ, &big); err != nil {
			t.Fatal(err)
		}
		if sum != "100.00" || typ != "DECIMAL(38,2)" || big != "1234567890123456789012345678.0123456788" {
			t.Fatalf("sum(price) = %s (%s), sum(big) = %s", sum, typ, big)
		}
		rows, err := db.Query(`SELECT _source_seq, store_id, channel, small::VARCHAR, s.a, s.b, s.c::VARCHAR, s IS NULL,
			list_sum(l), len(l), l IS NULL, len(lines), lines[1].sku, lines[1].qty, array_to_string(lines[1].tags, '+'), lines[1].tags IS NULL
			FROM typed_sales ORDER BY _source_seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var seq int64
			var store, channel string
			var small, b, c, sku, tags sql.NullString
			var a, lsum, llen, nlines, qty sql.NullInt64
			var sNull, lNull, tagsNull sql.NullBool
			if err := rows.Scan(&seq, &store, &channel, &small, &a, &b, &c, &sNull, &lsum, &llen, &lNull, &nlines, &sku, &qty, &tags, &tagsNull); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d %s %s small=%v s=(%v %v %v null=%v) l=(sum %v len %v null=%v) lines=(%v %v %v %v tagsnull=%v)",
				seq, store, channel, str(small), i64(a), str(b), str(c), sNull.Bool, i64(lsum), i64(llen), lNull.Bool, i64(nlines), str(sku), i64(qty), str(tags), tagsNull.Bool))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"1 s1 web small=-999.99 s=(1 x 1.500 null=false) l=(sum 6 len 3 null=false) lines=(2 latte 2 hot+large tagsnull=false)",
			"2 s2 app small=NULL s=(NULL y NULL null=false) l=(sum NULL len 0 null=false) lines=(NULL NULL NULL NULL tagsnull=true)",
			"3 s1 web small=NULL s=(NULL NULL NULL null=true) l=(sum 5 len 2 null=false) lines=(2 NULL NULL NULL tagsnull=true)",
			"4 s3 web small=NULL s=(NULL NULL NULL null=true) l=(sum NULL len NULL null=true) lines=(1 bagel 3 x tagsnull=false)",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		var second sql.NullBool
		if err := db.QueryRow(`SELECT lines[2] IS NULL FROM typed_sales WHERE _source_seq = 3`).Scan(&second); err != nil || !second.Bool {
			t.Fatalf("a null element of lines: IS NULL = %v, %v", second, err)
		}
	})
}

func str(s sql.NullString) string {
	if !s.Valid {
		return "NULL"
	}
	return s.String
}

func i64(n sql.NullInt64) string {
	if !n.Valid {
		return "NULL"
	}
	return fmt.Sprint(n.Int64)
}

// TestDecimalSumIsExact: decimal text → decoder → Parquet (INT32, INT64 and
// FIXED_LEN_BYTE_ARRAY widths) → DuckDB SUM equals the exact big.Rat sum.
func TestDecimalSumIsExact(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, typ := range []struct{ p, s int }{{9, 2}, {18, 4}, {38, 10}, {38, 0}, {1, 1}} {
		t.Run(fmt.Sprintf("decimal(%d,%d)", typ.p, typ.s), func(t *testing.T) {
			_, l := parsePolicy(t, fmt.Sprintf(`name: dec
source: {subjects: [events.dec]}
schema:
  fields:
    - {name: x, type: "decimal(%d,%d)"}
time: {mode: ingest}
window: {size: 1h}
load: {table: dec}
`, typ.p, typ.s))
			dir := t.TempDir()
			var files uint64
			rapid.Check(t, func(rt *rapid.T) {
				n := rapid.IntRange(1, 40).Draw(rt, "n")
				events := make([]string, n)
				sum := new(big.Rat)
				for i := range events {
					text := decimalText(rt, typ.p, typ.s)
					r, ok := new(big.Rat).SetString(text)
					if !ok {
						rt.Fatalf("big.Rat does not read %q", text)
					}
					sum.Add(sum, r)
					if rapid.Bool().Draw(rt, "quoted") {
						text = `"` + text + `"`
					}
					events[i] = `{"x":` + text + `}`
				}
				files++ // a new name each time: DuckDB caches what it read of a file
				file := stage(t, l, dir, files*1000, events...)
				var got string
				if err := db.QueryRow(`SELECT sum(x)::VARCHAR FROM read_parquet(?)`, file).Scan(&got); err != nil {
					rt.Fatal(err)
				}
				g, ok := new(big.Rat).SetString(got)
				if !ok || g.Cmp(sum) != 0 {
					rt.Fatalf("DuckDB sum %s, exact sum %s", got, sum.FloatString(typ.s))
				}
			})
		})
	}
}

// decimalText draws a number that fits decimal(p,s), in one of the
// spellings the decoder reads exactly. At precision 37 and 38 it leaves two
// digits of headroom: DuckDB's SUM of DECIMAL(38,s) is DECIMAL(38,s) and
// fails on overflow.
func decimalText(t *rapid.T, p, s int) string {
	maxInt := p - s
	if p > 36 {
		maxInt = max(0, 36-s)
	}
	intDigits := rapid.IntRange(0, maxInt).Draw(t, "int digits")
	fracDigits := rapid.IntRange(0, s).Draw(t, "frac digits")
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + rapid.IntRange(0, 9).Draw(t, "digit")))
		}
		return b.String()
	}
	ip := digits(intDigits)
	if ip == "" {
		ip = "0"
	}
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	text := ip
	if fracDigits > 0 {
		text += "." + digits(fracDigits)
		if rapid.Bool().Draw(t, "trailing zeros") {
			text += "000" // more digits than the scale, all zero: still exact
		}
	}
	if rapid.Bool().Draw(t, "negative") {
		text = "-" + text
	}
	return text
}

// TestRefusedChangesNameColumnAndTypes: a change the table cannot take is
// refused with the table, the column, both types and what would be allowed.
func TestRefusedChangesNameColumnAndTypes(t *testing.T) {
	w := open(t, time.Minute)
	dir := t.TempDir()
	p1, l1 := parsePolicy(t, typesPolicy)
	file, n := compact(t, w, l1, stage(t, l1, dir, 1, `{"sold_at":"2026-11-20T00:00:00Z","storeId":"s","price":1}`))
	if _, _, err := w.Load(context.Background(), typedBatch(p1, file, n)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"decimal scale", `{name: small, type: "decimal(5,2)"}`, `{name: small, type: "decimal(6,3)"}`,
			[]string{`table typed_sales column "small" is DECIMAL(5,2) in the table, but the batch has DECIMAL(6,3) (only`}},
		{"object member added", `{name: c, type: "decimal(9,3)"}`, "{name: c, type: \"decimal(9,3)\"}\n        - {name: d, type: bool}",
			[]string{`column "s" is STRUCT(a BIGINT, b VARCHAR, c DECIMAL(9,3)) in the table, but the batch has STRUCT("a" BIGINT, "b" VARCHAR, "c" DECIMAL(9,3), "d" BOOLEAN) (policy type object<a:int64,b:string,c:decimal(9,3),d:bool>)`}},
		{"list element type", `{name: l, type: list, items: {type: int64}}`, `{name: l, type: list, items: {type: string}}`,
			[]string{`column "l" is BIGINT[] in the table, but the batch has VARCHAR[] (policy type list<string>)`}},
		{"new required column", `{name: big, type: "decimal(38,10)"}`, "{name: big, type: \"decimal(38,10)\"}\n    - {name: region, type: string, required: true, default: eu}",
			[]string{`table typed_sales has no column "region"`, `VARCHAR NOT NULL`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(typesPolicy, tc.from, tc.to, 1)
			if y == typesPolicy {
				t.Fatalf("%s is not in the policy", tc.from)
			}
			p2, l2 := parsePolicy(t, y)
			sub := t.TempDir()
			file, n := compact(t, w, l2, stage(t, l2, sub, 10, `{"sold_at":"2026-11-20T00:00:00Z","storeId":"s","price":1}`))
			b := typedBatch(p2, file, n)
			b.ID = messages.BatchID(p2.Name, t0, 0, 1)
			_, _, err := w.Load(context.Background(), b)
			if !errors.Is(err, duckdbwh.ErrSchemaMismatch) {
				t.Fatalf("Load = %v, want ErrSchemaMismatch", err)
			}
			for _, s := range append(tc.want, "only new nullable columns can be added; use a new table or migrate by hand") {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q\ndoes not contain %q", err, s)
				}
			}
		})
	}
	// A new nullable column (here a decimal, and an object) is added.
	y := strings.Replace(typesPolicy, `{name: big, type: "decimal(38,10)"}`, "{name: big, type: \"decimal(38,10)\"}\n    - {name: tax, type: \"decimal(7,2)\"}\n    - {name: meta, type: object, fields: [{name: k, type: string}]}", 1)
	p3, l3 := parsePolicy(t, y)
	sub := t.TempDir()
	file, n = compact(t, w, l3, stage(t, l3, sub, 20, `{"sold_at":"2026-11-20T00:00:00Z","storeId":"s","price":1,"tax":"0.07","meta":{"k":"v"}}`))
	b := typedBatch(p3, file, n)
	b.ID = messages.BatchID(p3.Name, t0, 0, 2)
	if _, _, err := w.Load(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := describe(t, w, "typed_sales"); got["tax"] != "DECIMAL(7,2) YES" || got["meta"] != "STRUCT(k VARCHAR) YES" {
		t.Fatalf("added columns: tax %q, meta %q", got["tax"], got["meta"])
	}
}
