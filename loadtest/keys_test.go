package loadtest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// TestKeyPartitionsAndOverflow: key [store_id] writes each window's rows
// sorted by store; the stores, all small here, share one file that lists
// them (TestSmallKeysShareBatchFiles has a store large enough for files of
// its own under store_id=…/); a window's keys beyond max_keys_per_window
// (the first ones in key order are kept) are dead-lettered with reason
// key_overflow, and every event is accounted for.
func TestKeyPartitionsAndOverflow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p := applyPolicy(t, ctx, s, `name: keyed
source: {stream: KEYED, subjects: [keyed.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 5m, idle_timeout: 1s}
segment: {max_age: 500ms}
key: [store_id]
max_keys_per_window: 5
key_overflow: dlq
load: {table: keyed}
`)
	h0 := time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)
	events := slices.Collect(Sales{Seed: 21, Events: 20_000, Start: h0, Span: 2 * time.Hour, Stores: 8, SubjectPrefix: "keyed"}.All())
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "keyed"); err != nil {
		t.Fatal(err)
	}
	assign, err := windows.NewAssigner(p.Window)
	if err != nil {
		t.Fatal(err)
	}
	// Per window: rows of store-001..store-005 load; 006..008 overflow.
	loaded, over := map[string]int64{}, map[string]int64{}
	for _, ev := range events {
		store := ev.Subject[strings.LastIndexByte(ev.Subject, '.')+1:]
		w := assign.Assign(ev.Time).ID()
		if store <= "store-005" {
			loaded[w]++
		} else {
			over[w]++
		}
	}
	defer runRoles(t, ctx, s)()
	ws := waitLoaded(t, ctx, s, p.Name, len(loaded), 2*time.Minute)
	for _, w := range ws {
		if w.Rows != loaded[w.ID()] || w.KeyOverflow != over[w.ID()] {
			t.Errorf("window %s: %d rows, %d overflow; want %d and %d", w.ID(), w.Rows, w.KeyOverflow, loaded[w.ID()], over[w.ID()])
		}
		bs := batchesOf(t, s.Store, w)
		want := []string{"store_id=store-001/", "store_id=store-002/", "store_id=store-003/", "store_id=store-004/", "store_id=store-005/"}
		if len(bs) != 1 || bs[0].Key != "" || !slices.Equal(bs[0].Keys, want) {
			t.Errorf("window %s: batches %+v, want one shared file of keys %v", w.ID(), bs, want)
		}
	}
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var stores int64
	if err := db.QueryRowContext(ctx, `SELECT count(DISTINCT store_id) FROM keyed`).Scan(&stores); err != nil {
		t.Fatal(err)
	}
	if stores != 5 {
		t.Errorf("%d stores loaded, want 5", stores)
	}
	dl, err := inspect.CountDeadLetters(ctx, s.JS, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	var wantOver int64
	for _, n := range over {
		wantOver += n
	}
	if dl.ByReason[messages.ReasonKeyOverflow] != wantOver {
		t.Errorf("%d key_overflow dead letters, want %d", dl.ByReason[messages.ReasonKeyOverflow], wantOver)
	}
	rec, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() {
		t.Errorf("reconcile: %s %v", rec.Summary(), rec.Problems)
		for _, w := range rec.Windows {
			if len(w.Problems) > 0 {
				t.Errorf("window %s: %v", w.State.ID(), w.Problems)
			}
		}
	}
	t.Logf("%s", rec.Summary())
}

