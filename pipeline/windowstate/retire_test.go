package windowstate_test

import (
	"errors"
	"testing"
	"time"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/windowstate"
)

// TestRetirable: only a LOADED window with its staging deleted, nothing
// pending, loaded more than retain ago and ending more than retain behind
// the watermark may be retired.
func TestRetirable(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	start := now.Add(-10 * time.Hour)
	rule := windowstate.RetireRule{Retain: 2 * time.Hour, Now: now, Watermark: now.Add(-time.Minute)}
	loaded := func(edit func(*messages.WindowState)) *messages.WindowState {
		st := &messages.WindowState{Policy: "p", WindowStart: start, WindowEnd: start.Add(time.Hour), Status: messages.StatusLoaded,
			StagingDeleted: true, LoadedAt: now.Add(-3 * time.Hour), Rows: 5, StagedRows: 5}
		if edit != nil {
			edit(st)
		}
		return st
	}
	for _, tc := range []struct {
		name    string
		st      *messages.WindowState
		rule    windowstate.RetireRule
		wantErr error
	}{
		{"retirable", loaded(nil), rule, nil},
		{"no state", nil, rule, windowstate.ErrRefused},
		{"compacted", loaded(func(s *messages.WindowState) { s.Status = messages.StatusCompacted }), rule, windowstate.ErrRefused},
		{"staging not deleted", loaded(func(s *messages.WindowState) { s.StagingDeleted = false }), rule, windowstate.ErrRefused},
		{"next revision pending", loaded(func(s *messages.WindowState) { s.Next = &messages.PendingRevision{Segments: 1} }), rule, windowstate.ErrRefused},
		{"loaded recently", loaded(func(s *messages.WindowState) { s.LoadedAt = now.Add(-time.Hour) }), rule, windowstate.ErrRefused},
		{"end not retain behind the watermark", loaded(nil), windowstate.RetireRule{Retain: 2 * time.Hour, Now: now, Watermark: start.Add(3 * time.Hour)}, windowstate.ErrRefused},
		{"no watermark", loaded(nil), windowstate.RetireRule{Retain: 2 * time.Hour, Now: now}, windowstate.ErrRefused},
	} {
		if err := windowstate.Retirable(tc.st, tc.rule); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
	}

	// A window being retired takes no registration (late, revise or not),
	// starts no revision and no replay.
	marked, err := windowstate.MarkRetiring(loaded(nil), rule)
	if err != nil || !marked.Retiring {
		t.Fatalf("MarkRetiring = %+v, %v", marked, err)
	}
	if _, err := windowstate.MarkRetiring(marked, rule); !errors.Is(err, windowstate.ErrNoChange) {
		t.Errorf("MarkRetiring again: err = %v, want ErrNoChange", err)
	}
	seg := windowstate.Segment{Reg: &messages.SegmentRegistered{Rows: 1}, Seq: marked.LastSegmentSeq + 1, StagedAt: now}
	for _, revise := range []bool{false, true} {
		if _, err := windowstate.Register(marked, windowstate.Window{}, seg, revise); !errors.Is(err, windowstate.ErrLate) {
			t.Errorf("Register (revise %v) in a retiring window: err = %v, want ErrLate", revise, err)
		}
	}
	marked.BatchCount = 1
	if _, err := windowstate.Replay(marked); !errors.Is(err, windowstate.ErrRefused) {
		t.Errorf("Replay of a retiring window: err = %v, want refused", err)
	}
	if _, err := windowstate.HoldRebuild(marked, now); !errors.Is(err, windowstate.ErrRefused) {
		t.Errorf("HoldRebuild of a retiring window: err = %v, want refused", err)
	}

	// Retire counts the window and moves the horizon, never back.
	rec, err := windowstate.Retire(messages.Retirement{Policy: "p", Horizon: start.Add(2 * time.Hour)}, marked, start.Add(time.Hour), false, 42)
	if err != nil || !rec.Horizon.Equal(start.Add(2*time.Hour)) || rec.Rows != 5 || rec.Windows != 1 || rec.AckFloor != 42 {
		t.Errorf("Retire = %+v, %v; want the horizon kept at %s, 5 rows of 1 window, ack floor 42", rec, err, start.Add(2*time.Hour))
	}
	if _, err := windowstate.Retire(messages.Retirement{Policy: "p"}, marked, start, false, 0); err == nil {
		t.Error("Retire under a horizon that does not cover the window was accepted")
	}
}
