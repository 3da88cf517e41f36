package records

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/windows"
)

// eventFor is the all_types event of source sequence seq: the same sequence
// always gives the same event, as a redelivery does. Every type appears, with
// NULLs, empty strings, negative times and long strings (several pages per
// column chunk).
func eventFor(seq uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"s":"store-%02d","n":%d,"ts":"2026-03-01T%02d:%02d:00.%06dZ"`, seq%7, int64(seq)*-3, seq%24, seq%60, seq*7919%1_000_000)
	if seq%5 != 0 {
		fmt.Fprintf(&b, `,"i":%d`, int64(seq)<<40)
	}
	switch seq % 4 {
	case 0:
		b.WriteString(`,"f":null`)
	case 1:
		fmt.Fprintf(&b, `,"f":%d.25`, seq)
	case 2:
		fmt.Fprintf(&b, `,"f":-%de-3`, seq)
	}
	if seq%3 != 0 {
		fmt.Fprintf(&b, `,"b":%t`, seq%2 == 0)
	}
	if seq%6 != 0 {
		fmt.Fprintf(&b, `,"ts_s":%d`, -int64(seq)*86400)
	}
	if seq%7 != 0 {
		fmt.Fprintf(&b, `,"ts_ns":%d`, int64(seq)*1_000_000_007)
	}
	if seq%8 != 0 {
		fmt.Fprintf(&b, `,"d":"2026-02-%02d"`, 1+seq%28)
	}
	switch seq % 9 {
	case 0:
	case 1:
		b.WriteString(`,"o":""`)
	default:
		fmt.Fprintf(&b, `,"o":"%s-é"`, strings.Repeat(fmt.Sprint(seq), 80))
	}
	b.WriteString("}")
	return b.String()
}

// segment decodes the events of seqs with a decoder of its own, sorts the
// rows by Compare and writes them as one snappy Parquet file.
func segment(t *testing.T, l *Layout, seqs []uint64, opts FileOptions) []byte {
	t.Helper()
	d := NewDecoder(l)
	rows := make([]parquet.Row, 0, len(seqs))
	for _, seq := range seqs {
		row, _, err := d.Decode([]byte(eventFor(seq)), seq, 0)
		if err != nil {
			t.Fatalf("decode event %d: %v", seq, err)
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, l.Compare)
	var buf bytes.Buffer
	if err := l.WriteFile(&buf, rows, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func openAll(t testing.TB, l *Layout, datas ...[]byte) []*parquet.File {
	t.Helper()
	files := make([]*parquet.File, len(datas))
	for i, data := range datas {
		f, err := l.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		files[i] = f
	}
	return files
}

// rowValues is a row as comparable Go values, with each value's column
// index and definition level.
func rowValues(row parquet.Row) []string {
	out := make([]string, len(row))
	for c, v := range row {
		out[c] = fmt.Sprintf("%#v col=%d def=%d", valueOf(v), v.Column(), v.DefinitionLevel())
	}
	return out
}

func TestWriteOpenMergeRoundTrip(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	snappy := Codec(windows.CompressSnappy)
	// More than 2*chunkRows rows per file so that refills of the sources
	// interleave; the overlaps are redeliveries staged twice; the last file
	// holds one event twice and has several row groups.
	seqs := [][]uint64{
		seqRange(1, 1500),
		seqRange(1201, 2700),
		append(append(seqRange(2501, 3600), seqRange(1, 100)...), 3000, 3000),
	}
	datas := [][]byte{
		segment(t, l, seqs[0], FileOptions{Codec: snappy}),
		segment(t, l, seqs[1], FileOptions{Codec: snappy, Metadata: map[string]string{"k": "v"}}),
		segment(t, l, seqs[2], FileOptions{Codec: snappy, RowGroupRows: 300}),
	}

	// The expected rows: each event decoded once on its own.
	want := map[uint64][]string{}
	total := 0
	d := NewDecoder(l)
	for _, ss := range seqs {
		total += len(ss)
		for _, seq := range ss {
			row, _, err := d.Decode([]byte(eventFor(seq)), seq, 0)
			if err != nil {
				t.Fatal(err)
			}
			want[seq] = rowValues(row)
		}
	}

	var got []parquet.Row
	var yields int
	stats, err := l.Merge(openAll(t, l, datas...), func(rows []parquet.Row) error {
		yields++
		for _, r := range rows {
			got = append(got, r.Clone()) // rows are only valid during yield
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Rows != int64(len(want)) || stats.Duplicates != int64(total-len(want)) || stats.Rows+stats.Duplicates != int64(total) {
		t.Fatalf("stats = %+v, want Rows %d, Duplicates %d (of %d input rows)", stats, len(want), total-len(want), total)
	}
	if len(got) != len(want) {
		t.Fatalf("yielded %d rows, want %d", len(got), len(want))
	}
	if yields < 2 {
		t.Fatalf("yield called %d times, want runs of rows", yields)
	}
	seen := map[uint64]bool{}
	for i, row := range got {
		seq := l.Seq(row)
		if seen[seq] {
			t.Fatalf("row %d: sequence %d yielded twice", i, seq)
		}
		seen[seq] = true
		if i > 0 && l.Compare(got[i-1], row) >= 0 {
			t.Fatalf("rows %d and %d out of order: %v then %v", i-1, i, rowValues(got[i-1]), rowValues(row))
		}
		if w := want[seq]; !slices.Equal(rowValues(row), w) {
			t.Fatalf("sequence %d round-tripped as\n%v\nwant\n%v", seq, rowValues(row), w)
		}
	}
}

func TestMergeEdgeCases(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	empty := segment(t, l, nil, FileOptions{})
	one := segment(t, l, []uint64{7}, FileOptions{})
	many := segment(t, l, seqRange(1, 1100), FileOptions{RowGroupRows: 1000})
	tests := []struct {
		name           string
		files          [][]byte
		wantRows       int64
		wantDuplicates int64
	}{
		{name: "no files"},
		{name: "empty file", files: [][]byte{empty, empty}},
		{name: "one row", files: [][]byte{one}, wantRows: 1},
		{name: "same file twice", files: [][]byte{many, many}, wantRows: 1100, wantDuplicates: 1100},
		{name: "row inside another file", files: [][]byte{empty, many, one}, wantRows: 1100, wantDuplicates: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n int64
			stats, err := l.Merge(openAll(t, l, tt.files...), func(rows []parquet.Row) error {
				n += int64(len(rows))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if stats.Rows != tt.wantRows || stats.Duplicates != tt.wantDuplicates || n != tt.wantRows {
				t.Fatalf("Merge = %+v with %d rows yielded, want Rows %d, Duplicates %d", stats, n, tt.wantRows, tt.wantDuplicates)
			}
		})
	}
}

func TestMergeStopsOnYieldError(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	data := segment(t, l, seqRange(1, 2000), FileOptions{})
	stop := errors.New("stop")
	calls := 0
	_, err := l.Merge(openAll(t, l, data), func([]parquet.Row) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Merge = %v after %d yields, want %v after 1", err, calls, stop)
	}
}

func TestOpenFileChecksSchema(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	tests := []struct {
		name    string
		policy  string // the layout that wrote the file
		wantErr error
	}{
		{name: "same layout", policy: allTypesPolicy},
		{name: "same schema, other policy name", policy: strings.Replace(allTypesPolicy, "name: all_types", "name: other", 1)},
		{name: "other type", policy: strings.Replace(allTypesPolicy, "{name: i,     type: int64}", "{name: i,     type: float64}", 1), wantErr: ErrSchemaMismatch},
		{name: "other requiredness", policy: strings.Replace(allTypesPolicy, "{name: i,     type: int64}", "{name: i,     type: int64, required: true}", 1), wantErr: ErrSchemaMismatch},
		{name: "extra field", policy: strings.Replace(allTypesPolicy, "    - {name: o,", "    - {name: p, type: bool}\n    - {name: o,", 1), wantErr: ErrSchemaMismatch},
		// A file of an earlier policy version, before the nullable field o was added: read with o null.
		{name: "missing nullable field", policy: strings.Replace(allTypesPolicy, "    - {name: o,     type: string}\n", "", 1)},
		{name: "missing required field", policy: strings.Replace(allTypesPolicy, "    - {name: n,     type: int64,     required: true}\n", "", 1), wantErr: ErrSchemaMismatch},
		{name: "renamed field", policy: strings.Replace(allTypesPolicy, "{name: o,", "{name: q,", 1), wantErr: ErrSchemaMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustLayout(t, tt.policy)
			var buf bytes.Buffer
			if err := w.WriteFile(&buf, nil, FileOptions{}); err != nil {
				t.Fatal(err)
			}
			_, err := l.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("OpenFile error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	t.Run("not parquet", func(t *testing.T) {
		data := []byte("PAR1 this is not a parquet file PAR1")
		if _, err := l.OpenFile(bytes.NewReader(data), int64(len(data))); err == nil {
			t.Fatal("OpenFile of garbage succeeded")
		}
	})
}

func TestCompare(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	d := NewDecoder(l)
	row := func(json string, seq uint64) parquet.Row {
		r, _, err := d.Decode([]byte(json), seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name string
		a, b parquet.Row
		want int
	}{
		{name: "by first sort field", a: row(`{"s":"a","n":1,"ts":5}`, 2), b: row(`{"s":"b","n":1,"ts":1}`, 1), want: -1},
		{name: "string prefix first", a: row(`{"s":"ab","n":1,"ts":5}`, 2), b: row(`{"s":"a","n":1,"ts":1}`, 1), want: 1},
		{name: "then by time", a: row(`{"s":"a","n":1,"ts":5}`, 1), b: row(`{"s":"a","n":1,"ts":"1970-01-01T00:00:00.004Z"}`, 2), want: 1},
		{name: "negative times", a: row(`{"s":"a","n":1,"ts":-5}`, 1), b: row(`{"s":"a","n":1,"ts":-4}`, 2), want: -1},
		{name: "then by sequence", a: row(`{"s":"a","n":1,"ts":5}`, 3), b: row(`{"s":"a","n":9,"ts":5}`, 2), want: 1},
		{name: "equal", a: row(`{"s":"a","n":1,"ts":5}`, 3), b: row(`{"s":"a","n":1,"ts":5,"o":"x"}`, 3), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Compare(tt.a, tt.b); got != tt.want {
				t.Fatalf("Compare = %d, want %d", got, tt.want)
			}
			if got := l.Compare(tt.b, tt.a); got != -tt.want {
				t.Fatalf("Compare reversed = %d, want %d", got, -tt.want)
			}
		})
	}
}

// TestCompareNullsFirst sorts on nullable fields of every kind.
func TestCompareNullsFirst(t *testing.T) {
	for _, field := range []string{"o", "i", "f", "b", "ts_s", "d"} {
		t.Run(field, func(t *testing.T) {
			l := mustLayout(t, strings.Replace(allTypesPolicy, "sort_by: [s, ts]", "sort_by: ["+field+"]", 1))
			d := NewDecoder(l)
			// Two JSON values, low then high, and how they read back.
			values := map[string][2]string{
				"o": {`"a"`, `"b"`}, "i": {"-1", "1"}, "f": {"-0.5", "0.5"}, "b": {"false", "true"},
				"ts_s": {"-1", "1"}, "d": {`"1969-12-31"`, `"1970-01-02"`},
			}[field]
			read := map[string][2]string{
				"o": {"a", "b"}, "i": {"-1", "1"}, "f": {"-0.5", "0.5"}, "b": {"false", "true"},
				"ts_s": {"-1000000", "1000000"}, "d": {"-1", "1"},
			}[field]
			lo, hi := read[0], read[1]
			var rows []parquet.Row
			for i, v := range []string{values[1], "null", values[0], values[1], "null"} {
				r, _, err := d.Decode([]byte(`{"s":"x","n":1,"ts":1,"`+field+`":`+v+`}`), uint64(10-i), 0)
				if err != nil {
					t.Fatal(err)
				}
				rows = append(rows, r)
			}
			slices.SortFunc(rows, l.Compare)
			fi := l.FieldColumn(l.Policy().FieldIndex(field))
			var got []string
			for _, r := range rows {
				got = append(got, fmt.Sprintf("%v/%d", valueOf(r[fi]), l.Seq(r)))
			}
			want := []string{"{}/6", "{}/9", lo + "/8", hi + "/7", hi + "/10"}
			if !slices.Equal(got, want) {
				t.Fatalf("sorted = %v, want %v", got, want)
			}
		})
	}
}

// TestMergeReadsSegmentsOfAnEarlierVersion: a window can hold segments
// staged before a nullable field was added; merged with the new layout,
// their rows keep every value and have the new column null, in order with
// rows of the new version.
func TestMergeReadsSegmentsOfAnEarlierVersion(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	old := mustLayout(t, strings.Replace(allTypesPolicy, "    - {name: o,     type: string}\n", "", 1))
	files := openAll(t, l, segment(t, old, seqRange(1, 500), FileOptions{}), segment(t, l, seqRange(400, 900), FileOptions{}))
	oCol := -1
	for i, c := range l.schema.Columns() {
		if c[0] == "o" {
			oCol = i
		}
	}
	var seqs []uint64
	nullO := 0
	stats, err := l.Merge(files, func(rows []parquet.Row) error {
		for _, r := range rows {
			seq := l.Seq(r)
			seqs = append(seqs, seq)
			isNull := true
			for _, v := range r {
				if v.Column() == oCol && !v.IsNull() {
					isNull = false
				}
			}
			if isNull {
				nullO++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Rows != 900 || stats.Duplicates != 101 || len(seqs) != 900 {
		t.Fatalf("merge %+v, %d rows; want 900 rows and 101 duplicates", stats, len(seqs))
	}
	// Rows 1..399 come only from the old file: o is null there.
	if nullO < 399 {
		t.Errorf("%d rows with o null, want at least the 399 rows only the old segment holds", nullO)
	}
}

// TestMergeKnown: rows whose source sequence is in a known file (what a
// window's earlier revisions loaded) are dropped, whichever side of a chunk
// boundary they meet; rows new to the known files are yielded once each.
func TestMergeKnown(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	known := [][]byte{
		segment(t, l, seqRange(1, 1500), FileOptions{RowGroupRows: 1000}),
		segment(t, l, seqRange(3001, 3100), FileOptions{}),
	}
	// New segments: redeliveries of known events, new events, and a repeat.
	files := [][]byte{
		segment(t, l, append(seqRange(1400, 1600), 5000), FileOptions{}),
		segment(t, l, append(seqRange(3050, 3200), 1600, 1), FileOptions{}),
	}
	var got []uint64
	stats, err := l.MergeKnown(openAll(t, l, known...), openAll(t, l, files...), func(rows []parquet.Row) error {
		for _, r := range rows {
			got = append(got, l.Seq(r))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(seqRange(1501, 1600), seqRange(3101, 3200)...), 5000)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("yielded %d sequences %v…, want %d: 1501..1600, 3101..3200, 5000", len(got), got[:min(5, len(got))], len(want))
	}
	// Input: 202 + 153 new-file rows; 201 of them known (1400..1500 = 101,
	// 3050..3100 = 51, seq 1 once) or repeated (1600 once).
	newRows := int64(202 + 153)
	if stats.Known != 1600 || stats.Rows != int64(len(want)) || stats.Rows+stats.Duplicates != newRows {
		t.Fatalf("stats = %+v, want Known 1600, Rows %d, Rows+Duplicates %d", stats, len(want), newRows)
	}

	// Without known files the same segments yield every distinct sequence.
	stats, err = l.Merge(openAll(t, l, files...), func([]parquet.Row) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if stats.Known != 0 || stats.Rows != 201+151+2 {
		t.Fatalf("Merge stats = %+v, want Rows %d", stats, 201+151+2)
	}
}
