package compactor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/windowstate"
	"github.com/windrow/windrow/windows"
)

// Retirement (window.retain). Window states would otherwise only grow:
// one-minute windows make 525,600 a year. Each sweep, after its repairs,
// retires the oldest windows that are retirable (windowstate.Retirable:
// LOADED, staging deleted, no next revision, loaded more than retain ago
// and ending more than retain behind the watermark), in time order and
// never leaving a hole:
//
//  1. mark each Retiring, by compare-and-set: from then on nothing
//     registers in it (its events are late, late: revise included) and no
//     revision or replay starts; the first window that cannot be marked
//     ends the run;
//  2. move the policy's retirement horizon (messages.Retirement) to the
//     start of the first window that is not retired, or the end of the
//     last one retired if that is earlier, adding the retired windows'
//     numbers to its totals in the same compare-and-set; windows the
//     horizon already covers are not counted again, so two compactors
//     retiring at once count each window once;
//  3. delete their states, by compare-and-set. The key keeps a delete
//     marker, and the state store never creates a deleted window again
//     (statestore.ErrDeleted): a collector that had not read the new
//     horizon yet takes the late path too.
//
// A crash between 2 and 3 leaves Retiring states under the horizon: the
// next sweep deletes them (they are counted already). A state under the
// horizon that is not Retiring is a window that first got a state after
// the horizon passed it (a collector that had not read the horizon, for a
// window that never had one): it is sealed, compacted and loaded like any
// other (it was never loaded before), then retired on its own: deleted,
// then counted (a crash between the two leaves it out of the totals, which
// reconcile then reports).
//
// The batch files and manifests of retired windows stay in the object
// store; the warehouse holds their rows.

// maxRetirePerSweep bounds the windows one sweep retires.
const maxRetirePerSweep = 1000

// retireRule is the rule the sweep retires windows by, now.
func (s *Service) retireRule(now time.Time) windowstate.RetireRule {
	s.mu.Lock()
	wm, _ := s.wm.Value()
	s.mu.Unlock()
	return windowstate.RetireRule{Retain: s.cfg.Policy.Window.RetainFor().D(), Now: now.UTC(), Watermark: wm}
}

// retirable reports whether st may be retired: a session pane that
// carried sessions out waits until the pane it carried them into is loaded
// (its compaction reads them from this pane's state).
func (s *Service) retirable(st *messages.WindowState, rule windowstate.RetireRule, pl sweepPlan) bool {
	if windowstate.Retirable(st, rule) != nil {
		return false
	}
	return st.CarryRows == 0 || pl.nextLoaded(st.WindowEnd)
}

