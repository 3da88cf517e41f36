package collector

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/pipeline/staging"
	"github.com/windrow/windrow/windows"
)

// countingStore counts the objects opened or read whole through it.
type countingStore struct {
	objstore.Store
	opens atomic.Int64
}

var _ objstore.Store = (*countingStore)(nil)

func (c *countingStore) Open(ctx context.Context, key string) (objstore.Object, error) {
	c.opens.Add(1)
	return c.Store.Open(ctx, key)
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.opens.Add(1)
	return c.Store.Get(ctx, key)
}

const redeliveryPolicySrc = `name: coll
source: {stream: SRC, subjects: [ev.>]}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: n, type: int64, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h, max_out_of_order: 1m, late: dlq}
segment: {max_rows: %d, max_age: 100ms}
load: {table: coll}
`

// stagedWindow is a window staged by a collector that then stopped: the
// messages of its source stream as a redelivery brings them back, and the
// window's registrations.
type stagedWindow struct {
	env  *testkit.Env
	p    *windows.Policy
	win  windows.Window
	msgs map[uint64]jetstream.Msg
	mine map[uint64]bool // source sequences of the window's events
	regs []staging.Registration
}

// stageInterleaved publishes n events, every other one (odd source
// sequences) dated in the window at hour and the rest an hour later, so the
// window's segments have sequence ranges with gaps; a collector stages them
// in segments of up to maxRows rows and stops.
func stageInterleaved(tb testing.TB, n, maxRows int) *stagedWindow {
	tb.Helper()
	env := testkit.New(tb)
	p := testkit.Policy(tb, fmt.Sprintf(redeliveryPolicySrc, maxRows))
	ctx := context.Background()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		tb.Fatal(err)
	}
	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p})
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	sw := &stagedWindow{env: env, p: p, win: windows.Window{Start: hour, End: hour.Add(time.Hour)}, mine: map[uint64]bool{}}
	for i := range n {
		at := hour.Add(time.Duration(i) * 100 * time.Millisecond)
		if i%2 == 1 {
			at = at.Add(time.Hour)
		} else {
			sw.mine[uint64(i+1)] = true
		}
		if _, err := env.JS.Publish(ctx, "ev.x", event(i, at)); err != nil {
			tb.Fatal(err)
		}
	}
	testkit.WaitFor(tb, 30*time.Second, "all staged", drained(tb, env, p))
	cancel()
	if err := <-done; err != nil {
		tb.Fatal(err)
	}

	oc, err := env.JS.OrderedConsumer(ctx, p.Source.Stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	sw.msgs = map[uint64]jetstream.Msg{}
	for len(sw.msgs) < n {
		mb, err := oc.Fetch(n-len(sw.msgs), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		for m := range mb.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				tb.Fatal(err)
			}
			sw.msgs[meta.Sequence.Stream] = m
		}
		if err := mb.Error(); err != nil {
			tb.Fatal(err)
		}
	}
	st, _, err := env.States.Get(ctx, p.Name, sw.win.ID())
	if err != nil {
		tb.Fatal(err)
	}
	sw.regs, err = staging.ReadRegistrations(ctx, env.JS, p.Name, sw.win.ID(), 0, st.LastSegmentSeq)
	if err != nil {
		tb.Fatal(err)
	}
	if len(sw.regs) < 2 {
		tb.Fatalf("%d segments staged, want several", len(sw.regs))
	}
	return sw
}

// close moves the window to status; a COMPACTED or LOADED window gets its
// segments as batch files (they hold the same rows a compaction would).
func (sw *stagedWindow) close(tb testing.TB, status messages.WindowStatus) {
	tb.Helper()
	if _, err := sw.env.States.Update(context.Background(), messages.WindowKey(sw.p.Name, sw.win.ID()), func(cur *messages.WindowState) (*messages.WindowState, error) {
		cur.Status = status
		cur.BatchCount, cur.Manifest, cur.Rows = 0, "", 0
		if status == messages.StatusCompacted || status == messages.StatusLoaded {
			m := &messages.BatchManifest{Policy: cur.Policy, WindowStart: cur.WindowStart, WindowEnd: cur.WindowEnd, Revision: cur.Revision}
			for i, r := range sw.regs {
				m.Batches = append(m.Batches, messages.BatchRef{BatchID: messages.BatchID(cur.Policy, cur.WindowStart, cur.Revision, i), Object: r.Object, Rows: r.Rows})
				m.Rows += r.Rows
			}
			data, err := messages.Encode(m)
			if err != nil {
				return nil, err
			}
			cur.Manifest = fmt.Sprintf("batches/%s/%s/r%d/manifest.json", cur.Policy, cur.ID(), cur.Revision)
			if _, err := sw.env.Store.Put(context.Background(), cur.Manifest, data); err != nil {
				return nil, err
			}
			cur.BatchCount, cur.Rows = len(m.Batches), cur.StagedRows
		}
		return cur, nil
	}); err != nil {
		tb.Fatal(err)
	}
}

