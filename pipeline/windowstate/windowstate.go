package windowstate

import (
	"fmt"
	"slices"
	"time"

	"github.com/windrow/windrow/messages"
)

// Window is a window whose first state is created, and the run (trace) the
// state starts.
type Window struct {
	Policy        string
	PolicyVersion uint64
	Start, End    time.Time
	TraceParent   string // W3C traceparent of the run's root span; "" when tracing is off
	TraceID       string
}

// Segment is a staged segment's registration.
type Segment struct {
	Reg      *messages.SegmentRegistered
	Seq      uint64    // the registration's sequence in WINDROW_SEGMENTS
	StagedAt time.Time // when the segment's write began
}

// Lease is a compactor's claim on a window it works on.
type Lease struct {
	Owner string        // compactor instance
	For   time.Duration // the lease ends this long after now
}

// Register counts a segment a collector registered in its window. A window
// without state is created OPEN with the segment (w is used only then); an
// OPEN window counts it.
// A window being retired refuses it as late whatever the policy (ErrLate).
// A window no longer OPEN was sealed meanwhile, and the seal froze its
// cutoff: a registration at or below the cutoff is part of the window
// (ErrNoChange); one above it goes to the window's next revision when the
// policy revises (revise, late: revise) and is refused with ErrLate
// otherwise: its rows are late.
func Register(cur *messages.WindowState, w Window, seg Segment, revise bool) (*messages.WindowState, error) {
	reg := seg.Reg
	if cur == nil {
		return &messages.WindowState{
			TraceParent: w.TraceParent, TraceID: w.TraceID,
			Policy: w.Policy, PolicyVersion: w.PolicyVersion, WindowStart: w.Start, WindowEnd: w.End,
			Status: messages.StatusOpen, Segments: 1, StagedRows: reg.Rows, LastSegmentSeq: seg.Seq, MaxSourceSeq: reg.MaxSourceSeq,
			MinEventTime: reg.MinEventTime, MaxEventTime: reg.MaxEventTime, FirstStagedAt: seg.StagedAt.UTC(),
		}, nil
	}
	if cur.Status != messages.StatusOpen {
		if seg.Seq <= cur.LastSegmentSeq {
			return nil, noChange(fmt.Sprintf("registration %d is within the cutoff %d", seg.Seq, cur.LastSegmentSeq))
		}
		if cur.Retiring {
			return nil, &RefusedError{From: cur.Status, Event: "register",
				Reason: fmt.Sprintf("registration %d: the window is being retired (window.retain)", seg.Seq), Err: ErrLate}
		}
		if !revise {
			return nil, &RefusedError{From: cur.Status, Event: "register",
				Reason: fmt.Sprintf("registration %d is above the cutoff %d", seg.Seq, cur.LastSegmentSeq), Err: ErrLate}
		}
		next := clone(cur)
		next.AddToNext(reg, seg.Seq, seg.StagedAt)
		return next, nil
	}
	next := clone(cur)
	if seg.StagedAt.Before(next.FirstStagedAt) { // collectors in parallel: the run starts with the earliest segment
		next.FirstStagedAt = seg.StagedAt.UTC()
	}
	next.Segments++
	next.StagedRows += reg.Rows
	next.LastSegmentSeq = max(next.LastSegmentSeq, seg.Seq)
	next.MaxSourceSeq = max(next.MaxSourceSeq, reg.MaxSourceSeq)
	if reg.MinEventTime.Before(next.MinEventTime) {
		next.MinEventTime = reg.MinEventTime
	}
	if reg.MaxEventTime.After(next.MaxEventTime) {
		next.MaxEventTime = reg.MaxEventTime
	}
	return next, nil
}

// Open creates the state of a window without one, OPEN and empty, its run
// starting at now (a session pane that sessions are carried into). A
// window with a state is left as it is (ErrNoChange).
func Open(cur *messages.WindowState, w Window, now time.Time) (*messages.WindowState, error) {
	if cur != nil {
		return nil, noChange("the window has a state")
	}
	return &messages.WindowState{
		Policy: w.Policy, PolicyVersion: w.PolicyVersion, WindowStart: w.Start, WindowEnd: w.End, Status: messages.StatusOpen,
		FirstStagedAt: now, TraceParent: w.TraceParent, TraceID: w.TraceID,
	}, nil
}

