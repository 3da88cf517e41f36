package compactor

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// countingStore is a real store that counts the objects open at once.
type countingStore struct {
	objstore.Store
	mu            sync.Mutex
	open, maxOpen int
}

func (s *countingStore) Open(ctx context.Context, key string) (objstore.Object, error) {
	obj, err := s.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.open++
	s.maxOpen = max(s.maxOpen, s.open)
	s.mu.Unlock()
	return &countedObject{Object: obj, s: s}, nil
}

func (s *countingStore) max() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxOpen
}

type countedObject struct {
	objstore.Object
	s    *countingStore
	once sync.Once
}

func (o *countedObject) Close() error {
	o.once.Do(func() {
		o.s.mu.Lock()
		o.s.open--
		o.s.mu.Unlock()
	})
	return o.Object.Close()
}

// stageManySegments stages n small segments of 30 events each, every one
// overlapping the next by 10 (redelivered batches), plus one late copy of
// the first 25 events (a redelivery far from the original, so in another
// merge group). It returns the distinct sequences, the staged rows and the
// duplicates.
func stageManySegments(t testing.TB, env *testkit.Env, l *records.Layout, p *windows.Policy, win windows.Window, n int) (distinct, staged, dups int64) {
	for i := range n {
		from := uint64(i*20 + 1)
		stageSegment(t, env, l, p, win, seqRange(from, from+29))
	}
	stageSegment(t, env, l, p, win, seqRange(1, 25))
	distinct = int64((n-1)*20 + 30)
	staged = int64(n*30 + 25)
	return distinct, staged, staged - distinct
}

// TestCompactBoundedFanIn guards issue 12 item 4: a window with more
// segments than may be open at once compacts with exact rows, duplicates
// and values, never holding more than the fan-in's objects open, and leaves
// no merge runs behind.
func TestCompactBoundedFanIn(t *testing.T) {
	const segments = 150
	for _, tc := range []struct {
		name    string
		fanIn   int   // MergeFanIn; 0: the default
		memory  int64 // MergeMemory; 0: the default
		maxOpen int
		passes  int // intermediate merge passes
	}{
		{"default fan-in", 0, 0, 64, 1},     // 151 segments: 3 runs
		{"fan-in 8", 8, 0, 8, 2},            // 151 segments: 19 runs, 3 runs
		{"memory bound", 0, 1 << 20, 64, 2}, // about ten segments' read buffers fit
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testkit.New(t)
			p := testkit.Policy(t, policySrc)
			l, err := records.NewLayout(p)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
			distinct, staged, dups := stageManySegments(t, env, l, p, win, segments)
			store := &countingStore{Store: env.Store}
			mergeDir := t.TempDir()
			rec := tracetest.NewSpanRecorder()
			tr, err := telemetry.New(ctx, telemetry.Config{Service: telemetry.ServiceCompactor, SpanProcessor: rec})
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(Config{Tracing: tr, JS: env.JS, Store: store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "c1",
				MergeFanIn: tc.fanIn, MergeMemory: tc.memory, MergeDir: mergeDir})
			if err != nil {
				t.Fatal(err)
			}
			st, err := c.seal(ctx, win, win.End.Add(time.Minute))
			if err != nil || st == nil {
				t.Fatalf("seal: %v %v", st, err)
			}
			if err := c.compact(ctx, st); err != nil {
				t.Fatal(err)
			}
			if got := store.max(); got > tc.maxOpen {
				t.Errorf("%d objects open at once, want at most %d", got, tc.maxOpen)
			}
			for _, sp := range rec.Ended() {
				if sp.Name() != "compactor.merge_dedup" {
					continue
				}
				for _, a := range sp.Attributes() {
					if a.Key == "windrow.merge_passes" && a.Value.AsInt64() != int64(tc.passes) {
						t.Errorf("%d intermediate merge passes, want %d", a.Value.AsInt64(), tc.passes)
					}
				}
			}
			done, _, err := env.States.Get(ctx, p.Name, win.ID())
			if err != nil {
				t.Fatal(err)
			}
			if done.Status != messages.StatusCompacted || done.Rows != distinct || done.Duplicates != dups || done.StagedRows != staged {
				t.Fatalf("state %s rows %d dups %d staged %d; want COMPACTED %d %d %d", done.Status, done.Rows, done.Duplicates, done.StagedRows, distinct, dups, staged)
			}
			// Every sequence once, sorted, with its own value.
			var prev parquetRow
			var next uint64
			sum, n := int64(0), int64(0)
			for _, b := range batchesOf(t, env, done) {
				obj, err := env.Store.Open(ctx, b.Object)
				if err != nil {
					t.Fatal(err)
				}
				f, err := l.OpenFile(obj, obj.Size())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.Merge(filesOf(f), func(rows []parquetRow) error {
					for _, r := range rows {
						if prev != nil && l.Compare(prev, r) > 0 {
							t.Fatalf("batch %s not sorted", b.Object)
						}
						prev = r.Clone()
						next++
						sum += int64(l.Seq(r))
						n++
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				obj.Close()
			}
			if want := distinct * (distinct + 1) / 2; n != distinct || sum != want {
				t.Errorf("batches hold %d rows summing to %d, want %d summing to %d", n, sum, distinct, want)
			}
			if left, _ := os.ReadDir(mergeDir); len(left) != 0 {
				t.Errorf("merge runs left behind: %v", left)
			}
		})
	}
}
