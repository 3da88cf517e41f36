package records

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"

	"github.com/windrow/windrow/windows"
)

// benchFlushRows is how many rows the benchmarks buffer before writing a file.
const benchFlushRows = 100_000

var benchStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// BenchmarkCollectorHotPath runs the collector's per-event work on sales
// events: Decode, AssignMicros into a per-window buffer, and every 100,000
// rows a flush that sorts each window's rows with Layout.Compare, writes them
// as a snappy Parquet file and resets the decoder.
//
//	go test -run xxx -bench . -benchtime 3s -cpu 1 ./pipeline/records/
func BenchmarkCollectorHotPath(b *testing.B) {
	l := salesLayout(b)
	events := salesEvents(1, 10_000, benchStart, 24*time.Hour)
	assign, err := windows.NewAssigner(l.Policy().Window)
	if err != nil {
		b.Fatal(err)
	}
	dec := NewDecoder(l)
	opts := FileOptions{Codec: Codec(windows.CompressSnappy)}
	buf := map[int64][]parquet.Row{}
	buffered := 0
	flush := func() {
		for start, rows := range buf {
			l.SortRows(rows)
			if err := l.WriteFile(io.Discard, rows, opts); err != nil {
				b.Fatal(err)
			}
			buf[start] = rows[:0]
		}
		buffered = 0
		dec.Reset()
	}
	ingest := benchStart.UnixMicro()
	var seq uint64
	b.ReportAllocs()
	for b.Loop() {
		seq++
		row, evt, err := dec.Decode(events[seq%uint64(len(events))], seq, ingest)
		if err != nil {
			b.Fatal(err)
		}
		start, _ := assign.AssignMicros(evt)
		buf[start] = append(buf[start], row)
		if buffered++; buffered == benchFlushRows {
			flush()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// saleRecord is the baseline's Go form of a sales event.
type saleRecord struct {
	StoreID     string    `json:"store_id" parquet:"store_id"`
	SaleID      string    `json:"sale_id" parquet:"sale_id"`
	SKU         *string   `json:"sku" parquet:"sku,optional"`
	Quantity    int64     `json:"quantity" parquet:"quantity"`
	Amount      float64   `json:"amount" parquet:"amount"`
	Currency    *string   `json:"currency" parquet:"currency,optional"`
	Paid        *bool     `json:"paid" parquet:"paid,optional"`
	SoldAt      time.Time `json:"sold_at" parquet:"sold_at,timestamp(microsecond)"`
	BusinessDay *string   `json:"business_day" parquet:"business_day,optional"`
	SourceSeq   int64     `json:"-" parquet:"_source_seq"`
}

// BenchmarkBaselineJSONToParquet is the plain way to do the same: encoding/json
// into a struct and parquet-go's generic writer, one snappy file per 100,000
// events, nothing sorted or assigned.
func BenchmarkBaselineJSONToParquet(b *testing.B) {
	events := salesEvents(1, 10_000, benchStart, 24*time.Hour)
	batch := make([]saleRecord, 0, benchFlushRows)
	flush := func() {
		w := parquet.NewGenericWriter[saleRecord](io.Discard, parquet.Compression(&snappy.Codec{}))
		if _, err := w.Write(batch); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	var seq int64
	b.ReportAllocs()
	for b.Loop() {
		seq++
		batch = batch[:len(batch)+1]
		rec := &batch[len(batch)-1]
		*rec = saleRecord{}
		if err := json.Unmarshal(events[seq%int64(len(events))], rec); err != nil {
			b.Fatal(err)
		}
		rec.SourceSeq = seq
		if len(batch) == benchFlushRows {
			flush()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMerge merges 8 sorted segment files of 50,000 sales rows each,
// with no duplicates.
func BenchmarkMerge(b *testing.B) {
	const files, perFile = 8, 50_000
	l := salesLayout(b)
	var datas [][]byte
	for k := range files {
		datas = append(datas, benchSegment(b, l, uint64(k+1), uint64(k*perFile+1), perFile))
	}
	b.ReportAllocs()
	for b.Loop() {
		stats, err := l.Merge(openAll(b, l, datas...), func([]parquet.Row) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if stats.Rows != files*perFile {
			b.Fatal(fmt.Sprintf("merged %d rows, want %d", stats.Rows, files*perFile))
		}
	}
	b.ReportMetric(float64(b.N*files*perFile)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkMergeKnown is the compaction of a revision in mode append: the
// window's earlier batches (350,000 rows in 7 files) are read as known rows,
// and a late segment of 50,000 rows, half of them redelivered copies of
// known rows, is merged against them. rows/s counts every row read.
func BenchmarkMergeKnown(b *testing.B) {
	const files, perFile = 7, 50_000
	l := salesLayout(b)
	var known [][]byte
	var last []parquet.Row
	for k := range files {
		last = benchRows(b, l, uint64(k+1), uint64(k*perFile+1), perFile)
		known = append(known, benchFile(b, l, last))
	}
	late := append(slices.Clone(last[perFile/2:]), benchRows(b, l, files+1, files*perFile+1, perFile/2)...)
	lateData := benchFile(b, l, late)
	b.ReportAllocs()
	for b.Loop() {
		stats, err := l.MergeKnown(openAll(b, l, known...), openAll(b, l, lateData), func([]parquet.Row) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if stats.Known != files*perFile || stats.Rows != perFile/2 || stats.Duplicates != perFile/2 {
			b.Fatalf("stats %+v, want %d known, %d rows, %d duplicates", stats, files*perFile, perFile/2, perFile/2)
		}
	}
	b.ReportMetric(float64(b.N*(files+1)*perFile)/b.Elapsed().Seconds(), "rows/s")
}

// benchSegment is a sorted segment of n sales rows with source sequences
// first, first+1, …
func benchSegment(b *testing.B, l *Layout, seed, first uint64, n int) []byte {
	return benchFile(b, l, benchRows(b, l, seed, first, n))
}

func benchRows(b *testing.B, l *Layout, seed, first uint64, n int) []parquet.Row {
	events := salesEvents(seed, n, benchStart, 24*time.Hour)
	dec := NewDecoder(l)
	rows := make([]parquet.Row, 0, n)
	for i, ev := range events {
		row, _, err := dec.Decode(ev, first+uint64(i), 0)
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, row.Clone())
	}
	return rows
}

// benchFile sorts rows and writes them as a segment.
func benchFile(b *testing.B, l *Layout, rows []parquet.Row) []byte {
	rows = slices.Clone(rows)
	slices.SortFunc(rows, l.Compare)
	var out bytes.Buffer
	if err := l.WriteFile(&out, rows, FileOptions{Codec: Codec(windows.CompressSnappy)}); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}