// Seal closes an OPEN window at the watermark wm: SEALED, owned by
// lease.Owner until now + lease.For. Any other window is refused.
func Seal(cur *messages.WindowState, now, wm time.Time, lease Lease) (*messages.WindowState, error) {
	if cur == nil || cur.Status != messages.StatusOpen {
		return nil, refuse(cur, "seal", "the window is not open")
	}
	next := clone(cur)
	next.Status = messages.StatusSealed
	next.Watermark = wm.UTC()
	next.SealedAt = now
	next.Owner = lease.Owner
	next.LeaseUntil = now.Add(lease.For)
	return next, nil
}

// Claim gives a SEALED window to lease.Owner: its own, or one whose
// owner's lease ended (at or before now).
func Claim(cur *messages.WindowState, now time.Time, lease Lease) (*messages.WindowState, error) {
	if cur == nil || cur.Status != messages.StatusSealed {
		return nil, refuse(cur, "claim", "the window is not sealed")
	}
	if cur.Owner != lease.Owner && now.Before(cur.LeaseUntil) {
		return nil, refuse(cur, "claim", fmt.Sprintf("%s holds the lease until %s", cur.Owner, cur.LeaseUntil.Format(time.RFC3339Nano)))
	}
	next := clone(cur)
	next.Owner = lease.Owner
	next.LeaseUntil = now.Add(lease.For)
	return next, nil
}

// RenewLease extends lease.Owner's lease on the SEALED window it owns to
// now + lease.For. Refused when the window is not SEALED or not its own:
// the lease is lost.
func RenewLease(cur *messages.WindowState, now time.Time, lease Lease) (*messages.WindowState, error) {
	if err := owned(cur, lease.Owner, "renew lease"); err != nil {
		return nil, err
	}
	next := clone(cur)
	next.LeaseUntil = now.Add(lease.For)
	return next, nil
}

// Compaction is what a compaction of a window made.
type Compaction struct {
	Segments    int64 // registrations read
	StagedRows  int64 // rows of those segments
	BaseRows    int64 // rows of earlier batches merged in (replace), or carried in from the pane before
	Rows        int64 // rows of the batches: after dedup, without the overflow and the carried rows
	Duplicates  int64
	KeyOverflow int64 // rows dead-lettered as over max_keys_per_window
	CarryRows   int64 // rows carried into the next pane, in the object Carry
	Carry       string
	Batches     int   // batch files, listed in Manifest
	BatchBytes  int64 // their bytes
	Manifest    string
	// Unchanged: a revision with nothing new for the table.
	Unchanged bool
}

// Compacted records the compaction of a SEALED window owned by owner:
// COMPACTED, or LOADED at once when it has nothing to load (Unchanged, or
// no batches). Refused when the window is not SEALED or not owner's: the
// lease is lost.
func Compacted(cur *messages.WindowState, now time.Time, owner string, c Compaction) (*messages.WindowState, error) {
	if err := owned(cur, owner, "compacted"); err != nil {
		return nil, err
	}
	next := clone(cur)
	next.Status = messages.StatusCompacted
	next.CompactedAt = now
	next.StagedRows = c.StagedRows
	next.BaseRows = c.BaseRows
	next.CarryRows, next.Carry = c.CarryRows, c.Carry
	next.Rows = c.Rows
	next.Duplicates = c.Duplicates
	next.KeyOverflow = c.KeyOverflow
	next.BatchCount, next.BatchBytes = c.Batches, c.BatchBytes
	next.Manifest = c.Manifest
	next.Segments = c.Segments
	next.LoadedParts = nil
	if c.Unchanged || c.Batches == 0 {
		next.Status = messages.StatusLoaded
		next.LoadedAt = now
		for i := range next.BatchCount {
			next.LoadedParts = next.LoadedParts.With(i)
		}
		next.LoadedRows = next.Rows // what the table holds of this run already
	}
	return next, nil
}