// TestKeyOverflowErrorFailsTheWindow: with key_overflow: error, a window
// with too many keys is not loaded in part: it becomes FAILED with the
// reason, and its staged data stays for an operator.
func TestKeyOverflowErrorFailsTheWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p := applyPolicy(t, ctx, s, `name: keyed_strict
source: {stream: KEYEDSTRICT, subjects: [keyedstrict.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 5m, idle_timeout: 1s}
segment: {max_age: 500ms}
key: [store_id]
max_keys_per_window: 2
key_overflow: error
load: {table: keyed_strict}
`)
	h0 := time.Date(2026, 10, 6, 0, 0, 0, 0, time.UTC)
	events := slices.Collect(Sales{Seed: 22, Events: 300, Start: h0, Span: 30 * time.Minute, Stores: 3, SubjectPrefix: "keyedstrict"}.All())
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "keyedstrict"); err != nil {
		t.Fatal(err)
	}
	defer runRoles(t, ctx, s)()
	deadline := time.Now().Add(time.Minute)
	for {
		st, _, err := s.States.Get(ctx, p.Name, messages.WindowID(h0))
		if err == nil && st.Status == messages.StatusFailed {
			if !strings.Contains(st.Error, "more than max_keys_per_window 2 distinct keys") {
				t.Errorf("FAILED with %q, want the key cap named", st.Error)
			}
			if st.BatchCount != 0 || st.StagingDeleted {
				t.Errorf("failed window: %d batches, staging deleted %v; want none and kept", st.BatchCount, st.StagingDeleted)
			}
			return
		}
		if err == nil && st.Status == messages.StatusLoaded {
			t.Fatal("a window over the key cap was loaded with key_overflow: error")
		}
		if time.Now().After(deadline) {
			t.Fatalf("window not FAILED within a minute: %+v %v", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSmallKeysShareBatchFiles guards issue 12 item 10 (tiny files per
// key): a window of 300 small keys and one large key is written as one
// shared file, whose rows are sorted by the key and declared so, plus
// files of its own under its key path for the large key — not a file per
// key (301 files before) — and every store's rows, quantities and amounts
// load exactly.
func TestSmallKeysShareBatchFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	// target_file_size 1MiB: a key gets files of its own from 64 KiB of
	// rows (~900 rows of this schema).
	p := applyPolicy(t, ctx, s, `name: smallkeys
source: {stream: SMALLKEYS, subjects: [smallkeys.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 5m, idle_timeout: 1s}
segment: {max_age: 500ms}
key: [store_id]
output: {target_file_size: 1MiB}
load: {table: smallkeys}
`)
	const stores, big = 300, 7
	h0 := time.Date(2026, 10, 7, 0, 0, 0, 0, time.UTC)
	events := slices.Collect(Sales{Seed: 23, Events: 3000, Start: h0, Span: 50 * time.Minute, Stores: stores, SubjectPrefix: "smallkeys"}.All())
	for i := range 2000 {
		ev := SaleAt(fmt.Sprintf("big-%d", i), big, h0.Add(time.Duration(i)*time.Second), int64(1+i%3), float64(i%50)/4)
		ev.Subject = strings.Replace(ev.Subject, "events.sales", "smallkeys", 1)
		events = append(events, ev)
	}
	type totals struct {
		rows, qty int64
		amount    float64
	}
	want := map[string]totals{}
	for _, ev := range events {
		store := ev.Subject[strings.LastIndexByte(ev.Subject, '.')+1:]
		w := want[store]
		w.rows, w.qty, w.amount = w.rows+1, w.qty+ev.Quantity, w.amount+ev.Amount
		want[store] = w
	}
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "smallkeys"); err != nil {
		t.Fatal(err)
	}
	defer runRoles(t, ctx, s)()
	ws := waitLoaded(t, ctx, s, p.Name, 1, 2*time.Minute)
	if ws[0].Rows != int64(len(events)) {
		t.Errorf("window: %d rows, want %d", ws[0].Rows, len(events))
	}
	t.Logf("%d batches, %d bytes, loaded %v after compaction", ws[0].BatchCount, ws[0].BatchBytes, ws[0].LoadedAt.Sub(ws[0].CompactedAt))
	bigKey := fmt.Sprintf("store_id=store-%03d/", big)
	var shared, own []messages.BatchRef
	for _, b := range batchesOf(t, s.Store, ws[0]) {
		if b.Key == "" {
			shared = append(shared, b)
		} else {
			own = append(own, b)
		}
	}
	if len(shared) != 1 || len(own) != 1 {
		t.Fatalf("%d shared and %d own batch files, want 1 and 1 (store %03d)", len(shared), len(own), big)
	}
	if b := own[0]; b.Key != bigKey || !strings.Contains(b.Object, "/"+bigKey+"part-") || b.Rows != want[fmt.Sprintf("store-%03d", big)].rows {
		t.Errorf("own batch: key %q, object %s, %d rows; want %q with every row of the store", b.Key, b.Object, b.Rows, bigKey)
	}
	sh := shared[0]
	if len(sh.Keys) != len(want)-1 || !slices.IsSorted(sh.Keys) || slices.Contains(sh.Keys, bigKey) {
		t.Errorf("shared batch lists %d keys (sorted %v, has the large one %v), want the %d small ones in order",
			len(sh.Keys), slices.IsSorted(sh.Keys), slices.Contains(sh.Keys, bigKey), len(want)-1)
	}
	obj, err := s.Store.Open(ctx, sh.Object)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(obj, obj.Size())
	if err != nil {
		t.Fatal(err)
	}
	for i, rg := range f.RowGroups() {
		if sc := rg.SortingColumns(); len(sc) != 1 || !slices.Equal(sc[0].Path(), []string{"store_id"}) || sc[0].Descending() {
			t.Errorf("shared batch, row group %d: sorting columns %v, want store_id ascending", i, sc)
		}
		// Readers prune by the key column's statistics: the row group's
		// min and max, and a page index.
		c := f.Metadata().RowGroups[i].Columns[0]
		if st := c.MetaData.Statistics; len(st.MinValue) == 0 || string(st.MinValue) > string(st.MaxValue) || c.ColumnIndexOffset == 0 {
			t.Errorf("shared batch, row group %d: store_id statistics %q..%q, column index at %d; want both and an index",
				i, st.MinValue, st.MaxValue, c.ColumnIndexOffset)
		}
	}
	obj.Close()

	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rows, err := db.QueryContext(ctx, `SELECT store_id, count(*), sum(quantity), sum(amount) FROM smallkeys GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]totals{}
	for rows.Next() {
		var store string
		var g totals
		if err := rows.Scan(&store, &g.rows, &g.qty, &g.amount); err != nil {
			t.Fatal(err)
		}
		got[store] = g
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(got) != len(want) {
		t.Errorf("table holds %d stores, want %d", len(got), len(want))
	}
	for store, w := range want {
		g := got[store]
		if g.rows != w.rows || g.qty != w.qty || math.Abs(g.amount-w.amount) > 1e-6 {
			t.Errorf("store %s: %+v, want %+v", store, g, w)
		}
	}
	rec, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() {
		t.Errorf("reconcile: %s %v", rec.Summary(), rec.Problems)
	}
}
