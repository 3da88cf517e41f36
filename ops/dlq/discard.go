package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/messages"
)

// Headers of a discard record.
const (
	// HeaderDiscardOf is the WINDROW_DLQ sequence of the dead letter or
	// late-drop marker a discard record discards.
	HeaderDiscardOf = "Windrow-Discard-Of"
	// HeaderDiscardReason says why it was discarded.
	HeaderDiscardReason = "Windrow-Discard-Reason"
	// HeaderDiscardLoaded is "true" when the event is in the table all the
	// same (a rebuild loaded it): a reconciliation counts it as loaded only.
	HeaderDiscardLoaded = "Windrow-Discard-Loaded"
)

// ReasonRecovered is the discard reason a rebuild from the source stream
// records for the late events of the windows it rebuilt and loaded.
const ReasonRecovered = "recovered by rebuild"

// DiscardMark is what a discard record says of the message it discards.
type DiscardMark struct {
	RecordSeq uint64 // the record's WINDROW_DLQ sequence
	Time      time.Time
	Reason    string
	// Loaded: the event is in the table (a rebuild recovered it).
	Loaded bool
}

func discardMsgID(policy string, seq uint64) string {
	return "discarded-" + policy + "-" + strconv.FormatUint(seq, 10)
}

// RecordDiscard stores the discard record of e, a dead letter or late-drop
// marker of policy, on its own subject, once: a record that exists already
// is kept (stored false).
func RecordDiscard(ctx context.Context, js jetstream.JetStream, policy string, e *Entry, reason string, loaded bool) (stored bool, err error) {
	m := nats.NewMsg(messages.DiscardedSubject(policy, e.Seq))
	for k, v := range e.Header {
		if !strings.HasPrefix(strings.ToLower(k), "nats-") {
			m.Header[k] = v
		}
	}
	m.Header.Set(messages.HeaderPolicy, policy)
	if e.Kind == KindLateMarker {
		m.Header.Set(messages.HeaderReason, ReasonLateDropped)
	}
	m.Header.Set(messages.HeaderMsgID, discardMsgID(policy, e.Seq))
	m.Header.Set(HeaderDiscardOf, strconv.FormatUint(e.Seq, 10))
	m.Header.Set(HeaderDiscardReason, reason)
	if loaded {
		m.Header.Set(HeaderDiscardLoaded, "true")
	}
	stored, err = natsx.PublishOnce(ctx, js, m)
	if err != nil {
		return false, fmt.Errorf("discard dlq seq %d: %w", e.Seq, err)
	}
	return stored, nil
}

// discardRecords reads the discard records of a policy (all policies when
// empty), headers only, keyed by the message each discards.
func discardRecords(ctx context.Context, js jetstream.JetStream, policy string) (map[recordKey]*DiscardMark, error) {
	out := map[recordKey]*DiscardMark{}
	err := scan(ctx, js, messages.StreamDLQ, []string{messages.DiscardedFilter(cmp.Or(policy, "*"))}, time.Time{}, true, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		kind, p := kindOf(m.Subject())
		h := m.Headers()
		of, err := strconv.ParseUint(h.Get(HeaderDiscardOf), 10, 64)
		if kind != KindDiscardRecord || err != nil {
			return nil
		}
		if _, ok := out[recordKey{p, of}]; !ok {
			out[recordKey{p, of}] = &DiscardMark{RecordSeq: meta.Sequence.Stream, Time: meta.Timestamp,
				Reason: h.Get(HeaderDiscardReason), Loaded: h.Get(HeaderDiscardLoaded) == "true"}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read discard records: %w", err)
	}
	return out, nil
}

// DiscardRequest selects dead letters and late-drop markers of one policy
// to discard. The selectors combine (all must match); All selects every one.
type DiscardRequest struct {
	Policy string
	Reason string   // their reason (late_dropped: late-drop markers)
	Seqs   []uint64 // their WINDROW_DLQ sequences
	Window string   // their window (Windrow-Window)
	All    bool
	// Why is recorded on each discard; "discarded by an operator" if empty.
	Why string
	// Loaded records that the events are in the table all the same.
	Loaded bool
	// DryRun lists what would be discarded and records nothing.
	DryRun bool
}

// Validate reports every problem of the request at once.
func (r *DiscardRequest) Validate() error {
	var errs []error
	if r.Policy == "" {
		errs = append(errs, fmt.Errorf("%w: a policy is required", ErrRequest))
	}
	selects := r.Reason != "" || len(r.Seqs) > 0 || r.Window != ""
	switch {
	case r.All && selects:
		errs = append(errs, fmt.Errorf("%w: --all selects every dead letter; give it alone", ErrRequest))
	case !r.All && !selects:
		errs = append(errs, fmt.Errorf("%w: select by reason, sequence or window, or give --all", ErrRequest))
	}
	return errors.Join(errs...)
}

// DiscardReport is what a discard did (or would do), in stream order.
type DiscardReport struct {
	// Discarded are the entries discarded now (would be, on a dry run).
	Discarded []*Entry
	// Already counts selected sequences that were discarded before.
	Already int
}

// Discard records the selected dead letters and late-drop markers of a
// policy as discarded. They stay in WINDROW_DLQ (so their events are never
// dead-lettered again, see messages.DeadLetterSubject), but `ls` and
// `status` no longer count them, redrive leaves them, and a reconciliation
// counts each as discarded (or, with Loaded, as loaded only). A discard
// repeated or interrupted is finished by running it again: each record is
// written once.
func Discard(ctx context.Context, js jetstream.JetStream, req DiscardRequest) (*DiscardReport, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	why := cmp.Or(req.Why, "discarded by an operator")
	rep := &DiscardReport{}
	want := map[uint64]bool{}
	for _, s := range req.Seqs {
		want[s] = true
	}
	seen := map[uint64]bool{}
	err := Entries(ctx, js, Filter{Policy: req.Policy, Discarded: true}, false, func(e *Entry) error {
		switch {
		case len(want) > 0 && !want[e.Seq],
			req.Reason != "" && e.Reason != req.Reason,
			req.Window != "" && e.Window != req.Window:
			return nil
		}
		seen[e.Seq] = true
		if e.Discard != nil {
			rep.Already++
			return nil
		}
		rep.Discarded = append(rep.Discarded, e)
		return nil
	})
	if err != nil {
		return rep, err
	}
	var missing []error
	for _, s := range slices.Sorted(maps.Keys(want)) {
		if !seen[s] {
			missing = append(missing, fmt.Errorf("dlq seq %d: %w, or not a dead letter or late-drop marker of %s that matches", s, ErrNotFound, req.Policy))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return rep, err
	}
	if req.DryRun {
		return rep, nil
	}
	for _, e := range rep.Discarded {
		if _, err := RecordDiscard(ctx, js, req.Policy, e, why, req.Loaded); err != nil {
			return rep, fmt.Errorf("%w; run the same discard again to finish", err)
		}
		e.Discard = &DiscardMark{Reason: why, Loaded: req.Loaded, Time: time.Now().UTC()}
	}
	return rep, nil
}
