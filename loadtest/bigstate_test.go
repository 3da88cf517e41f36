package loadtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// TestManyKeysStateStaysSmall: a window of 4,500 keys fits a stock
// server's 1 MiB messages — which the embedded server uses too: its state
// in KV stays small (the batch list is in the manifest, the loaded parts a
// bitmap) and its whole-window load command carries no list. Before, the
// state held every batch (~250 bytes each) and, with a file per key, the
// window stayed SEALED with "maximum payload exceeded". Since decision
// 0015 the small keys share one file (the manifest lists their keys), so
// the window has a batch or two, not 4,500.
func TestManyKeysStateStaysSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	if got := s.JS.Conn().MaxPayload(); got > 1<<20 {
		t.Fatalf("embedded server's max payload %d, want a stock server's 1 MiB", got)
	}
	const keys = 4500
	p := applyPolicy(t, ctx, s, `name: manykeys
source: {stream: MANYKEYS, subjects: [manykeys.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 5m, idle_timeout: 1s}
segment: {max_age: 500ms}
key: [store_id]
max_keys_per_window: 10000
load: {table: manykeys, mode: replace}
`)
	h0 := time.Date(2026, 10, 6, 0, 0, 0, 0, time.UTC)
	events := slices.Collect(Sales{Seed: 3, Events: 2 * keys, Start: h0, Span: time.Hour, Stores: keys, SubjectPrefix: "manykeys"}.All())
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "manykeys"); err != nil {
		t.Fatal(err)
	}
	assign, err := windows.NewAssigner(p.Window)
	if err != nil {
		t.Fatal(err)
	}
	want := expectOf(events, assign)
	defer runRoles(t, ctx, s)()
	ws := waitLoaded(t, ctx, s, p.Name, len(want.rows), 3*time.Minute)
	kv, err := s.JS.KeyValue(ctx, messages.BucketWindows)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		// The keys are small: they share files (decision 0015), so the
		// batches are bounded by the window's bytes, not its keys.
		if w.BatchCount > 2 {
			t.Errorf("window %s: %d batches for %d small keys, want them to share files", w.ID(), w.BatchCount, keys)
		}
		e, err := kv.Get(ctx, w.Key())
		if err != nil {
			t.Fatal(err)
		}
		// A bit per batch: ~0.8 KB here; the list was ~1.3 MB.
		if n := len(e.Value()); n > 16<<10 {
			t.Errorf("window %s: state of %d bytes for %d batches, want it small", w.ID(), n, w.BatchCount)
		}
		if got := len(batchesOf(t, s.Store, w)); got != w.BatchCount {
			t.Errorf("window %s: manifest lists %d batches, the state counts %d", w.ID(), got, w.BatchCount)
		}
	}
	checkTable(t, ctx, s, "manykeys", "quantity", "amount", want)
}
