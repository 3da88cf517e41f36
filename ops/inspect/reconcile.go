package inspect

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// WindowCounter counts a table's rows per window id, from the warehouse.
type WindowCounter interface {
	WindowCounts(ctx context.Context, table string) (map[string]int64, error)
}

// WindowReconciliation is one window's numbers and what does not add up.
type WindowReconciliation struct {
	State *messages.WindowState
	Late  int64 // late events of the window (dead-lettered or dropped)
	// Warehouse is the table's row count for the window; -1 when the
	// warehouse was not consulted.
	Warehouse int64
	Problems  []string
}

// Reconciliation is a policy's numbers: per window, and the policy-wide
// balance of published = loaded + dead-lettered + late-dropped + expired +
// in flight.
type Reconciliation struct {
	Policy  *windows.Policy
	Windows []*WindowReconciliation

	Published   int64 // events in the source stream on the policy's subjects, with those it removed (see Expired)
	Rows        int64 // distinct events in compacted or loaded windows
	Staging     int64 // rows staged in windows not yet compacted (duplicates included)
	DeadLetters int64 // every dead letter, late ones (late: dlq) included
	LateDropped int64 // late-drop markers (late: drop)
	// Redriven counts dead letters re-published to the source stream by
	// `windrow dlq redrive`: each left its original in the source stream and
	// its dead letter was deleted, so it is accounted for once more here.
	Redriven int64
	// Discarded counts dead letters and late-drop markers discarded with
	// `windrow dlq discard` whose events are nowhere else: each accounts for
	// its event. Recovered counts those discarded because their events were
	// loaded after all (a rebuild from the stream): counted in Rows only.
	// Neither is in DeadLetters or LateDropped.
	Discarded, Recovered int64
	// Expired counts events the source stream removed (its limits) before
	// the collectors' consumer delivered them: lost upstream of windrow,
	// always flagged. Counted only when the stream holds nothing but the
	// policy's subjects; Published then includes every event the stream
	// removed, collected or not (see SourceExpired).
	Expired  int64
	InFlight int64 // messages pending or unacked at the collectors' consumer
	// Retired is the policy's retirement record (window.retain): the
	// windows before its horizon have no state any more; their rows are
	// counted in Rows from its totals, and compared with the warehouse's
	// rows of those windows.
	Retired  messages.Retirement
	Problems []string
	// Note explains a check that does not apply to the policy.
	Note string
}

// OK reports whether nothing is flagged.
func (r *Reconciliation) OK() bool {
	if len(r.Problems) > 0 {
		return false
	}
	for _, w := range r.Windows {
		if len(w.Problems) > 0 {
			return false
		}
	}
	return true
}

