package windowstate

import (
	"fmt"
	"time"

	"github.com/windrow/windrow/messages"
)

// Retirement (window.retain). A LOADED window whose staging is deleted,
// with no next revision pending, loaded more than Retain ago (wall clock)
// and ending more than Retain behind the watermark is retired: a compactor
// marks it Retiring (MarkRetiring: from then on nothing registers in it and
// no revision or replay starts), moves the policy's retirement horizon past
// it, and deletes its state. Windows are retired in time order, never
// leaving a hole: the horizon stops at the first window that is not
// retirable.

// RetireRule is what decides whether a window may be retired.
type RetireRule struct {
	Retain    time.Duration // window.retain
	Now       time.Time     // wall clock
	Watermark time.Time     // the policy's watermark; zero: none yet
}

// Retirable returns nil when the window may be retired under r, and a
// refusal saying why not otherwise.
func Retirable(cur *messages.WindowState, r RetireRule) error {
	why := ""
	switch {
	case cur == nil:
		why = "no state"
	case cur.Status != messages.StatusLoaded:
		why = "the window is not loaded"
	case !cur.StagingDeleted:
		why = "its staging is not deleted yet"
	case cur.Next != nil:
		why = "a next revision is pending"
	case cur.LoadedAt.IsZero() || r.Now.Sub(cur.LoadedAt) <= r.Retain:
		why = fmt.Sprintf("loaded at %s, not more than %s ago", cur.LoadedAt.Format(time.RFC3339), r.Retain)
	case r.Watermark.IsZero() || r.Watermark.Sub(cur.WindowEnd) <= r.Retain:
		why = fmt.Sprintf("its end %s is not more than %s behind the watermark %s", cur.WindowEnd.Format(time.RFC3339), r.Retain, r.Watermark.Format(time.RFC3339))
	default:
		return nil
	}
	return refuse(cur, "retire", why)
}

// MarkRetiring marks a retirable window Retiring; one marked already
// changes nothing. Any other window is refused (Retirable).
func MarkRetiring(cur *messages.WindowState, r RetireRule) (*messages.WindowState, error) {
	if err := Retirable(cur, r); err != nil {
		return nil, err
	}
	if cur.Retiring {
		return nil, noChange("being retired already")
	}
	next := clone(cur)
	next.Retiring = true
	return next, nil
}

// Retire adds a deleted window's numbers to the policy's retirement record
// and moves its horizon to horizon (never back). replace: the table holds
// only the window's last revision (load mode replace); otherwise its
// earlier revisions' rows too (PriorRows). ackFloor is the collectors'
// consumer's ack floor now.
func Retire(rec messages.Retirement, st *messages.WindowState, horizon time.Time, replace bool, ackFloor uint64) (messages.Retirement, error) {
	if !st.WindowStart.Before(horizon) {
		return rec, fmt.Errorf("retire window %s: it does not start before the horizon %s", st.ID(), horizon.Format(time.RFC3339))
	}
	rows := st.Rows
	if st.Revision > 0 && !replace {
		rows += st.PriorRows
	}
	rec.Windows++
	rec.Rows += rows
	rec.StagedRows += st.StagedRows
	rec.Duplicates += st.Duplicates
	rec.KeyOverflow += st.KeyOverflow
	rec.BatchBytes += st.BatchBytes
	if st.WindowStart.After(rec.Last) {
		rec.Last = st.WindowStart.UTC()
	}
	if horizon.After(rec.Horizon) {
		rec.Horizon = horizon.UTC()
	}
	rec.AckFloor = max(rec.AckFloor, ackFloor)
	return rec, nil
}
