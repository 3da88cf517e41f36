package compactor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/pipeline/windowstate"
	"github.com/windrow/windrow/windows"
)

// Session windows run in panes (windows.SessionPane, UTC): collectors stage
// a session policy's events into pane windows, which are sealed by the
// watermark like tumbling windows. Compacting pane k cuts its rows, key by
// key in time order, into sessions (a pause of gap or more starts a new
// one). A session that may still go on, because its end (last event + gap)
// is after the pane's end, is not loaded with pane k: its rows are written
// to pane k's carry file and merged into pane k+1, which therefore waits
// for pane k to be compacted. Every session is loaded once, whole, with the
// pane in which it ends, its bounds in the columns _session_start and
// _session_end. Since a pane is at least the gap long, a carried session
// that pane k+1 does not extend ends inside it; pane k+1's state is created
// when pane k carries rows, so that it is sealed and compacted even if no
// event of its own arrives.
//
// Cuts are deterministic (pane bounds, never the watermark), so a retried
// compaction writes the same files.

// errPaneWaits: the pane before this one is not compacted yet; the sweep
// tries again.
var errPaneWaits = errors.New("waiting for the previous pane")

// sessionPanes is what a pane's compaction needs to know about its
// neighbours.
type sessionPanes struct {
	carryIn     string // object of the previous pane's carried rows, "" if none
	carryInRows int64
	carryOut    bool // sessions open at the pane's end go to the next pane
}

// panes looks at the panes before and after st.
func (s *Service) panes(ctx context.Context, st *messages.WindowState) (sessionPanes, error) {
	p := s.cfg.Policy
	pane := p.Window.SessionPane().D()
	var out sessionPanes
	prev, err := s.paneState(ctx, st.WindowStart.Add(-pane))
	if err != nil {
		return out, err
	}
	switch {
	case prev == nil:
	case prev.Status == messages.StatusOpen || prev.Status == messages.StatusSealed:
		return out, fmt.Errorf("pane %s: %w %s (%s)", st.ID(), errPaneWaits, prev.ID(), prev.Status)
	case prev.Status == messages.StatusFailed:
		s.log.WarnContext(ctx, "previous pane failed: sessions open at its end are lost for this pane", "window", st.ID(), "previous", prev.ID(), "carried_rows", prev.CarryRows)
	default:
		out.carryIn, out.carryInRows = prev.Carry, prev.CarryRows
	}
	next, err := s.paneState(ctx, st.WindowEnd)
	if err != nil {
		return out, err
	}
	// The next pane reads this one's carry unless it is compacted already
	// (it was compacted before this pane existed: a window opened late).
	out.carryOut = next == nil || next.Status == messages.StatusOpen || next.Status == messages.StatusSealed
	return out, nil
}

func (s *Service) paneState(ctx context.Context, start time.Time) (*messages.WindowState, error) {
	st, _, err := s.cfg.States.Get(ctx, s.cfg.Policy.Name, messages.WindowID(start))
	if errors.Is(err, statestore.ErrNotFound) {
		return nil, nil
	}
	return st, err
}

// openNextPane makes sure the pane after st has a state, so that it is
// sealed and compacted (and loads the sessions st carried into it).
func (s *Service) openNextPane(ctx context.Context, st *messages.WindowState) error {
	p := s.cfg.Policy
	w := windows.Window{Start: st.WindowEnd, End: st.WindowEnd.Add(p.Window.SessionPane().D())}
	now := s.cfg.Now().UTC()
	run := s.cfg.Tracing.NewRun(ctx)
	pane := windowstate.Window{Policy: p.Name, PolicyVersion: p.Version, Start: w.Start.UTC(), End: w.End.UTC(), TraceParent: run, TraceID: telemetry.TraceID(run)}
	_, err := s.cfg.States.Update(ctx, messages.WindowKey(p.Name, w.ID()), func(cur *messages.WindowState) (*messages.WindowState, error) {
		next, err := windowstate.Open(cur, pane, now)
		if err != nil {
			return nil, noWrite(err)
		}
		return next, nil
	})
	if err != nil {
		return fmt.Errorf("open pane %s for the sessions carried from %s: %w", w.ID(), st.ID(), err)
	}
	s.mu.Lock()
	s.open[w.Start.UnixMicro()] = w
	s.mu.Unlock()
	return nil
}

// sessionCutter cuts the merged rows of a pane into sessions.
type sessionCutter struct {
	layout   *records.Layout
	gap      int64 // µs
	paneEnd  int64 // µs
	carryOut bool
	emit     func([]parquet.Row) error // rows of a session that ends in the pane
	carry    func([]parquet.Row) error // rows of a session that may go on
	rows     []parquet.Row             // the current session's, cloned
	last     int64
}

// add takes the next merged rows (key, then time order).
func (c *sessionCutter) add(rows []parquet.Row) error {
	for _, r := range rows {
		t := c.layout.TimeMicros(r)
		if len(c.rows) > 0 && (!c.layout.SameKey(c.rows[0], r) || t-c.last >= c.gap) {
			if err := c.flush(); err != nil {
				return err
			}
		}
		c.rows = append(c.rows, r.Clone())
		c.last = max(c.last, t)
	}
	return nil
}

// flush ends the current session.
func (c *sessionCutter) flush() error {
	if len(c.rows) == 0 {
		return nil
	}
	rows := c.rows
	defer func() { c.rows, c.last = rows[:0], 0 }() // the writers copied the rows
	start, end := c.layout.TimeMicros(rows[0]), c.last+c.gap
	if c.carryOut && end > c.paneEnd {
		return c.carry(rows)
	}
	for _, r := range rows {
		c.layout.SetSession(r, start, end)
	}
	return c.emit(rows)
}

// carryWriter writes the rows a pane carries into the next one.
type carryWriter struct {
	ctx  context.Context
	s    *Service
	key  string
	out  objstore.Writer
	pw   *parquet.Writer
	rows int64
}

func (w *carryWriter) write(rows []parquet.Row) error {
	if w.pw == nil {
		out, err := w.s.cfg.Store.Create(w.ctx, w.key)
		if err != nil {
			return err
		}
		w.out = out
		w.pw = w.s.layout.NewWriter(out, records.FileOptions{Codec: records.Codec(windows.CompressSnappy)})
	}
	if _, err := w.pw.WriteRows(rows); err != nil {
		return fmt.Errorf("write carried rows: %w", err)
	}
	w.rows += int64(len(rows))
	return nil
}

// finish commits the file; the key is "" when nothing was carried.
func (w *carryWriter) finish() (string, error) {
	if w.pw == nil {
		return "", nil
	}
	if err := w.pw.Close(); err != nil {
		return "", fmt.Errorf("close carried rows: %w", err)
	}
	if _, _, err := w.out.Commit(); err != nil {
		return "", err
	}
	w.pw, w.out = nil, nil
	return w.key, nil
}

func (w *carryWriter) abort() {
	if w.out != nil {
		_ = w.out.Abort()
	}
}
