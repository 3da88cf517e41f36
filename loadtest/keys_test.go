package loadtest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// TestKeyPartitionsAndOverflow: key [store_id] writes each window's rows in
// files per store under store_id=…/; a window's keys beyond
// max_keys_per_window (the first ones in key order are kept) are
// dead-lettered with reason key_overflow, and every event is accounted for.
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
		keys := map[string]bool{}
		for _, b := range batchesOf(t, s.Store, w) {
			if !strings.Contains(b.Object, "/"+b.Key) || !strings.HasPrefix(b.Key, "store_id=store-00") {
				t.Errorf("batch %s: object %s, key %q", b.BatchID, b.Object, b.Key)
			}
			keys[b.Key] = true
		}
		if len(keys) != 5 {
			t.Errorf("window %s: batches of %d keys, want 5", w.ID(), len(keys))
		}
	}
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var mixed, stores int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT _batch_id FROM keyed GROUP BY 1 HAVING count(DISTINCT store_id) > 1)`).Scan(&mixed); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(DISTINCT store_id) FROM keyed`).Scan(&stores); err != nil {
		t.Fatal(err)
	}
	if mixed != 0 || stores != 5 {
		t.Errorf("%d batches mix stores, %d stores loaded; want 0 and 5", mixed, stores)
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