// Reconcile gathers a policy's numbers and flags those that do not add up.
// wh may be nil (the warehouse is then not compared).
func Reconcile(ctx context.Context, js jetstream.JetStream, states *statestore.Store, p *windows.Policy, wh WindowCounter) (*Reconciliation, error) {
	r := &Reconciliation{Policy: p}
	retired, err := Retirement(ctx, js, p.Name)
	if err != nil {
		return nil, err
	}
	r.Retired = retired
	all, err := Windows(ctx, states, p.Name)
	if err != nil {
		return nil, err
	}
	// A Retiring state under the horizon is counted in the record already
	// (its deletion is under way).
	ws := all[:0:0]
	for _, st := range all {
		if !(st.Retiring && retired.Retired(st.WindowStart)) {
			ws = append(ws, st)
		}
	}
	r.Rows += retired.Rows
	dl, err := CountDeadLetters(ctx, js, p.Name)
	if err != nil {
		return nil, err
	}
	r.DeadLetters = dl.Total
	r.LateDropped = dl.ByReason["late_dropped"]
	r.Redriven = dl.Redriven
	r.Discarded, r.Recovered = dl.Discarded, dl.Recovered
	var inWarehouse map[string]int64
	if wh != nil {
		if inWarehouse, err = wh.WindowCounts(ctx, p.Load.Table); err != nil {
			return nil, fmt.Errorf("warehouse counts of %s: %w", p.Load.Table, err)
		}
	}
	emitted := map[string]bool{} // windows compacted or loaded
	for _, st := range ws {
		emitted[st.ID()] = st.Status == messages.StatusCompacted || st.Status == messages.StatusLoaded
	}
	emittedNext := func(st *messages.WindowState) bool {
		return emitted[messages.WindowID(st.WindowEnd)] || retired.Retired(st.WindowEnd)
	}
	for _, st := range ws {
		w := &WindowReconciliation{State: st, Late: dl.LateByWindow[st.ID()], Warehouse: -1}
		if inWarehouse != nil {
			w.Warehouse = inWarehouse[st.ID()]
		}
		if st.Next != nil {
			// Late events staged for the window's next revision.
			r.Staging += st.Next.StagedRows
		}
		// The window's rows in the table: with revisions in append or merge
		// mode, earlier revisions' batches hold rows this run does not.
		var earlier int64
		if st.Revision > 0 && p.Load.Mode != windows.LoadReplace {
			earlier = st.PriorRows
		}
		switch st.Status {
		case messages.StatusCompacted, messages.StatusLoaded:
			r.Rows += st.Rows + earlier
			if st.Rows+st.Duplicates+st.KeyOverflow+st.CarryRows != st.StagedRows+st.BaseRows {
				w.problem("rows %d + duplicates %d + key overflow %d + carried out %d ≠ staged %d + earlier revision or carried in %d",
					st.Rows, st.Duplicates, st.KeyOverflow, st.CarryRows, st.StagedRows, st.BaseRows)
			}
			if st.CarryRows > 0 && !emittedNext(st) {
				// Sessions carried into a pane that is not compacted yet.
				r.Staging += st.CarryRows
			}
			if st.Status == messages.StatusLoaded {
				if st.LoadedRows != st.Rows {
					w.problem("loaded %d rows of %d", st.LoadedRows, st.Rows)
				}
				if w.Warehouse >= 0 && w.Warehouse != st.Rows+earlier {
					w.problem("warehouse holds %d rows, the window %d", w.Warehouse, st.Rows+earlier)
				}
			}
		case messages.StatusFailed:
			w.problem("FAILED: %s", st.Error)
		default:
			r.Staging += st.StagedRows
			if st.Revision > 0 {
				// What the table holds of the window until the revision loads.
				r.Staging += st.BaseRows + earlier
			}
		}
		r.Windows = append(r.Windows, w)
	}
	if inWarehouse != nil {
		known := map[string]bool{}
		for _, st := range all {
			known[st.ID()] = true
		}
		var inRetired int64
		for id, n := range inWarehouse {
			if start, err := messages.ParseWindowID(id); err == nil && retired.Retired(start) {
				inRetired += n
				continue
			}
			if !known[id] {
				r.Problems = append(r.Problems, fmt.Sprintf("warehouse holds %d rows of window %s, which windrow has no state for", n, id))
			}
		}
		if inRetired != retired.Rows {
			r.Problems = append(r.Problems, fmt.Sprintf("warehouse holds %d rows of the windows before %s, which are retired (window.retain) with %d rows",
				inRetired, retired.Horizon.Format(time.RFC3339), retired.Rows))
		}
	}

	loss, err := SourceExpired(ctx, js, p)
	if err != nil {
		return nil, err
	}
	if r.Published, err = heldMessages(ctx, js, p); err != nil {
		return nil, err
	}
	limits := ""
	if len(loss.Limits) > 0 {
		limits = " (" + strings.Join(loss.Limits, "; ") + ")"
	}
	switch {
	case loss.Exact:
		// The stream holds the policy's events only: what it removed was
		// published too, collected before (accounted for below) or not
		// (expired).
		r.Published += loss.Removed
		r.Expired = loss.Expired
		if r.Expired > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("expired %d: source stream %s removed %d events before windrow collected them; they were lost upstream of windrow%s",
				r.Expired, p.Source.Stream, r.Expired, limits))
		}
	case loss.Expired > 0:
		r.Problems = append(r.Problems, fmt.Sprintf("source stream %s removed %d messages before windrow's collectors reached them; it holds other subjects than the policy's too, "+
			"so how many were the policy's events is not known: events may have been lost upstream of windrow%s", p.Source.Stream, loss.Expired, limits))
	}
	if lag, err := CollectorLag(ctx, js, p.Source.Stream, p.Name); err == nil {
		r.InFlight = int64(lag.Pending) + int64(lag.AckPending)
	}
	accounted := r.Rows + r.DeadLetters + r.LateDropped + r.Redriven + r.Discarded + r.Expired
	if p.Window.Kind == windows.Hopping || slices.ContainsFunc(p.WindowHistory, func(h windows.PastShape) bool { return h.Kind == windows.Hopping }) {
		// An event is in size/slide windows (fewer at the edges of the
		// stream), and late for some of them: the policy-wide balance is not
		// defined; the per-window checks above are what holds.
		r.Note = "hopping windows: an event is in several windows, so only the per-window checks apply"
		return r, nil
	}
	switch {
	case r.Staging == 0 && r.InFlight == 0 && accounted != r.Published:
		msg := fmt.Sprintf("published %d ≠ loaded %d + dead-lettered %d + late-dropped %d + redriven %d + discarded %d + expired %d = %d",
			r.Published, r.Rows, r.DeadLetters, r.LateDropped, r.Redriven, r.Discarded, r.Expired, accounted)
		if loss.Exact && loss.Removed > 0 && accounted < r.Published {
			msg += fmt.Sprintf(" (the source stream removed %d events; those the collectors' consumer skipped while running are not told apart from collected ones: they may be the missing ones)", loss.Removed)
		}
		r.Problems = append(r.Problems, msg)
	case accounted > r.Published:
		r.Problems = append(r.Problems, fmt.Sprintf("more accounted for (%d) than published (%d)", accounted, r.Published))
	}
	return r, nil
}

