//go:build chaos

package loadtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// chaosSessions is the session check of a run with -chaos.window=session.
type chaosSessions struct {
	gap      time.Duration
	pane     time.Duration
	accepted int // events the sessions are cut from: well-formed, not late
	want     int // sessions of the independent cut
	got      int // sessions in the table
	// over3 counts the sessions whose events fall into three panes or more
	// (carried at least twice); maxPanes is the most panes one spans.
	over3, maxPanes int
	panes           []chaosPane
	carried         int64 // rows carried out of a pane, over all panes
	carryOnly       int   // panes without an event of their own (opened by a carry)
	problems        []string
}

// chaosPane is one pane's line of the report.
type chaosPane struct {
	id                            string
	published, carriedIn, carried int64
	rows                          int64 // rows loaded with the pane
	sessions                      int   // sessions loaded with the pane
}

func (c *chaosSessions) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// verifySessions cuts the accepted events — generated, well-formed, not
// dead-lettered or dropped as late (v.lateEvent) — into sessions per store
// with cutSessions, independently of windrow, and holds the table's
// sessions (GROUP BY store_id, _session_start, _session_end) against them:
// the same sessions, each with its events' count and sum(quantity), each
// loaded with one pane, the pane in which it ends. Lost or doubled events
// show here too, besides in verifyChaos.
func verifySessions(ctx context.Context, wh chaosWarehouse, p *windows.Policy, gen Sales, assign *windows.Assigner,
	v *chaosVerification, rec *inspect.Reconciliation) (*chaosSessions, error) {
	c := &chaosSessions{gap: p.Window.Gap.D(), pane: p.Window.SessionPane().D()}
	// The accepted events, without their payloads.
	var events []Event
	i := 0
	for ev := range gen.All() {
		if !ev.Malformed && (i >= len(v.lateEvent) || !v.lateEvent[i]) {
			events = append(events, Event{Subject: ev.Subject, Time: ev.Time, Quantity: ev.Quantity})
		}
		i++
	}
	c.accepted = len(events)
	want := cutSessions(events, c.gap)
	c.want = len(want)
	// The panes each session's events fall into: from its start to its
	// last event (end - gap).
	for _, s := range want {
		n := int(assign.Assign(s.end.Add(-c.gap)).Start.Sub(assign.Assign(s.start).Start)/c.pane) + 1
		c.maxPanes = max(c.maxPanes, n)
		if n >= 3 {
			c.over3++
		}
	}

	db, release, err := wh.DB(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := db.QueryContext(ctx, `SELECT store_id, _session_start, _session_end, count(*), CAST(sum(quantity) AS BIGINT),
		count(DISTINCT _window_start), min(_window_start) FROM `+p.Load.Table+` GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("sessions of %s: %w", p.Load.Table, err)
	}
	var got []sessionRow
	perPane := map[string]*chaosPane{}
	paneOf := func(id string) *chaosPane {
		if perPane[id] == nil {
			perPane[id] = &chaosPane{id: id}
		}
		return perPane[id]
	}
	for rows.Next() {
		var r sessionRow
		var start, end sql.NullTime
		var panes int
		var pane time.Time
		if err := rows.Scan(&r.store, &start, &end, &r.events, &r.qty, &panes, &pane); err != nil {
			rows.Close()
			return nil, err
		}
		if !start.Valid || !end.Valid {
			c.problem("the table holds %d rows of store %s without session bounds (pane %s)", r.events, r.store, messages.WindowID(pane))
			continue
		}
		r.start, r.end = start.Time.UTC(), end.Time.UTC()
		got = append(got, r)
		// The pane a session ends in: end - 1µs, since a session whose end
		// is the pane's end is not carried.
		wantPane := assign.Assign(r.end.Add(-time.Microsecond))
		if panes != 1 || !pane.Equal(wantPane.Start) {
			c.problem("session %s [%s, %s) of %d events is loaded with %d panes, the first %s; want one, %s (the pane it ends in)",
				r.store, r.start.Format(time.RFC3339Nano), r.end.Format(time.RFC3339Nano), r.events, panes, messages.WindowID(pane), wantPane.ID())
		}
		pp := paneOf(messages.WindowID(pane))
		pp.sessions++
		pp.rows += r.events
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	c.got = len(got)

	// The same sessions, in the same order (store, start).
	byKey := func(r sessionRow) string { return r.store + " " + r.start.Format(time.RFC3339Nano) }
	wantBy := make(map[string]sessionRow, len(want))
	for _, r := range want {
		wantBy[byKey(r)] = r
	}
	gotBy := make(map[string]sessionRow, len(got))
	shown := 0
	show := func(format string, args ...any) {
		if shown < 20 {
			c.problem(format, args...)
		}
		shown++
	}
	for _, r := range got {
		k := byKey(r)
		gotBy[k] = r
		w, ok := wantBy[k]
		switch {
		case !ok:
			show("the table holds session %s [%s, %s) of %d events (quantity %d), which the accepted events do not make",
				r.store, r.start.Format(time.RFC3339Nano), r.end.Format(time.RFC3339Nano), r.events, r.qty)
		case w != r:
			show("session %s from %s: the table holds [%s, %s) of %d events (quantity %d), want [%s, %s) of %d events (quantity %d)",
				r.store, r.start.Format(time.RFC3339Nano), r.start.Format(time.RFC3339Nano), r.end.Format(time.RFC3339Nano), r.events, r.qty,
				w.start.Format(time.RFC3339Nano), w.end.Format(time.RFC3339Nano), w.events, w.qty)
		}
	}
	for _, w := range want {
		if _, ok := gotBy[byKey(w)]; !ok {
			show("session %s [%s, %s) of %d events (quantity %d, first pane %s) is not in the table",
				w.store, w.start.Format(time.RFC3339Nano), w.end.Format(time.RFC3339Nano), w.events, w.qty, assign.Assign(w.start).ID())
		}
	}
	if shown > 20 {
		c.problem("... %d session mismatches in all", shown)
	}

	// The panes, from their states.
	for _, w := range rec.Windows {
		st := w.State
		pp := paneOf(st.ID())
		pp.carriedIn, pp.carried = st.BaseRows, st.CarryRows
		if row := v.byID[st.ID()]; row != nil {
			pp.published = row.published
		}
		c.carried += st.CarryRows
		if st.StagedRows == 0 && st.BaseRows > 0 {
			c.carryOnly++
		}
	}
	for _, pp := range perPane {
		c.panes = append(c.panes, *pp)
	}
	slices.SortFunc(c.panes, func(a, b chaosPane) int { return strings.Compare(a.id, b.id) })
	if c.carried == 0 {
		c.problem("no pane carried a session into the next: the carry is not exercised")
	}
	return c, nil
}

// String renders the session part of the report.
func (c *chaosSessions) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "session windows (gap %s, panes of %s): %d sessions in the table, %d cut independently from the %d accepted events; %d sessions over 3 panes or more (at most %d); %d rows carried out of a pane in all; %d panes, %d of them without an event of their own\n",
		c.gap, c.pane, c.got, c.want, c.accepted, c.over3, c.maxPanes, c.carried, len(c.panes), c.carryOnly)
	fmt.Fprintf(&b, "%-17s %9s %11s %12s %11s %9s\n", "pane", "published", "carried in", "carried out", "rows loaded", "sessions")
	for _, p := range c.panes {
		fmt.Fprintf(&b, "%-17s %9d %11d %12d %11d %9d\n", p.id, p.published, p.carriedIn, p.carried, p.rows, p.sessions)
	}
	return b.String()
}
