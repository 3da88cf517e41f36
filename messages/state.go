package messages

import (
	"fmt"
	"math/bits"
	"time"
)

// WindowStatus is the lifecycle state of a window:
// OPEN → SEALED → COMPACTED → LOADED, or FAILED.
type WindowStatus string

const (
	StatusOpen      WindowStatus = "OPEN"
	StatusSealed    WindowStatus = "SEALED"
	StatusCompacted WindowStatus = "COMPACTED"
	StatusLoaded    WindowStatus = "LOADED"
	StatusFailed    WindowStatus = "FAILED"
)

// TypeWindowState names the KV value format of BucketWindows.
const TypeWindowState = "windrow.WindowState.v1"

// WindowState is the value of a window's key in BucketWindows. Every change is
// a compare-and-set on the key's revision: collectors register segments only
// while the state is OPEN, and exactly one compactor wins the seal.
type WindowState struct {
	Policy        string       `json:"policy"`
	PolicyVersion uint64       `json:"policy_version"`
	WindowStart   time.Time    `json:"window_start"`
	WindowEnd     time.Time    `json:"window_end"`
	Revision      int          `json:"revision"`
	Status        WindowStatus `json:"status"`

	// Staging, maintained by collectors.
	Segments       int64  `json:"segments"`
	StagedRows     int64  `json:"staged_rows"`      // rows in registered segments, duplicates included
	LastSegmentSeq uint64 `json:"last_segment_seq"` // WINDROW_SEGMENTS sequence of the newest registration
	// MaxSourceSeq is the highest source-stream sequence in any registered
	// segment. A collector that meets an event of a closed window at or
	// below it checks whether the event is already staged, even when the
	// server reports a first delivery (consumer state lost in a server
	// crash can redeliver an acked-and-staged message as new).
	MaxSourceSeq  uint64    `json:"max_source_seq,omitempty"`
	MinEventTime  time.Time `json:"min_event_time,omitzero"`
	MaxEventTime  time.Time `json:"max_event_time,omitzero"`
	FirstStagedAt time.Time `json:"first_staged_at,omitzero"` // when the first segment's write began; the run's trace starts here

	// Sealing and compaction, maintained by compactors.
	Watermark   time.Time `json:"watermark,omitzero"`
	SealedAt    time.Time `json:"sealed_at,omitzero"`
	Owner       string    `json:"owner,omitempty"` // compactor instance working on the window
	LeaseUntil  time.Time `json:"lease_until,omitzero"`
	CompactedAt time.Time `json:"compacted_at,omitzero"`
	Rows        int64     `json:"rows"`       // rows after dedup
	Duplicates  int64     `json:"duplicates"` // rows dropped by dedup on source sequence
	// KeyOverflow counts rows of keys beyond max_keys_per_window that were
	// dead-lettered (reason key_overflow) instead of loaded.
	KeyOverflow int64 `json:"key_overflow,omitempty"`
	// The run's batches are listed in its manifest (an object next to them),
	// never here: the state stays small whatever the number of batches,
	// keys or revisions (a NATS message is 1 MiB on a stock server).
	// BatchCount and BatchBytes count them; part i's id is
	// BatchID(policy, window start, revision, i).
	BatchCount int    `json:"batch_count,omitempty"`
	BatchBytes int64  `json:"batch_bytes,omitempty"`
	Manifest   string `json:"manifest,omitempty"`

	// Loading, maintained from load results: the parts loaded, one bit each.
	LoadedParts  PartSet   `json:"loaded_parts,omitempty"`
	LoadedRows   int64     `json:"loaded_rows"`
	LoadedAt     time.Time `json:"loaded_at,omitzero"`
	LoadDuration int64     `json:"load_duration_ms"`
	// Replays counts `windrow replay` runs of the window: its load commands
	// carry the number, and results of an earlier run are ignored.
	Replays int `json:"replays,omitempty"`
	// StagingDeleted: the loaded window's staged segments and registrations are gone.
	StagingDeleted bool `json:"staging_deleted,omitempty"`
	// Retiring: a compactor is retiring the window (window.retain): its
	// state is about to be deleted, so nothing registers in it any more
	// (its events are late, late: revise included) and no revision or
	// replay starts.
	Retiring bool `json:"retiring,omitempty"`

	// Revisions (late: revise). Revision r > 0 is made of the registrations
	// with sequence in (RevisionBase, LastSegmentSeq] and of its prior
	// batches: with load mode replace the previous revision's batches (the
	// window's complete rows, merged in), otherwise the batches of every
	// earlier revision (what the table holds; rows found there are dropped
	// as duplicates, so the revision's batches hold only new rows). They are
	// read from PriorManifest, the previous revision's manifest: its
	// batches, and with PriorAll its prior batches too. PriorRows counts
	// their rows.
	RevisionBase  uint64 `json:"revision_base,omitempty"`
	PriorManifest string `json:"prior_manifest,omitempty"`
	PriorAll      bool   `json:"prior_all,omitempty"`
	PriorRows     int64  `json:"prior_rows,omitempty"`
	// BaseRows counts the rows of Prior merged into this revision (replace
	// only), or, for session windows, the rows carried in from the pane before.
	BaseRows int64 `json:"base_rows,omitempty"`
	// Session windows: the rows of sessions still open at the pane's end,
	// carried into the next pane (which merges them in, counted in its
	// BaseRows), and the object holding them.
	CarryRows int64  `json:"carry_rows,omitempty"`
	Carry     string `json:"carry,omitempty"`
	// Next gathers the segments registered after the cutoff of a window
	// that is no longer OPEN: its next revision (late: revise only).
	Next *PendingRevision `json:"next_revision,omitempty"`

	Error   string `json:"error,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
	// TraceParent is the W3C traceparent of the window run's root span,
	// drawn by the collector that created the state; every span of the run
	// is its child (see adapters/telemetry). Empty when tracing was off.
	TraceParent string    `json:"traceparent,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// PendingRevision counts the segments of a window's next revision, staged
// (late: revise) while the window is SEALED, COMPACTED or LOADED.
type PendingRevision struct {
	Segments       int64     `json:"segments"`
	StagedRows     int64     `json:"staged_rows"`
	LastSegmentSeq uint64    `json:"last_segment_seq"` // the next revision's cutoff, once it starts
	MinEventTime   time.Time `json:"min_event_time,omitzero"`
	MaxEventTime   time.Time `json:"max_event_time,omitzero"`
	FirstStagedAt  time.Time `json:"first_staged_at"` // the revision starts window.revise_after later (once LOADED)
	// Rebuild (windrow replay --from-stream): the revision is made from its
	// segments alone, not merged with the batches loaded before.
	Rebuild bool `json:"rebuild,omitempty"`
	// HoldUntil: a rebuild is staging the window's events; no revision
	// starts before this time (renewed while it stages, zero when done).
	HoldUntil time.Time `json:"hold_until,omitzero"`
}

// AddToNext counts a segment registered (at sequence seq, its write begun
// at t0) after the cutoff of a window that is no longer OPEN in the
// window's next revision.
func (st *WindowState) AddToNext(reg *SegmentRegistered, seq uint64, t0 time.Time) {
	n := st.Next
	if n == nil {
		n = &PendingRevision{}
		st.Next = n
	}
	if n.Segments == 0 {
		n.MinEventTime, n.MaxEventTime, n.FirstStagedAt = reg.MinEventTime, reg.MaxEventTime, t0.UTC()
	}
	n.Segments++
	n.StagedRows += reg.Rows
	n.LastSegmentSeq = max(n.LastSegmentSeq, seq)
	if reg.MinEventTime.Before(n.MinEventTime) {
		n.MinEventTime = reg.MinEventTime
	}
	if reg.MaxEventTime.After(n.MaxEventTime) {
		n.MaxEventTime = reg.MaxEventTime
	}
	if t0.Before(n.FirstStagedAt) {
		n.FirstStagedAt = t0.UTC()
	}
}

// ID is the window id.
func (s *WindowState) ID() string { return WindowID(s.WindowStart) }

// Key is the window's key in BucketWindows.
func (s *WindowState) Key() string { return WindowKey(s.Policy, s.ID()) }

// Validate checks the state's invariants.
func (s *WindowState) Validate() error {
	errs := checkPolicyWindow(s.Policy, s.WindowStart, s.WindowEnd)
	switch s.Status {
	case StatusOpen, StatusSealed, StatusCompacted, StatusLoaded, StatusFailed:
	default:
		errs = append(errs, fmt.Errorf("status: %q, want OPEN, SEALED, COMPACTED, LOADED or FAILED", s.Status))
	}
	if (s.Status == StatusCompacted || s.Status == StatusLoaded) && s.Rows+s.Duplicates+s.KeyOverflow+s.CarryRows != s.StagedRows+s.BaseRows {
		errs = append(errs, fmt.Errorf("rows %d + duplicates %d + key overflow %d + carried %d differ from staged rows %d + base rows %d",
			s.Rows, s.Duplicates, s.KeyOverflow, s.CarryRows, s.StagedRows, s.BaseRows))
	}
	if s.Revision == 0 && (s.RevisionBase != 0 || s.PriorManifest != "") {
		errs = append(errs, fmt.Errorf("revision 0 has revision_base %d, prior manifest %q; want none", s.RevisionBase, s.PriorManifest))
	}
	if n := s.LoadedParts.Count(); n > s.BatchCount {
		errs = append(errs, fmt.Errorf("loaded_parts: %d parts loaded of %d batches", n, s.BatchCount))
	}
	if s.Revision > 0 && s.Status != StatusFailed && s.LastSegmentSeq <= s.RevisionBase {
		errs = append(errs, fmt.Errorf("revision %d: last_segment_seq %d not above revision_base %d", s.Revision, s.LastSegmentSeq, s.RevisionBase))
	}
	if s.Next != nil && s.Next.Segments > 0 && s.Next.LastSegmentSeq <= s.LastSegmentSeq {
		errs = append(errs, fmt.Errorf("next_revision.last_segment_seq %d not above last_segment_seq %d", s.Next.LastSegmentSeq, s.LastSegmentSeq))
	}
	if err := joinErrs(errs); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, TypeWindowState, err)
	}
	return nil
}