// retire retires the oldest retirable windows the sweep's plan names (in
// window order, up to the first that is not retirable); rec is the
// policy's retirement record as the sweep read it.
func (s *Service) retire(ctx context.Context, pl sweepPlan, rec messages.Retirement, now time.Time) error {
	p := s.cfg.Policy
	rule := s.retireRule(now)
	if rule.Watermark.IsZero() {
		return nil
	}
	var marked []*messages.WindowState
	blocked := pl.blocked // start of the first window not retired
	for _, start := range pl.retire {
		st, _, err := s.cfg.States.Get(ctx, p.Name, messages.WindowID(start))
		if errors.Is(err, statestore.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if rec.Retired(st.WindowStart) {
			if !st.Retiring && s.retirable(st, rule, pl) {
				if err := s.retireAlone(ctx, st, rule); err != nil {
					return err
				}
			}
			continue
		}
		if !s.retirable(st, rule, pl) {
			blocked = st.WindowStart // changed since the index saw it
			break
		}
		out, err := s.cfg.States.Update(ctx, st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
			next, err := windowstate.MarkRetiring(cur, rule)
			if errors.Is(err, windowstate.ErrNoChange) {
				return nil, statestore.ErrNoChange // marked by another compactor
			}
			if err != nil {
				return nil, noWrite(err)
			}
			return next, nil
		})
		if err != nil {
			return fmt.Errorf("retire window %s: %w", st.ID(), err)
		}
		if out == nil || !out.Retiring {
			blocked = st.WindowStart // changed meanwhile: not retirable now
			break
		}
		marked = append(marked, out)
	}
	if len(marked) == 0 {
		return nil
	}
	horizon := marked[len(marked)-1].WindowEnd
	if !blocked.IsZero() && blocked.Before(horizon) {
		horizon = blocked
	}
	s.mu.Lock()
	floor := s.ackFloor
	s.mu.Unlock()
	replace := p.Load.Mode == windows.LoadReplace
	counted := 0
	rec, err := s.cfg.Watermarks.AdvanceRetirement(ctx, p.Name, func(cur messages.Retirement) (messages.Retirement, error) {
		counted = 0
		if !horizon.After(cur.Horizon) {
			return cur, statestore.ErrNoChange // another compactor moved it past these
		}
		next := cur
		for _, st := range marked {
			if st.WindowStart.Before(cur.Horizon) || !st.WindowStart.Before(horizon) {
				continue // counted by whoever moved the horizon past it
			}
			var err error
			if next, err = windowstate.Retire(next, st, horizon, replace, floor); err != nil {
				return cur, err
			}
			counted++
		}
		next.Horizon = horizon.UTC()
		next.AckFloor = max(next.AckFloor, floor)
		return next, nil
	})
	if err != nil {
		return fmt.Errorf("move retirement horizon to %s: %w", horizon.Format(time.RFC3339), err)
	}
	for _, st := range marked {
		if rec.Retired(st.WindowStart) {
			if err := s.deleteRetired(ctx, st); err != nil {
				return err
			}
		}
	}
	s.log.InfoContext(ctx, "retired windows", "windows", counted, "horizon", rec.Horizon, "retain", rule.Retain,
		"retired_windows", rec.Windows, "retired_rows", rec.Rows)
	return nil
}

// deleteRetired deletes the state of a window the horizon covers, marked
// Retiring (and so counted in the retirement record).
func (s *Service) deleteRetired(ctx context.Context, st *messages.WindowState) error {
	_, err := s.cfg.States.Delete(ctx, st.Key(), func(cur *messages.WindowState) error {
		if !cur.Retiring {
			return fmt.Errorf("window %s under the retirement horizon is not marked retiring", cur.ID())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete state of retired window %s: %w", st.ID(), err)
	}
	delete(s.republished, st.Key())
	delete(s.slaMarked, st.ID())
	s.lastRetired = s.cfg.Now()
	return nil
}

// retireAlone retires a window under the horizon that got its first state
// after the horizon passed it: marked, deleted, then counted.
func (s *Service) retireAlone(ctx context.Context, st *messages.WindowState, rule windowstate.RetireRule) error {
	p := s.cfg.Policy
	deleted, err := s.cfg.States.Delete(ctx, st.Key(), func(cur *messages.WindowState) error {
		return windowstate.Retirable(cur, rule)
	})
	if errors.Is(err, windowstate.ErrRefused) || deleted == nil {
		return nil // changed meanwhile, or deleted by another compactor
	}
	if err != nil {
		return fmt.Errorf("retire window %s: %w", st.ID(), err)
	}
	s.lastRetired = s.cfg.Now()
	s.mu.Lock()
	floor := s.ackFloor
	s.mu.Unlock()
	_, err = s.cfg.Watermarks.AdvanceRetirement(ctx, p.Name, func(cur messages.Retirement) (messages.Retirement, error) {
		return windowstate.Retire(cur, deleted, cur.Horizon, p.Load.Mode == windows.LoadReplace, floor)
	})
	if err != nil {
		return fmt.Errorf("count retired window %s: %w", st.ID(), err)
	}
	s.log.InfoContext(ctx, "retired a window under the horizon", "window", st.ID(), "rows", deleted.Rows)
	return nil
}
