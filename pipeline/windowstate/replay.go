package windowstate

import (
	"fmt"
	"time"

	"github.com/windrow/windrow/messages"
)

// Replay (`windrow replay`) moves a LOADED window, or one FAILED after its
// compaction, back to COMPACTED under its next replay number, with nothing
// loaded: its load commands are published again. A window without batches
// (it failed before compaction) or whose run is under way is refused.
func Replay(cur *messages.WindowState) (*messages.WindowState, error) {
	if cur == nil || (cur.Status != messages.StatusLoaded && cur.Status != messages.StatusFailed) {
		return nil, refuse(cur, "replay", "the window is neither loaded nor failed")
	}
	if cur.BatchCount == 0 {
		return nil, refuse(cur, "replay", "no batches: it failed before compaction")
	}
	if cur.Retiring {
		return nil, refuse(cur, "replay", "the window is being retired (window.retain)")
	}
	next := clone(cur)
	next.Status = messages.StatusCompacted
	next.Replays++
	next.LoadedParts = nil
	next.LoadedRows = 0
	next.LoadedAt = time.Time{}
	next.LoadDuration = 0
	next.Error = ""
	return next, nil
}

// HoldRebuild (`windrow replay --from-stream`) makes a LOADED window's next
// revision a rebuild from the stream, held until until: no revision starts
// while its events are being staged. Any other window is refused.
func HoldRebuild(cur *messages.WindowState, until time.Time) (*messages.WindowState, error) {
	if cur == nil || cur.Status != messages.StatusLoaded {
		return nil, refuse(cur, "hold rebuild", "the window is not loaded")
	}
	if cur.Retiring {
		return nil, refuse(cur, "hold rebuild", "the window is being retired (window.retain)")
	}
	next := clone(cur)
	if next.Next == nil {
		next.Next = &messages.PendingRevision{}
	}
	next.Next.Rebuild = true
	next.Next.HoldUntil = until
	return next, nil
}

// RegisterRebuild counts a segment staged for a held rebuild in the
// window's next revision, and renews the hold until holdUntil. Refused
// when the window is no longer LOADED with a rebuild pending (a revision
// started?), or the registration is not above its cutoff.
func RegisterRebuild(cur *messages.WindowState, seg Segment, holdUntil time.Time) (*messages.WindowState, error) {
	switch {
	case cur == nil || cur.Status != messages.StatusLoaded:
		return nil, refuse(cur, "register rebuild segment", "the window is not loaded")
	case cur.Next == nil || !cur.Next.Rebuild:
		return nil, refuse(cur, "register rebuild segment", "no rebuild pending")
	case seg.Seq <= cur.LastSegmentSeq:
		return nil, refuse(cur, "register rebuild segment", fmt.Sprintf("registration %d is within the cutoff %d", seg.Seq, cur.LastSegmentSeq))
	}
	next := clone(cur)
	next.AddToNext(seg.Reg, seg.Seq, seg.StagedAt)
	next.Next.HoldUntil = holdUntil
	return next, nil
}

// ReleaseRebuild releases a rebuild's hold once its events are staged: a
// compactor then makes the revision. A rebuild that staged nothing (no
// event of the window is left in the stream) is dropped. Refused when the
// window has no pending revision.
func ReleaseRebuild(cur *messages.WindowState) (*messages.WindowState, error) {
	if cur == nil || cur.Next == nil {
		return nil, refuse(cur, "release rebuild", "no revision pending")
	}
	next := clone(cur)
	if next.Next.Segments == 0 {
		next.Next = nil // nothing of it is left in the stream
		return next, nil
	}
	next.Next.HoldUntil = time.Time{}
	return next, nil
}