// collector is a collector reading the object store through a counter.
func (sw *stagedWindow) collector(tb testing.TB) (*Service, *countingStore) {
	tb.Helper()
	cs := &countingStore{Store: sw.env.Store}
	c, err := New(Config{JS: sw.env.JS, Store: cs, States: sw.env.States, Watermarks: sw.env.Watermarks, Policy: sw.p})
	if err != nil {
		tb.Fatal(err)
	}
	return c, cs
}

// TestRedrainOfClosedWindowReadsEachFileOnce guards against quadratic
// recovery: re-draining every event of a closed window (sealed, or loaded
// with its segments gone) must read each of its files a bounded number of
// times, not once per redelivered event, and must still be exact: the
// events of the other window in between the window's sequences are late.
func TestRedrainOfClosedWindowReadsEachFileOnce(t *testing.T) {
	const n = 600
	sw := stageInterleaved(t, n, 60)
	ctx := context.Background()
	for _, status := range []messages.WindowStatus{messages.StatusSealed, messages.StatusLoaded} {
		t.Run(string(status), func(t *testing.T) {
			sw.close(t, status)
			c, cs := sw.collector(t)
			b := <-c.free
			var late int
			for seq := uint64(1); seq <= n; seq++ {
				before := len(b.futures)
				if err := c.lateOrStaged(ctx, b, sw.msgs[seq], seq, 2, 0, sw.win); err != nil {
					t.Fatalf("seq %d: %v", seq, err)
				}
				isLate := len(b.futures) > before
				if isLate == sw.mine[seq] {
					t.Errorf("seq %d (of the window: %v): late = %v", seq, sw.mine[seq], isLate)
				}
				if isLate {
					late++
				}
			}
			if err := c.awaitPublishes(ctx, b); err != nil {
				t.Fatal(err)
			}
			if got := c.Stats(); got.Redelivered != n/2 || got.DeadLettered != n/2 || late != n/2 {
				t.Errorf("stats %+v, %d late; want %d redelivered and %d late", got, late, n/2, n/2)
			}
			files := int64(len(sw.regs))
			if status != messages.StatusSealed {
				files++ // and the manifest that lists them
			}
			if opens := cs.opens.Load(); opens > files {
				t.Errorf("%d object reads for %d redelivered events of a window of %d files, want at most %d (each file once)",
					opens, n, files, files)
			}
		})
	}
}

