package compactor

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/pipeline/staging"
	"github.com/windrow/windrow/windows"
)

const policySrc = `name: comp
source: {stream: SRC, subjects: [ev.>]}
schema:
  fields:
    - {name: k, type: string, required: true}
    - {name: n, type: int64, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h}
output: {sort_by: [k, at], target_file_size: 1MiB, row_group_rows: 1000}
load: {table: comp}
`

var hour = time.Date(2026, 5, 1, 1, 0, 0, 0, time.UTC)

// stageSegment writes and registers one segment of the window holding the
// events with the given source sequences, as a collector would.
func stageSegment(t testing.TB, env *testkit.Env, l *records.Layout, p *windows.Policy, win windows.Window, seqs []uint64) {
	t.Helper()
	stageKeyed(t, env, l, p, win, seqs, func(seq uint64) string { return fmt.Sprintf("k%d", seq%7) })
}

// stageKeyed is stageSegment with field k of each event given by keyOf.
func stageKeyed(t testing.TB, env *testkit.Env, l *records.Layout, p *windows.Policy, win windows.Window, seqs []uint64, keyOf func(uint64) string) {
	t.Helper()
	ctx := context.Background()
	dec := records.NewDecoder(l)
	var rows = make([]parquetRow, 0, len(seqs))
	for _, seq := range seqs {
		at := win.Start.Add(time.Duration(seq) * time.Second)
		row, _, err := dec.Decode([]byte(fmt.Sprintf(`{"k":%q,"n":%d,"at":%q}`, keyOf(seq), seq, at.Format(time.RFC3339))), seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	sortRows(l, rows)
	segID := fmt.Sprintf("seg-%d-%d", seqs[0], len(seqs))
	key := staging.SegmentKey(p.Name, win.ID(), segID)
	w, err := env.Store.Create(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFile(w, rows, records.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	size, sha, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	reg := &messages.SegmentRegistered{Policy: p.Name, PolicyVersion: 1, WindowStart: win.Start, WindowEnd: win.End, SegmentID: segID,
		Object: key, Rows: int64(len(rows)), Bytes: size, SHA256: sha, MinSourceSeq: seqs[0], MaxSourceSeq: seqs[len(seqs)-1],
		MinEventTime: win.Start, MaxEventTime: win.End.Add(-time.Second), Collector: "t", CreatedAt: time.Now()}
	ack, err := natsx.Publish(ctx, env.JS, messages.SegmentSubject(p.Name, win.ID()), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.States.Update(ctx, messages.WindowKey(p.Name, win.ID()), func(cur *messages.WindowState) (*messages.WindowState, error) {
		if cur == nil {
			cur = &messages.WindowState{Policy: p.Name, PolicyVersion: 1, WindowStart: win.Start, WindowEnd: win.End, Status: messages.StatusOpen}
		}
		cur.Segments++
		cur.StagedRows += reg.Rows
		cur.LastSegmentSeq = ack.Sequence
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestCompactDedupsAndIsDeterministic: segments that overlap (a redelivered
// batch staged twice) compact to each source sequence once, and compacting
// the same sealed window again (a retry after a crash) yields the same batch
// ids and byte-identical files.
func TestCompactDedupsAndIsDeterministic(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, policySrc)
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
	stageSegment(t, env, l, p, win, seqRange(1, 1500))
	stageSegment(t, env, l, p, win, seqRange(1001, 2500)) // 500 redelivered events staged again
	stageSegment(t, env, l, p, win, seqRange(2501, 3000))

	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.seal(ctx, win, win.End.Add(time.Minute))
	if err != nil || st == nil {
		t.Fatalf("seal: %v %v", st, err)
	}
	if again, err := c.seal(ctx, win, win.End.Add(time.Minute)); err != nil || again != nil {
		t.Fatalf("second seal of the same window = %v, %v; want nothing to do", again, err)
	}
	if err := c.compact(ctx, st); err != nil {
		t.Fatal(err)
	}
	done, _, err := env.States.Get(ctx, p.Name, win.ID())
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != messages.StatusCompacted || done.Rows != 3000 || done.Duplicates != 500 || done.StagedRows != 3500 {
		t.Fatalf("state %s rows %d dups %d staged %d; want COMPACTED 3000 500 3500", done.Status, done.Rows, done.Duplicates, done.StagedRows)
	}
	// Read the batches back: every sequence once, in sort order.
	seen := map[uint64]bool{}
	doneBatches := batchesOf(t, env, done)
	for i, b := range doneBatches {
		if want := messages.BatchID(p.Name, win.Start, 0, i); b.BatchID != want {
			t.Errorf("batch %d id %s, want %s", i, b.BatchID, want)
		}
		obj, err := env.Store.Open(ctx, b.Object)
		if err != nil {
			t.Fatal(err)
		}
		f, err := l.OpenFile(obj, obj.Size())
		if err != nil {
			t.Fatal(err)
		}
		var prev parquetRow
		if _, err := l.Merge(filesOf(f), func(rows []parquetRow) error {
			for _, r := range rows {
				if seen[l.Seq(r)] {
					t.Errorf("sequence %d twice", l.Seq(r))
				}
				seen[l.Seq(r)] = true
				if prev != nil && l.Compare(prev, r) > 0 {
					t.Errorf("batch %s not sorted", b.Object)
				}
				prev = r.Clone()
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		obj.Close()
	}
	if len(seen) != 3000 {
		t.Errorf("batches hold %d distinct sequences, want 3000", len(seen))
	}
	// One load command per batch, id = batch id.
	stream, err := env.JS.Stream(ctx, messages.StreamLoad)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(info.State.Msgs) != len(doneBatches) {
		t.Errorf("%d load commands, want %d", info.State.Msgs, len(doneBatches))
	}

	// A retry of the same compaction (the window back to SEALED, as after a
	// crash before the state was written) gives the same ids and bytes, and
	// its load commands are deduplicated by id.
	if _, err := env.States.Update(ctx, done.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		cur.Status, cur.BatchCount, cur.Manifest, cur.Rows, cur.Duplicates = messages.StatusSealed, 0, "", 0, 0
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	again, _, err := env.States.Get(ctx, p.Name, win.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.compact(ctx, again); err != nil {
		t.Fatal(err)
	}
	redo, _, err := env.States.Get(ctx, p.Name, win.ID())
	if err != nil {
		t.Fatal(err)
	}
	redoBatches := batchesOf(t, env, redo)
	if len(redoBatches) != len(doneBatches) {
		t.Fatalf("retry made %d batches, first run %d", len(redoBatches), len(doneBatches))
	}
	for i := range redoBatches {
		if !reflect.DeepEqual(redoBatches[i], doneBatches[i]) {
			t.Errorf("batch %d differs on retry: %+v vs %+v", i, redoBatches[i], doneBatches[i])
		}
	}
	info, err = stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(info.State.Msgs) != len(doneBatches) {
		t.Errorf("%d load commands after the retry, want %d (deduplicated)", info.State.Msgs, len(doneBatches))
	}
}

// TestCompactFailsWindow: a window whose staged input is not what its
// collectors registered is FAILED with the reason, not compacted: a
// registration missing from the stream (compacting would silently drop its
// rows), or a segment whose bytes are not the ones its collector wrote (here
// rewritten with other rows, still valid Parquet).
func TestCompactFailsWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, ctx context.Context, env *testkit.Env, p *windows.Policy, win windows.Window)
		reason string // in the window's error
	}{
		{"registration missing", func(t *testing.T, ctx context.Context, env *testkit.Env, _ *windows.Policy, _ windows.Window) {
			stream, _ := env.JS.Stream(ctx, messages.StreamSegments)
			if err := stream.Purge(ctx, jetstream.WithPurgeSequence(2)); err != nil { // lose the first registration
				t.Fatal(err)
			}
		}, "registered segments"},
		{"damaged segment", func(t *testing.T, ctx context.Context, env *testkit.Env, p *windows.Policy, win windows.Window) {
			other, err := env.Store.Get(ctx, staging.SegmentKey(p.Name, win.ID(), "seg-11-10"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.Store.Put(ctx, staging.SegmentKey(p.Name, win.ID(), "seg-1-10"), other); err != nil {
				t.Fatal(err)
			}
		}, "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testkit.New(t)
			p := testkit.Policy(t, policySrc)
			l, _ := records.NewLayout(p)
			ctx := context.Background()
			win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
			stageSegment(t, env, l, p, win, seqRange(1, 10))
			stageSegment(t, env, l, p, win, seqRange(11, 20))
			tc.damage(t, ctx, env, p, win)
			c, _ := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "c1"})
			st, err := c.seal(ctx, win, win.End)
			if err != nil || st == nil {
				t.Fatal(err)
			}
			if err := c.compact(ctx, st); err == nil {
				t.Fatalf("compact succeeded with a %s", tc.name)
			}
			got, _, _ := env.States.Get(ctx, p.Name, win.ID())
			if got.Status != messages.StatusFailed || !strings.Contains(got.Error, tc.reason) {
				t.Errorf("state %s error %q, want FAILED with %q in the reason", got.Status, got.Error, tc.reason)
			}
			if got.BatchCount != 0 || got.Manifest != "" {
				t.Errorf("%d batches written (manifest %q)", got.BatchCount, got.Manifest)
			}
		})
	}
}

// TestMaxFileRowsSplitsBatches: output.max_file_rows cuts a window's rows
// into files of at most that many rows (besides target_file_size), the same
// files on a retry.
func TestMaxFileRowsSplitsBatches(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, strings.Replace(policySrc, "row_group_rows: 1000}", "row_group_rows: 1000, max_file_rows: 1000}", 1))
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
	stageSegment(t, env, l, p, win, seqRange(1, 1800))
	stageSegment(t, env, l, p, win, seqRange(1501, 3500)) // 300 redelivered
	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	done := sealAndCompact(t, c, env, win)
	var rows []int64
	for _, b := range batchesOf(t, env, done) {
		rows = append(rows, b.Rows)
	}
	if want := []int64{1000, 1000, 1000, 500}; !slices.Equal(rows, want) || done.Rows != 3500 {
		t.Fatalf("batches of %v rows (window %d); want %v (3500)", rows, done.Rows, want)
	}
}

// TestKeyedBatchesGroupSmallKeys: with key [k], keys below
// target_file_size/KeyFileDivisor share one file, which stays open across
// the large keys' own files, so the small keys of a window never make a
// file each; a large key gets files under its key path, split at
// max_file_rows; parts are numbered as files start and listed in order.
func TestKeyedBatchesGroupSmallKeys(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, strings.Replace(policySrc, "row_group_rows: 1000}", "row_group_rows: 1000, max_file_rows: 1000}\nkey: [k]", 1))
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
	// 1MiB / 16 = 64 KiB: a row is 25 raw bytes, so 2,800 rows make a
	// key large and 10 leave it small.
	sizes := []struct {
		key  string
		rows uint64
	}{{"a", 10}, {"b", 3000}, {"c", 10}, {"d", 2800}, {"e", 10}}
	var from uint64 = 1
	for _, k := range sizes {
		stageKeyed(t, env, l, p, win, seqRange(from, from+k.rows-1), func(uint64) string { return k.key })
		from += k.rows
	}
	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	done := sealAndCompact(t, c, env, win)
	var got []string
	for i, b := range batchesOf(t, env, done) {
		if want := messages.BatchID(p.Name, win.Start, 0, i); b.BatchID != want || !strings.HasSuffix(b.Object, fmt.Sprintf("/%spart-%04d.parquet", b.Key, i)) {
			t.Errorf("batch %d: id %s, object %s; want %s under its key path", i, b.BatchID, b.Object, want)
		}
		got = append(got, fmt.Sprintf("%s%v:%d", b.Key, b.Keys, b.Rows))
	}
	want := []string{"[k=a/ k=c/ k=e/]:30", "k=b/[]:1000", "k=b/[]:1000", "k=b/[]:1000", "k=d/[]:1000", "k=d/[]:1000", "k=d/[]:800"}
	if !slices.Equal(got, want) || done.Rows != 5830 {
		t.Errorf("batches %v (window %d rows); want %v (5830)", got, done.Rows, want)
	}
}
