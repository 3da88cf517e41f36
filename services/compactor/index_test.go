package compactor

import (
	"context"
	"testing"
	"time"

	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
)

// TestSweepReadsOnlyCandidates: a sweep finds due work without listing
// every state. With 2,000 LOADED windows (staging deleted, nothing
// pending, loaded just now) and 3 OPEN ones, it reads the 3 OPEN states
// and lists nothing; the LOADED ones are known from the index a KV watcher
// keeps. A window that changes (a LOADED one gets a pending revision) is a
// candidate at the next sweep.
func TestSweepReadsOnlyCandidates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := testkit.New(t)
	p := testkit.Policy(t, policySrc)
	now := time.Now().UTC()
	h0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(st *messages.WindowState) {
		t.Helper()
		if _, err := env.States.Update(ctx, st.Key(), func(*messages.WindowState) (*messages.WindowState, error) { return st, nil }); err != nil {
			t.Fatal(err)
		}
	}
	const loaded, open = 2000, 3
	for i := range loaded + open {
		start := h0.Add(time.Duration(i) * time.Hour)
		st := &messages.WindowState{Policy: p.Name, PolicyVersion: p.Version, WindowStart: start, WindowEnd: start.Add(time.Hour),
			Status: messages.StatusOpen, Segments: 1, StagedRows: 10, LastSegmentSeq: uint64(i + 1), FirstStagedAt: now}
		if i < loaded {
			st.Status, st.Rows, st.LoadedRows, st.LoadedAt, st.StagingDeleted = messages.StatusLoaded, 10, 10, now, true
		}
		put(st)
	}
	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	// A watermark far past every window: retirement looks at them too (none
	// is retirable: loaded just now).
	c.wm.Restore(h0.Add((loaded + open + 10) * time.Hour))
	ictx, stop := context.WithCancel(ctx)
	defer stop()
	if err := c.startIndex(ictx); err != nil {
		t.Fatal(err)
	}
	sweep := func() (reads, lists int64) {
		t.Helper()
		r0, l0 := env.States.Reads()
		if err := c.sweep(ctx); err != nil {
			t.Fatal(err)
		}
		r1, l1 := env.States.Reads()
		return r1 - r0, l1 - l0
	}
	if reads, lists := sweep(); reads != open || lists != 0 {
		t.Errorf("sweep read %d states and listed %d times; want the %d OPEN states read, no list", reads, lists, open)
	}
	// The OPEN windows are known for sealing, as before.
	c.mu.Lock()
	known := len(c.open)
	c.mu.Unlock()
	if known != open {
		t.Errorf("%d windows known open, want %d", known, open)
	}

	// A late segment registered in a LOADED window (late: revise): the
	// index sees the change, and the next sweep reads that window too.
	target := h0.Add(7 * time.Hour)
	if _, err := env.States.Update(ctx, messages.WindowKey(p.Name, messages.WindowID(target)), func(cur *messages.WindowState) (*messages.WindowState, error) {
		cur.Next = &messages.PendingRevision{Segments: 1, StagedRows: 1, LastSegmentSeq: 100_000, FirstStagedAt: now}
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the index sees the pending revision", func() bool {
		for _, w := range c.idx.plan(p.Name, messages.Retirement{}, c.retireRule(now)).work {
			if w.Equal(target) {
				return true
			}
		}
		return false
	})
	if reads, lists := sweep(); reads != open+1 || lists != 0 {
		t.Errorf("sweep after the change read %d states and listed %d times; want %d read, no list", reads, lists, open+1)
	}
}