func (w *WindowReconciliation) problem(format string, args ...any) {
	w.Problems = append(w.Problems, fmt.Sprintf(format, args...))
}

// Summary renders the policy-wide balance in one line.
func (r *Reconciliation) Summary() string {
	var b strings.Builder
	if r.Note != "" {
		fmt.Fprintf(&b, "published %d; loaded %d window rows, dead-lettered %d, late-dropped %d", r.Published, r.Rows, r.DeadLetters, r.LateDropped)
		if r.Expired > 0 {
			fmt.Fprintf(&b, ", expired %d (removed by the source stream before they were collected: lost)", r.Expired)
		}
		fmt.Fprintf(&b, " (%s)", r.Note)
		return b.String()
	}
	fmt.Fprintf(&b, "published %d = loaded %d + dead-lettered %d + late-dropped %d", r.Published, r.Rows, r.DeadLetters, r.LateDropped)
	if r.Redriven > 0 {
		fmt.Fprintf(&b, " + redriven originals %d", r.Redriven)
	}
	if r.Discarded > 0 {
		fmt.Fprintf(&b, " + discarded %d", r.Discarded)
	}
	if r.Expired > 0 {
		fmt.Fprintf(&b, " + expired %d (removed by the source stream before they were collected: lost)", r.Expired)
	}
	if r.Staging > 0 || r.InFlight > 0 {
		fmt.Fprintf(&b, " + staging %d (with duplicates) + in flight %d", r.Staging, r.InFlight)
	}
	if r.Recovered > 0 {
		fmt.Fprintf(&b, " (%d discarded dead letters recovered: their events are loaded)", r.Recovered)
	}
	if r.Retired.Windows > 0 {
		fmt.Fprintf(&b, " (loaded includes %d rows of %d windows retired before %s)", r.Retired.Rows, r.Retired.Windows, r.Retired.Horizon.Format(time.RFC3339))
	}
	return b.String()
}
