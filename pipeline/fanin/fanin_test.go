package fanin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

const policySrc = `name: fan
source: {stream: SRC, subjects: [ev.>]}
schema:
  fields:
    - {name: k, type: string, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h}
output: {sort_by: [k, at]}
load: {table: fan}
`

func testLayout(t *testing.T) *records.Layout {
	t.Helper()
	p, err := windows.ParsePolicy("test.yaml", []byte(policySrc))
	if err != nil {
		t.Fatal(err)
	}
	p.Version = 1
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// sortedFile is one Parquet file of the events with the given sequences.
func sortedFile(t *testing.T, l *records.Layout, seqs []uint64) *parquet.File {
	t.Helper()
	dec := records.NewDecoder(l)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]parquet.Row, 0, len(seqs))
	for _, seq := range seqs {
		at := start.Add(time.Duration(seq%997) * time.Second)
		row, _, err := dec.Decode([]byte(fmt.Sprintf(`{"k":"k%d","at":%q}`, seq%5, at.Format(time.RFC3339))), seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row.Clone())
	}
	slices.SortFunc(rows, l.Compare)
	var buf bytes.Buffer
	if err := l.WriteFile(&buf, rows, records.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := l.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// randomSeqs are n sequences from 1..max, some repeated.
func randomSeqs(r *rand.Rand, n, max int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(r.IntN(max) + 1)
	}
	return out
}

type counter struct{ open, maxOpen int }

func (c *counter) inputs(files []*parquet.File) []Input {
	out := make([]Input, len(files))
	for i, f := range files {
		out[i] = Input{Name: fmt.Sprint(i), Open: func(context.Context) (*parquet.File, func() error, error) {
			c.open++
			c.maxOpen = max(c.maxOpen, c.open)
			return f, func() error { c.open--; return nil }, nil
		}}
	}
	return out
}

func collect(l *records.Layout, out *[]uint64) func([]parquet.Row) error {
	return func(rows []parquet.Row) error {
		for _, r := range rows {
			*out = append(*out, l.Seq(r))
		}
		return nil
	}
}

// TestMergeMatchesSingleMerge: whatever the fan-in and memory bounds, Merge
// yields the rows of one MergeKnown over all inputs, in its order, with its
// counts, holding at most FanIn inputs open, and leaves no runs behind.
func TestMergeMatchesSingleMerge(t *testing.T) {
	l := testLayout(t)
	r := rand.New(rand.NewPCG(1, 2))
	known := []*parquet.File{sortedFile(t, l, randomSeqs(r, 200, 3000))}
	fixed := []*parquet.File{sortedFile(t, l, randomSeqs(r, 300, 3000))}
	var segs []*parquet.File
	for range 97 {
		segs = append(segs, sortedFile(t, l, randomSeqs(r, 1+r.IntN(60), 3000)))
	}
	var want []uint64
	wantStats, err := l.MergeKnown(known, slices.Concat(fixed, segs), collect(l, &want))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		fanIn      int
		memory     int64
		wantPasses int
	}{
		{"all at once", 128, 0, 0},
		{"fan-in 4", 4, 0, 6},       // 97 segments, 2 slots: 49, 25, 13, 7, 4, 2 runs
		{"fan-in 16", 16, 0, 1},     // 14 slots: 7 runs
		{"memory", 128, 2 << 20, 1}, // fan-in alone would take all 97 at once
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var c counter
			c.open, c.maxOpen = len(known)+len(fixed), len(known)+len(fixed)
			var got []uint64
			stats, report, err := Merge(context.Background(), Config{Layout: l, FanIn: tc.fanIn, Memory: tc.memory, Dir: dir},
				known, fixed, c.inputs(segs), collect(l, &got))
			if err != nil {
				t.Fatal(err)
			}
			if stats != wantStats || !slices.Equal(got, want) {
				t.Errorf("merged %+v, %d rows; want %+v, %d rows (the same)", stats, len(got), wantStats, len(want))
			}
			if c.maxOpen > tc.fanIn || report.MaxOpen > tc.fanIn {
				t.Errorf("%d inputs open at once (report %d), want at most %d", c.maxOpen, report.MaxOpen, tc.fanIn)
			}
			if c.open != len(known)+len(fixed) {
				t.Errorf("%d inputs left open", c.open-len(known)-len(fixed))
			}
			if report.Passes != tc.wantPasses {
				t.Errorf("%d passes, want %d", report.Passes, tc.wantPasses)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("runs left behind: %v", left)
			}
		})
	}
}

// TestMergeOpenError: an input that cannot be opened stops the merge with
// its error; everything opened is closed and no runs stay.
func TestMergeOpenError(t *testing.T) {
	l := testLayout(t)
	r := rand.New(rand.NewPCG(3, 4))
	var segs []*parquet.File
	for range 20 {
		segs = append(segs, sortedFile(t, l, randomSeqs(r, 20, 500)))
	}
	var c counter
	inputs := c.inputs(segs)
	bad := errors.New("segment damaged")
	inputs[13].Open = func(context.Context) (*parquet.File, func() error, error) { return nil, nil, bad }
	dir := t.TempDir()
	_, _, err := Merge(context.Background(), Config{Layout: l, FanIn: 4, Dir: dir}, nil, nil, inputs, func([]parquet.Row) error { return nil })
	if !errors.Is(err, bad) {
		t.Fatalf("err %v, want %v", err, bad)
	}
	if c.open != 0 {
		t.Errorf("%d inputs left open", c.open)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("runs left behind: %v", left)
	}
}

// TestRemoveStale: run directories untouched since the cutoff go, newer
// ones and other files stay.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{DirPrefix + "old", DirPrefix + "new", "other"} {
		if err := os.Mkdir(dir+"/"+name, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{DirPrefix + "old", "other"} {
		if err := os.Chtimes(dir+"/"+name, old, old); err != nil {
			t.Fatal(err)
		}
	}
	n, err := RemoveStale(dir, time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("removed %d, %v; want 1", n, err)
	}
	left, _ := os.ReadDir(dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if want := []string{"other", DirPrefix + "new"}; !slices.Equal(names, want) {
		t.Errorf("left %v, want %v", names, want)
	}
}
