package compactor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/staging"
	"github.com/windrow/windrow/pipeline/windowstate"
	"github.com/windrow/windrow/windows"
)

// Revisions (late: revise). Collectors stage a loaded (or sealed) window's
// late events as usual; the compare-and-set that registers such a segment
// finds the window no longer OPEN and, the registration being above the
// cutoff, counts it in the state's Next instead. Once the window is LOADED
// and its staging cleaned up, and window.revise_after has passed since the
// first of them, a compactor starts the next revision: one compare-and-set
// LOADED → SEALED with revision+1, the pending registrations' newest
// sequence as the new cutoff and the old cutoff as RevisionBase, and the
// batches the table holds as Prior. The revision is then compacted (and, on
// a crash, claimed and compacted again) like any sealed window:
//
//   - load mode replace: the previous revision's batches are merged with the
//     new segments, so the revision's batches are the window's complete rows
//     and the replace load swaps them in;
//   - append and merge: rows found in any earlier revision's batches are
//     dropped as duplicates, so the revision's batches hold only new rows.
//
// A revision with nothing new (redelivered events only) is LOADED at once.

// reviseAfter is the policy's revise_after, or its default.
func (s *Service) reviseAfter() time.Duration {
	if d := s.cfg.Policy.Window.ReviseAfter.D(); d > 0 {
		return d
	}
	return windows.DefaultReviseAfter.D()
}

// reviseRule is the policy's rule for revisions and early loads.
func (s *Service) reviseRule() windowstate.ReviseRule {
	w := s.cfg.Policy.Window
	return windowstate.ReviseRule{Revise: w.Late == windows.LateRevise, After: s.reviseAfter(), EarlyEvery: w.EarlyEvery.D(), EarlyRows: w.EarlyRows}
}

// reviseDue reports whether a window's next revision should start now:
// revise_after after the first pending segment once the window is closed
// (closed: the watermark passed its end + allowed_lateness); before that,
// only when an early trigger (early_every, early_rows) says so
// (windowstate.RevisionDue).
func (s *Service) reviseDue(st *messages.WindowState, now time.Time, closed bool) bool {
	return windowstate.RevisionDue(st, now, closed, s.reviseRule())
}

// earlyDue applies the policy's early triggers to what is staged.
func (s *Service) earlyDue(first time.Time, rows int64, now time.Time) bool {
	return s.reviseRule().EarlyDue(first, rows, now)
}

// closed reports whether the watermark has closed w (end + allowed_lateness).
func (s *Service) closed(w windows.Window) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wm.Closed(w)
}

// sealEarly seals an OPEN window before the watermark closes it, when an
// early trigger says so: it is compacted and loaded as revision 0, and the
// events it receives from now on make its next revisions (late: revise).
func (s *Service) sealEarly(ctx context.Context, st *messages.WindowState, now time.Time) (*messages.WindowState, error) {
	w := windows.Window{Start: st.WindowStart.UTC(), End: st.WindowEnd.UTC()}
	if st.Status != messages.StatusOpen || s.closed(w) || !s.earlyDue(st.FirstStagedAt, st.StagedRows, now) {
		return nil, nil
	}
	s.mu.Lock()
	wm, _ := s.wm.Value()
	s.mu.Unlock()
	s.log.InfoContext(ctx, "loading window early", "window", st.ID(), "staged_rows", st.StagedRows, "first_staged_at", st.FirstStagedAt)
	return s.seal(ctx, w, wm)
}

// startRevision moves a LOADED window with pending late segments to SEALED
// under the next revision, owned by this instance. It returns the state
// when this instance owns the revision, nil when there is nothing to do.
func (s *Service) startRevision(ctx context.Context, st *messages.WindowState, closed bool) (*messages.WindowState, error) {
	p := s.cfg.Policy
	now := s.cfg.Now().UTC()
	started := false
	run := s.cfg.Tracing.NewRun(ctx) // a revision is a run of its own, with its own trace
	rs := windowstate.RevisionStart{
		Closed: closed, Rule: s.reviseRule(), PolicyVersion: p.Version, Replace: p.Load.Mode == windows.LoadReplace,
		Lease: windowstate.Lease{Owner: s.cfg.Instance, For: s.cfg.Lease}, TraceParent: run, TraceID: telemetry.TraceID(run),
	}
	out, err := s.cfg.States.Update(ctx, st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		started = false
		next, err := windowstate.StartRevision(cur, now, rs)
		if err != nil {
			return nil, noWrite(err)
		}
		started = true
		return next, nil
	})
	if err != nil || !started {
		return nil, err
	}
	s.stats.sealed.Add(1)
	s.log.InfoContext(ctx, "revising window", "window", out.ID(), "revision", out.Revision, "late_segments", out.Segments,
		"late_rows", out.StagedRows, "prior_rows", out.PriorRows, "cutoff", out.LastSegmentSeq, "after", out.RevisionBase)
	return out, nil
}

// openPrior opens the batch files of a revision's prior batches.
func (s *Service) openPrior(ctx context.Context, st *messages.WindowState, prior []messages.BatchRef) (files []*parquet.File, rows int64, closeAll func(), err error) {
	var closers []func() error
	closeAll = func() {
		for _, c := range closers {
			_ = c()
		}
	}
	for _, b := range prior {
		f, closeFile, err := s.openFile(ctx, b.Object, b.SHA256)
		if err != nil {
			closeAll()
			return nil, 0, nil, fmt.Errorf("revision %d: earlier batch %s: %w", st.Revision, b.BatchID, err)
		}
		closers = append(closers, closeFile)
		files = append(files, f)
		rows += b.Rows
	}
	return files, rows, closeAll, nil
}

// cleanupRevised deletes the staged segments of a loaded window's runs so
// far (registrations at or below its cutoff) and purges those
// registrations, keeping any registered since for its next revision.
func (s *Service) cleanupRevised(ctx context.Context, st *messages.WindowState) error {
	regs, err := staging.ReadRegistrations(ctx, s.cfg.JS, st.Policy, st.ID(), 0, st.LastSegmentSeq)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range regs {
		if err := s.cfg.Store.Delete(ctx, r.Object); err != nil {
			errs = append(errs, fmt.Errorf("delete segment %s: %w", r.Object, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	stream, err := s.cfg.JS.Stream(ctx, messages.StreamSegments)
	if err != nil {
		return err
	}
	return stream.Purge(ctx, jetstream.WithPurgeSubject(messages.SegmentSubject(st.Policy, st.ID())), jetstream.WithPurgeSequence(st.LastSegmentSeq+1))
}
