package windowstate

import (
	"time"

	"github.com/windrow/windrow/messages"
)

// ReviseRule is a policy's rule for starting a window's next revision
// (late: revise) and for loading a window early.
type ReviseRule struct {
	Revise     bool          // late: revise; the early triggers apply only then
	After      time.Duration // revise_after (or its default)
	EarlyEvery time.Duration // early_every; 0: off
	EarlyRows  int64         // early_rows; 0: off
}

// EarlyDue reports whether the early triggers (early_every, early_rows)
// say that rows staged since first should be loaded now.
func (r ReviseRule) EarlyDue(first time.Time, rows int64, now time.Time) bool {
	if !r.Revise {
		return false
	}
	return (r.EarlyEvery > 0 && !first.IsZero() && !now.Before(first.Add(r.EarlyEvery))) ||
		(r.EarlyRows > 0 && rows >= r.EarlyRows)
}

// RevisionDue reports whether a window's next revision should start now:
// the window is LOADED, its staging deleted and segments pending; a
// rebuild from the stream once its hold is released; otherwise revise_after
// after the first pending segment once the window is closed (the watermark
// passed its end + allowed_lateness), and before that only when an early
// trigger says so.
func RevisionDue(cur *messages.WindowState, now time.Time, closed bool, r ReviseRule) bool {
	if cur.Status != messages.StatusLoaded || !cur.StagingDeleted || cur.Next == nil || cur.Next.Segments == 0 {
		return false
	}
	if cur.Next.Rebuild {
		// A rebuild from the stream is made once its staging is complete
		// (the hold released), at once; never from part of it.
		return cur.Next.HoldUntil.IsZero()
	}
	if closed {
		return !now.Before(cur.Next.FirstStagedAt.Add(r.After))
	}
	return r.EarlyDue(cur.Next.FirstStagedAt, cur.Next.StagedRows, now)
}

// RevisionStart is what a compactor starting a window's next revision
// brings to it.
type RevisionStart struct {
	Closed        bool // the watermark closed the window
	Rule          ReviseRule
	PolicyVersion uint64 // the version the revision is made under
	Replace       bool   // load mode replace
	Lease         Lease
	TraceParent   string // the revision's own run
	TraceID       string
}

// StartRevision moves a LOADED window whose next revision is due
// (RevisionDue) to SEALED under revision+1, owned by r.Lease.Owner: the
// pending registrations' newest sequence is the new cutoff, the old
// cutoff its RevisionBase. Its prior batches are what it is made with besides
// its segments: with load mode replace the previous revision's batches
// (none for a rebuild from the stream), otherwise the batches of every
// earlier revision. Every other field starts afresh. A LOADED window whose
// revision is not due changes nothing; any other window is refused.
func StartRevision(cur *messages.WindowState, now time.Time, r RevisionStart) (*messages.WindowState, error) {
	if cur == nil || cur.Status != messages.StatusLoaded {
		return nil, refuse(cur, "start revision", "the window is not loaded")
	}
	if cur.Retiring {
		return nil, refuse(cur, "start revision", "the window is being retired (window.retain)")
	}
	if !RevisionDue(cur, now, r.Closed, r.Rule) {
		return nil, noChange("no revision due")
	}
	n := cur.Next
	// The prior batches are read from the previous revision's manifest:
	// its batches (replace), or its prior batches and its batches.
	priorManifest, priorAll, priorRows := cur.Manifest, false, cur.Rows
	switch {
	case n.Rebuild && r.Replace:
		priorManifest, priorRows = "", 0 // rebuilt from the source stream: its segments alone
	case !r.Replace:
		priorAll, priorRows = true, cur.PriorRows+cur.Rows
	}
	return &messages.WindowState{
		Policy: cur.Policy, PolicyVersion: r.PolicyVersion, WindowStart: cur.WindowStart, WindowEnd: cur.WindowEnd,
		Revision: cur.Revision + 1, Status: messages.StatusSealed,
		Segments: n.Segments, StagedRows: n.StagedRows, LastSegmentSeq: n.LastSegmentSeq,
		MaxSourceSeq: cur.MaxSourceSeq, MinEventTime: n.MinEventTime, MaxEventTime: n.MaxEventTime, FirstStagedAt: n.FirstStagedAt,
		Watermark: cur.Watermark, SealedAt: now, Owner: r.Lease.Owner, LeaseUntil: now.Add(r.Lease.For),
		Replays: cur.Replays, RevisionBase: cur.LastSegmentSeq, PriorManifest: priorManifest, PriorAll: priorAll, PriorRows: priorRows,
		TraceParent: r.TraceParent, TraceID: r.TraceID,
	}, nil
}