// ApplyLoadResult records a load result received at now. A failure makes
// the window FAILED; a success counts the batch (or, for a whole-window
// load, every batch) as loaded, and a COMPACTED window whose batches are
// all loaded becomes LOADED. A result for another revision or replay run,
// for a LOADED window or for a batch loaded already changes nothing.
func ApplyLoadResult(cur *messages.WindowState, res *messages.LoadResult, now time.Time) (*messages.WindowState, error) {
	switch {
	case cur == nil:
		return nil, noChange("no state")
	case cur.Revision != res.Revision:
		return nil, noChange(fmt.Sprintf("result of revision %d, the window is at %d", res.Revision, cur.Revision))
	case cur.Replays != res.Replay:
		return nil, noChange(fmt.Sprintf("result of replay %d, the window is at %d", res.Replay, cur.Replays))
	case cur.Status == messages.StatusLoaded:
		return nil, noChange("the window is loaded")
	case res.BatchID != messages.WindowLoadID(res.Policy, res.WindowStart, res.Revision) &&
		(res.Part < 0 || res.Part >= cur.BatchCount || res.BatchID != messages.BatchID(res.Policy, res.WindowStart, res.Revision, res.Part)):
		return nil, noChange(fmt.Sprintf("result of batch %s (part %d), not one of the window's %d batches", res.BatchID, res.Part, cur.BatchCount))
	case cur.LoadedParts.Has(res.Part) && res.BatchID != messages.WindowLoadID(res.Policy, res.WindowStart, res.Revision):
		return nil, noChange(fmt.Sprintf("batch %s is loaded", res.BatchID))
	}
	next := clone(cur)
	if res.Status == messages.LoadFailed {
		next.Status = messages.StatusFailed
		next.Error = fmt.Sprintf("batch %s: %s", res.BatchID, res.Error)
		return next, nil
	}
	if res.BatchID == messages.WindowLoadID(res.Policy, res.WindowStart, res.Revision) {
		// A whole-window load: every batch committed at once.
		if next.AllLoaded() {
			return nil, noChange("every batch is loaded")
		}
		next.LoadedParts = nil
		for i := range next.BatchCount {
			next.LoadedParts = next.LoadedParts.With(i)
		}
		next.LoadedRows = next.Rows
	} else {
		next.LoadedParts = next.LoadedParts.With(res.Part)
		next.LoadedRows += res.BatchRows
	}
	if next.Status == messages.StatusCompacted && next.AllLoaded() {
		next.Status = messages.StatusLoaded
		next.LoadedAt = now
		next.LoadDuration = now.Sub(next.CompactedAt).Milliseconds()
	}
	return next, nil
}

// StagingDeleted records that the staged segments and registrations of a
// LOADED window's revision are gone. Refused when the window is not LOADED
// or at another revision.
func StagingDeleted(cur *messages.WindowState, revision int) (*messages.WindowState, error) {
	switch {
	case cur == nil || cur.Status != messages.StatusLoaded:
		return nil, refuse(cur, "staging deleted", "the window is not loaded")
	case cur.Revision != revision:
		return nil, refuse(cur, "staging deleted", fmt.Sprintf("the window is at revision %d, not %d", cur.Revision, revision))
	case cur.StagingDeleted:
		return nil, noChange("staging deleted already")
	}
	next := clone(cur)
	next.StagingDeleted = true
	return next, nil
}

// Fail marks a SEALED window owned by owner FAILED with reason, for an
// operator to look at.
func Fail(cur *messages.WindowState, owner, reason string) (*messages.WindowState, error) {
	if err := owned(cur, owner, "fail"); err != nil {
		return nil, err
	}
	next := clone(cur)
	next.Status = messages.StatusFailed
	next.Error = reason
	return next, nil
}

// owned refuses event unless cur is SEALED and owned by owner.
func owned(cur *messages.WindowState, owner, event string) error {
	if cur == nil || cur.Status != messages.StatusSealed {
		return refuse(cur, event, "the window is not sealed")
	}
	if cur.Owner != owner {
		return refuse(cur, event, fmt.Sprintf("owned by %s, not %s", cur.Owner, owner))
	}
	return nil
}

// clone copies cur deeply enough that changing the copy leaves cur as it is.
func clone(cur *messages.WindowState) *messages.WindowState {
	next := *cur
	if cur.Next != nil {
		n := *cur.Next
		next.Next = &n
	}
	next.LoadedParts = slices.Clone(cur.LoadedParts)
	return &next
}
