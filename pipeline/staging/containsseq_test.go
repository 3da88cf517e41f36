package staging_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/pipeline/staging"
	"github.com/windrow/windrow/windows"
)

const salesPath = "../../deploy/policies/daily_store_sales.yaml"

func layoutOf(t *testing.T, filename string, data []byte) *records.Layout {
	t.Helper()
	p, err := windows.ParsePolicy(filename, data)
	if err != nil {
		t.Fatalf("parse policy: %v", err)
	}
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatalf("layout: %v", err)
	}
	return l
}

func salesLayout(t *testing.T) *records.Layout {
	t.Helper()
	data, err := os.ReadFile(salesPath)
	if err != nil {
		t.Fatal(err)
	}
	return layoutOf(t, salesPath, data)
}

// saleEvent is a daily_store_sales event; stores and times vary with seq so
// that sorting reorders the rows.
func saleEvent(seq uint64) []byte {
	return fmt.Appendf(nil, `{"store_id":"store-%03d","sale_id":"s-%d","sku":"latte","quantity":%d,"amount":%d.50,"currency":"EUR","paid":true,"sold_at":"2026-11-24T%02d:%02d:00.000Z","business_day":"2026-11-24"}`,
		seq*7%13, seq, 1+seq%5, seq%40, seq%24, seq%60)
}

// writeSegment decodes the events of seqs, sorts the rows as a collector does
// and commits them as one Parquet file under key.
func writeSegment(t *testing.T, store *local.Store, l *records.Layout, key string, seqs []uint64, rowGroupRows int) {
	t.Helper()
	d := records.NewDecoder(l)
	rows := make([]parquet.Row, 0, len(seqs))
	for _, seq := range seqs {
		row, _, err := d.Decode(saleEvent(seq), seq, 0)
		if err != nil {
			t.Fatalf("decode event %d: %v", seq, err)
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, l.Compare)
	w, err := store.Create(context.Background(), key)
	if err != nil {
		t.Fatalf("create %s: %v", key, err)
	}
	opts := records.FileOptions{Codec: records.Codec(l.Policy().Output.Compression), RowGroupRows: rowGroupRows}
	if err := l.WriteFile(w, rows, opts); err != nil {
		w.Abort()
		t.Fatalf("write %s: %v", key, err)
	}
	if _, _, err := w.Commit(); err != nil {
		t.Fatalf("commit %s: %v", key, err)
	}
}

func newObjectStore(t *testing.T) *local.Store {
	t.Helper()
	s, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContainsSeq(t *testing.T) {
	ctx := context.Background()
	store := newObjectStore(t)
	l := salesLayout(t)

	small := staging.SegmentKey("daily_store_sales", "20261124T000000Z", "small")
	writeSegment(t, store, l, small, []uint64{5, 7, 9, 1000}, 0)

	// 1500 odd sequences in row groups of 200: several row groups and more
	// rows than one merge chunk.
	var odd []uint64
	for seq := uint64(1); seq < 3000; seq += 2 {
		odd = append(odd, seq)
	}
	big := staging.SegmentKey("daily_store_sales", "20261124T000000Z", "big")
	writeSegment(t, store, l, big, odd, 200)

	empty := staging.SegmentKey("daily_store_sales", "20261124T000000Z", "empty")
	writeSegment(t, store, l, empty, nil, 0)

	tests := []struct {
		key  string
		seq  uint64
		want bool
	}{
		{empty, 1, false},
		{small, 5, true},
		{small, 7, true},
		{small, 1000, true},
		{small, 0, false},
		{small, 6, false},
		{small, 999, false},
		{small, 1001, false},
		{big, 1, true},
		{big, 1501, true},
		{big, 2999, true},
		{big, 2, false},
		{big, 1500, false},
		{big, 3001, false},
	}
	for _, tt := range tests {
		got, err := staging.ContainsSeq(ctx, store, l, tt.key, tt.seq)
		if err != nil {
			t.Fatalf("ContainsSeq(%s, %d): %v", tt.key, tt.seq, err)
		}
		if got != tt.want {
			t.Errorf("ContainsSeq(%s, %d) = %v, want %v", tt.key, tt.seq, got, tt.want)
		}
	}
}

// TestAppendSourceSeqs: every row's source sequence, from files of one
// row group, of several, and of none.
func TestAppendSourceSeqs(t *testing.T) {
	ctx := context.Background()
	store := newObjectStore(t)
	l := salesLayout(t)
	var odd []uint64
	for seq := uint64(1); seq < 3000; seq += 2 {
		odd = append(odd, seq)
	}
	tests := []struct {
		name         string
		seqs         []uint64
		rowGroupRows int
	}{
		{"small", []uint64{5, 7, 9, 1000}, 0},
		{"row groups", odd, 200},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := staging.SegmentKey("daily_store_sales", "20261124T000000Z", tt.name)
			writeSegment(t, store, l, key, tt.seqs, tt.rowGroupRows)
			got, err := staging.AppendSourceSeqs(ctx, store, l, key, []uint64{42})
			if err != nil {
				t.Fatalf("AppendSourceSeqs(%s): %v", key, err)
			}
			if got[0] != 42 {
				t.Fatalf("AppendSourceSeqs dropped what dst held: %v", got[:1])
			}
			got = got[1:]
			slices.Sort(got)
			if !slices.Equal(got, tt.seqs) && len(got)+len(tt.seqs) > 0 {
				t.Errorf("AppendSourceSeqs(%s) = %d sequences %v…, want %d %v…", key, len(got), got[:min(len(got), 5)], len(tt.seqs), tt.seqs[:min(len(tt.seqs), 5)])
			}
		})
	}
}

// TestContainsSeqErrors: a segment that cannot be read is an error, never
// "not there" (for ContainsSeq and AppendSourceSeqs) (which would count a redelivered event as late).
func TestContainsSeqErrors(t *testing.T) {
	ctx := context.Background()
	store := newObjectStore(t)
	l := salesLayout(t)

	other := layoutOf(t, "other.yaml", []byte(`name: other
source:
  subjects: [events.other.>]
schema:
  fields:
    - {name: store_id, type: string, required: true}
    - {name: sold_at, type: timestamp, required: true}
time:
  field: sold_at
window:
  size: 1h
load:
  table: other
`))
	writeSegment(t, store, other, "staging/other/w/seg.parquet", nil, 0)
	if _, err := store.Put(ctx, "staging/p/w/garbage.parquet", []byte("not parquet at all")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		key     string
		wantErr error
	}{
		{"missing object", "staging/p/w/missing.parquet", objstore.ErrNotFound},
		{"invalid key", "../outside.parquet", objstore.ErrInvalidKey},
		{"other schema", "staging/other/w/seg.parquet", records.ErrSchemaMismatch},
		{"not parquet", "staging/p/w/garbage.parquet", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, err := staging.ContainsSeq(ctx, store, l, tt.key, 1)
			if err == nil {
				t.Fatalf("ContainsSeq = %v, nil; want an error", found)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("ContainsSeq: err = %v, want %v", err, tt.wantErr)
			}
			if found {
				t.Fatal("ContainsSeq reported found with an error")
			}
			if _, err := staging.AppendSourceSeqs(ctx, store, l, tt.key, nil); err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("AppendSourceSeqs: err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