// BenchmarkRedeliveryCheck measures the "already staged?" check of one
// redelivered event of a loaded window of 2,000 events (1,000 of its own)
// in 20 batch files, as re-draining it after a lost ack does.
func BenchmarkRedeliveryCheck(b *testing.B) {
	const n = 2000
	sw := stageInterleaved(b, n, 100)
	sw.close(b, messages.StatusLoaded)
	c, _ := sw.collector(b)
	ctx := context.Background()
	bt := <-c.free
	var own []uint64
	for seq := range sw.mine {
		own = append(own, seq)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		seq := own[i%len(own)]
		if err := c.lateOrStaged(ctx, bt, sw.msgs[seq], seq, 2, 0, sw.win); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if len(bt.futures) != 0 {
		b.Fatalf("%d staged events judged late", len(bt.futures))
	}
}

// TestRedeliveryCheckFollowsNewRevision guards the staged-set cache against
// a window that changes while cached: once a new revision (here a rebuild
// with the first revision's batches as prior) registers a segment, an
// event it holds is staged, not late, though the cached set of the first
// revision lacks it; what neither holds stays late.
func TestRedeliveryCheckFollowsNewRevision(t *testing.T) {
	const n = 200
	sw := stageInterleaved(t, n, 40)
	ctx := context.Background()
	sw.close(t, messages.StatusLoaded)
	c, cs := sw.collector(t)
	b := <-c.free
	check := func(seq uint64, wantLate bool) {
		t.Helper()
		before := len(b.futures)
		if err := c.lateOrStaged(ctx, b, sw.msgs[seq], seq, 2, 0, sw.win); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if late := len(b.futures) > before; late != wantLate {
			t.Errorf("seq %d: late = %v, want %v", seq, late, wantLate)
		}
	}
	check(1, false) // builds the set of revision 0
	check(2, true)  // an event of the other window
	opens := cs.opens.Load()

	// Event 2 is staged into the window's revision 1, made with the
	// batches of revision 0 as prior.
	row, evt, err := records.NewDecoder(c.layout).Decode(sw.msgs[2].Data(), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg, ack, err := staging.Write(ctx, sw.env.JS, sw.env.Store, c.layout, sw.p,
		&staging.Segment{Window: sw.win, Rows: []parquet.Row{row}, MinSeq: 2, MaxSeq: 2, MinEvt: evt, MaxEvt: evt}, "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sw.env.States.Update(ctx, messages.WindowKey(sw.p.Name, sw.win.ID()), func(cur *messages.WindowState) (*messages.WindowState, error) {
		return &messages.WindowState{
			Policy: cur.Policy, PolicyVersion: cur.PolicyVersion, WindowStart: cur.WindowStart, WindowEnd: cur.WindowEnd,
			Revision: 1, Status: messages.StatusSealed, Segments: 1, StagedRows: 1,
			RevisionBase: cur.LastSegmentSeq, LastSegmentSeq: ack.Sequence, MaxSourceSeq: cur.MaxSourceSeq,
			PriorManifest: cur.Manifest,
		}, nil
	}); err != nil {
		t.Fatal(err)
	}
	check(2, false) // in revision 1's segment
	check(1, false) // in a prior batch
	check(3, false)
	check(4, true) // in neither
	if got, want := cs.opens.Load()-opens, int64(len(sw.regs)+2); got != want {
		t.Errorf("%d object reads for revision 1, want %d (its segment %s, the prior manifest and the prior batches, once each)", got, want, reg.Object)
	}
	if err := c.awaitPublishes(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// TestSeqSet: both forms of the set answer exactly, at and around every
// member and bound.
func TestSeqSet(t *testing.T) {
	tests := []struct {
		name     string
		seqs     []uint64
		wantBits bool
	}{
		{"empty", nil, false},
		{"one", []uint64{7}, true},
		{"dense with gaps", []uint64{1, 3, 5, 6, 7, 64, 65, 127, 128, 200}, true},
		{"few long runs", []uint64{10, 11, 12, 13, 1000, 1001, 1002, 1 << 40, 1<<40 + 1}, false},
		{"sparse", []uint64{5, 100000, 200000, 300000}, false},
		{"duplicates unsorted", []uint64{9, 3, 9, 4, 3, 5}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := map[uint64]bool{}
			for _, seq := range tt.seqs {
				want[seq] = true
			}
			s := newSeqSet(slices.Clone(tt.seqs))
			if got := s.bits != nil; got != tt.wantBits {
				t.Errorf("bitmap = %v, want %v (runs %v)", got, tt.wantBits, s.runs)
			}
			probe := []uint64{0, 1, 2, 1<<64 - 1}
			for _, seq := range tt.seqs {
				probe = append(probe, seq-1, seq, seq+1, seq+64, seq-64)
			}
			for _, seq := range probe {
				if got := s.has(seq); got != want[seq] {
					t.Errorf("has(%d) = %v, want %v", seq, got, want[seq])
				}
			}
		})
	}
}

// TestStagedCacheBounds: the cache keeps the most recently used windows,
// at most stagedCacheWindows and within stagedCacheBytes, the newest always.
func TestStagedCacheBounds(t *testing.T) {
	var c stagedCache
	index := func(window string, seqs int) *stagedIndex {
		sparse := make([]uint64, seqs)
		for i := range sparse {
			sparse[i] = uint64(i) * 1000
		}
		return &stagedIndex{key: stagedKey{window: window}, set: newSeqSet(sparse)}
	}
	for i := range stagedCacheWindows + 3 {
		c.put(index(fmt.Sprint("w", i), 10))
	}
	if len(c.entries) != stagedCacheWindows {
		t.Fatalf("%d windows cached, want %d", len(c.entries), stagedCacheWindows)
	}
	if ix, _ := c.get("w0"); ix != nil {
		t.Error("least recently used window still cached")
	}
	if ix, _ := c.get("w3"); ix == nil {
		t.Error("window w3 evicted before older ones")
	}
	c.put(index("w3", 10)) // replaces, not duplicates
	if len(c.entries) != stagedCacheWindows {
		t.Fatalf("%d windows cached after a replace, want %d", len(c.entries), stagedCacheWindows)
	}
	big := index("big", stagedCacheBytes/16+1) // sparse: runs of 16 bytes each
	c.put(big)
	if len(c.entries) != 1 || c.entries[0] != big {
		t.Fatalf("%d windows cached with one over the byte bound, want it alone", len(c.entries))
	}
}