// AllLoaded reports whether every batch of the run is loaded.
func (s *WindowState) AllLoaded() bool { return s.LoadedParts.Count() >= s.BatchCount }

// PartSet is a set of batch parts (0-based indices in a window run), one
// bit each: 10,000 parts take 1.25 KB (base64 in JSON).
type PartSet []byte

// Has reports whether part i is in the set.
func (p PartSet) Has(i int) bool {
	return i >= 0 && i/8 < len(p) && p[i/8]&(1<<(i%8)) != 0
}

// With returns the set with part i added (i >= 0).
func (p PartSet) With(i int) PartSet {
	for len(p) <= i/8 {
		p = append(p, 0)
	}
	p[i/8] |= 1 << (i % 8)
	return p
}

// Count is the number of parts in the set.
func (p PartSet) Count() int {
	n := 0
	for _, b := range p {
		n += bits.OnesCount8(b)
	}
	return n
}

// TypeWatermark names the KV value format of BucketWatermarks.
const TypeWatermark = "windrow.Watermark.v1"

// Watermark is a policy's event-time watermark as its compactor computed it.
type Watermark struct {
	Policy    string    `json:"policy"`
	Watermark time.Time `json:"watermark"`
	// Idle is true when the idle rule (time elapsed since the source went
	// idle) set the value.
	Idle bool `json:"idle,omitempty"`
	// Flush is true when a flush request (FlushRequest) set the value.
	Flush bool `json:"flush,omitempty"`
	// FlushRev is the KV revision of the last flush request applied, so
	// that a restarted compactor does not apply it again.
	FlushRev  uint64    `json:"flush_rev,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TypeFlushRequest names the KV value format of a policy's flush request in
// BucketWatermarks (key FlushKey).
const TypeFlushRequest = "windrow.FlushRequest.v1"

// FlushRequest declares a policy's input complete up to At (wall clock):
// everything its producers published before is in the stream. Once the
// collectors have staged all of it and the source stayed idle for
// window.idle_timeout, the compactor moves the watermark to At -
// max_out_of_order, closing the last windows of a replay or a file without
// waiting for the idle rule to get there by elapsed time. Written by
// `windrow flush` and `windrow publish --flush`; the newest request wins.
type FlushRequest struct {
	Policy string    `json:"policy"`
	At     time.Time `json:"at"`
	// By says who asked (command and host), for status and logs.
	By string `json:"by,omitempty"`
}

// TypeRetirement names the KV value format of a policy's retirement record
// in BucketWatermarks (key RetirementKey).
const TypeRetirement = "windrow.Retirement.v1"

// Retirement is a policy's retirement record: every window starting before
// Horizon is retired (window.retain), its state deleted. Compactors move it
// forward only, by compare-and-set, before they delete the states under it;
// collectors read it with the watermark and treat events of windows before
// it as late (or, at or below AckFloor, as redelivered). The totals keep
// what the deleted states said, so that reconciliation stays exact.
type Retirement struct {
	Policy  string    `json:"policy"`
	Horizon time.Time `json:"horizon"`
	// AckFloor is the ack floor of the collectors' consumer when the
	// horizon last moved: every source message at or below it had been
	// staged, dead-lettered or counted late, so such a message of a retired
	// window delivered again (a consumer reset) is a redelivery.
	AckFloor uint64 `json:"ack_floor"`
	// Totals over the retired windows: their number; the rows the table
	// holds of them (every revision's, in load modes append and merge);
	// staged rows, duplicates and key overflow of their last runs; batch bytes.
	Windows     int64 `json:"windows"`
	Rows        int64 `json:"rows"`
	StagedRows  int64 `json:"staged_rows"`
	Duplicates  int64 `json:"duplicates"`
	KeyOverflow int64 `json:"key_overflow,omitempty"`
	BatchBytes  int64 `json:"batch_bytes"`
	// Last is the start of the newest retired window.
	Last      time.Time `json:"last,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks the record's invariants.
func (r *Retirement) Validate() error {
	var errs []error
	if r.Policy == "" {
		errs = append(errs, fmt.Errorf("policy: required"))
	}
	if r.Windows < 0 || r.Rows < 0 || r.StagedRows < 0 || r.Duplicates < 0 || r.KeyOverflow < 0 || r.BatchBytes < 0 {
		errs = append(errs, fmt.Errorf("negative totals: windows %d, rows %d, staged %d, duplicates %d, key overflow %d, bytes %d",
			r.Windows, r.Rows, r.StagedRows, r.Duplicates, r.KeyOverflow, r.BatchBytes))
	}
	if r.Windows > 0 && !r.Last.Before(r.Horizon) {
		errs = append(errs, fmt.Errorf("last retired window %s is not before the horizon %s", r.Last.Format(time.RFC3339), r.Horizon.Format(time.RFC3339)))
	}
	if err := joinErrs(errs); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, TypeRetirement, err)
	}
	return nil
}

// Retired reports whether the window starting at start is retired.
func (r *Retirement) Retired(start time.Time) bool {
	return r != nil && start.Before(r.Horizon)
}

// SLA states of a window (WindowState.SLA).
const (
	SLANone    = ""        // the policy sets no deadline
	SLAOK      = "ok"      // loaded in time, or not yet due
	SLAOverdue = "OVERDUE" // not loaded, and past due
	SLAMissed  = "MISSED"  // loaded after it was due
)

// SLA judges the window against a deadline after its end (0: none) at now.
func (s *WindowState) SLA(deadline time.Duration, now time.Time) string {
	if deadline <= 0 {
		return SLANone
	}
	due := s.WindowEnd.Add(deadline)
	switch {
	case s.Status == StatusLoaded:
		if s.LoadedAt.After(due) { // a zero LoadedAt (unknown) counts as in time
			return SLAMissed
		}
		return SLAOK
	case now.After(due):
		return SLAOverdue
	default:
		return SLAOK
	}
}
