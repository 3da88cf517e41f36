package compactor

import (
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
)

// TestReviseDue: when a loaded window's next revision may start. A
// rebuild from the stream starts only once its staging is complete (the
// hold released), never from part of it, even long after its hold's
// horizon; late events wait revise_after once the window is closed, and
// the early triggers before that.
func TestReviseDue(t *testing.T) {
	env := testkit.New(t)
	src := strings.Replace(policySrc, "window: {size: 1h}", "window: {size: 1h, late: revise, revise_after: 1m, early_every: 10m, early_rows: 5000}", 1)
	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: testkit.Policy(t, src), Instance: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	loaded := func(next *messages.PendingRevision) *messages.WindowState {
		return &messages.WindowState{Status: messages.StatusLoaded, StagingDeleted: true, LastSegmentSeq: 10, Next: next}
	}
	for _, tc := range []struct {
		name   string
		st     *messages.WindowState
		closed bool
		want   bool
	}{
		{"nothing pending", loaded(nil), true, false},
		{"late events, closed, revise_after not passed", loaded(&messages.PendingRevision{Segments: 1, LastSegmentSeq: 11, FirstStagedAt: now.Add(-30 * time.Second)}), true, false},
		{"late events, closed, revise_after passed", loaded(&messages.PendingRevision{Segments: 1, LastSegmentSeq: 11, FirstStagedAt: now.Add(-time.Minute)}), true, true},
		{"staging not cleaned up yet", &messages.WindowState{Status: messages.StatusLoaded, Next: &messages.PendingRevision{Segments: 1, LastSegmentSeq: 11, FirstStagedAt: now.Add(-time.Hour)}}, true, false},
		{"open window, early_every not passed", loaded(&messages.PendingRevision{Segments: 1, StagedRows: 10, LastSegmentSeq: 11, FirstStagedAt: now.Add(-5 * time.Minute)}), false, false},
		{"open window, early_every passed", loaded(&messages.PendingRevision{Segments: 1, StagedRows: 10, LastSegmentSeq: 11, FirstStagedAt: now.Add(-10 * time.Minute)}), false, true},
		{"open window, early_rows reached", loaded(&messages.PendingRevision{Segments: 3, StagedRows: 5000, LastSegmentSeq: 13, FirstStagedAt: now}), false, true},
		{"rebuild still staging", loaded(&messages.PendingRevision{Segments: 2, LastSegmentSeq: 12, FirstStagedAt: now.Add(-time.Hour), Rebuild: true, HoldUntil: now.Add(5 * time.Minute)}), true, false},
		{"rebuild stopped half way (hold horizon passed)", loaded(&messages.PendingRevision{Segments: 2, LastSegmentSeq: 12, FirstStagedAt: now.Add(-time.Hour), Rebuild: true, HoldUntil: now.Add(-time.Hour)}), true, false},
		{"rebuild released", loaded(&messages.PendingRevision{Segments: 2, LastSegmentSeq: 12, FirstStagedAt: now, Rebuild: true}), true, true},
		{"rebuild that staged nothing", loaded(&messages.PendingRevision{Rebuild: true}), true, false},
	} {
		if got := c.reviseDue(tc.st, now, tc.closed); got != tc.want {
			t.Errorf("%s: due = %v, want %v", tc.name, got, tc.want)
		}
	}
}
