package records

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/windrow/windrow/windows"
)

func scratchRows(b *testing.B) (*Layout, []parquet.Row) {
	l := salesLayout(b)
	events := salesEvents(1, 10_000, benchStart, 24*time.Hour)
	dec := NewDecoder(l)
	rows := make([]parquet.Row, 0, 100_000)
	for i := range 100_000 {
		row, _, err := dec.Decode(events[i%len(events)], uint64(i+1), 0)
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, row)
	}
	return l, rows
}

func BenchmarkScratchDecode(b *testing.B) {
	l := salesLayout(b)
	events := salesEvents(1, 10_000, benchStart, 24*time.Hour)
	dec := NewDecoder(l)
	i := 0
	for b.Loop() {
		i++
		if _, _, err := dec.Decode(events[i%len(events)], uint64(i), 0); err != nil {
			b.Fatal(err)
		}
		if i%100_000 == 0 {
			dec.Reset()
		}
	}
}

func BenchmarkScratchSort(b *testing.B) {
	l, rows := scratchRows(b)
	work := make([]parquet.Row, len(rows))
	for b.Loop() {
		copy(work, rows)
		slices.SortFunc(work, l.Compare)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}

func BenchmarkScratchWrite(b *testing.B) {
	l, rows := scratchRows(b)
	slices.SortFunc(rows, l.Compare)
	for b.Loop() {
		if err := l.WriteFile(io.Discard, rows, FileOptions{Codec: Codec(windows.CompressSnappy)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}
