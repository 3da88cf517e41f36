package compactor

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/internal/testdisk"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// TestDiskFullCompactionWaitsAndBacksOff guards issue 12 (item 8): a
// compaction whose batch writes find the object store's disk full (a real
// tmpfs filled to the last byte) leaves its window SEALED, never FAILED,
// and is retried with a growing backoff; once space is freed the window is
// compacted with every staged row, once.
func TestDiskFullCompactionWaitsAndBacksOff(t *testing.T) {
	env := testkit.New(t)
	disk := testdisk.New(t, 8<<20)
	store, err := local.New(disk.Dir + "/objects")
	if err != nil {
		t.Fatal(err)
	}
	env.Store = store
	p := testkit.Policy(t, policySrc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
	stageSegment(t, env, l, p, win, seqRange(1, 1500))
	stageSegment(t, env, l, p, win, seqRange(1001, 3000)) // 500 staged twice
	disk.Fill(t)

	logs := &backoffLog{}
	const sweep = 50 * time.Millisecond
	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "c1",
		Sweep: sweep, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.seal(ctx, win, win.End); err != nil || st == nil {
		t.Fatalf("seal: %v, %v", st, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	// Compactions fail for want of space, ever further apart.
	testkit.WaitFor(t, 20*time.Second, "three compactions back off on the full disk", func() bool { return len(logs.waits()) >= 3 })
	waits := logs.waits()
	for i, w := range waits[:3] {
		if want := sweep << i; w != want {
			t.Errorf("backoff after failure %d: %s, want %s (doubling from the sweep interval)", i+1, w, want)
		}
	}
	st, _, err := env.States.Get(ctx, p.Name, win.ID())
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != messages.StatusSealed || st.Error != "" || st.BatchCount != 0 {
		t.Fatalf("window on a full disk: %s %q, %d batches; want SEALED, no error, no batches", st.Status, st.Error, st.BatchCount)
	}
	if _, full := store.DiskFull(); !full {
		t.Error("the store does not report its disk full")
	}

	disk.Free(t)
	testkit.WaitFor(t, 20*time.Second, "the window compacted after space was freed", func() bool {
		st, _, err := env.States.Get(ctx, p.Name, win.ID())
		return err == nil && st.Status == messages.StatusCompacted
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, _, err = env.States.Get(context.Background(), p.Name, win.ID())
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 3000 || st.Duplicates != 500 || st.StagedRows != 3500 {
		t.Errorf("compacted %d rows, %d duplicates of %d staged; want 3000, 500, 3500", st.Rows, st.Duplicates, st.StagedRows)
	}
	if _, full := store.DiskFull(); full {
		t.Error("the store still reports its disk full after the compaction wrote its batches")
	}
}

// backoffLog is a slog handler that keeps the backoff of each "disk is
// full" compaction error.
type backoffLog struct {
	mu sync.Mutex
	d  []time.Duration
}

func (h *backoffLog) waits() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.d...)
}

func (h *backoffLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *backoffLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *backoffLog) WithGroup(string) slog.Handler            { return h }
func (h *backoffLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "backoff" {
			h.mu.Lock()
			h.d = append(h.d, a.Value.Duration())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}
