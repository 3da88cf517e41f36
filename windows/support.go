package windows

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// NotRunYet lists what a valid policy asks for that this version of the
// services does not run yet: the policy language is ahead of the pipeline
// there, and such a policy must be refused when applied rather than run as
// something else (a hopping policy collected as tumbling windows). file
// names the policy file in the errors (line numbers are not known here).
// The result is nil or matches ErrInvalidPolicy.
func (p *Policy) NotRunYet(file string) error {
	var errs []error
	add := func(field, msg string) {
		errs = append(errs, &FieldError{File: file, Field: field, Msg: msg})
	}
	if p.Window.Kind == SessionWindows {
		if p.Time.Mode == IngestTime {
			add("time.mode", "session windows run on event time only: name the event's time field (time.field), or use tumbling windows")
		}
		if p.Window.Late == LateRevise {
			add("window.late", "revise is not run for session windows yet (valid with sessions: drop, dlq)")
		}
	}
	return errors.Join(errs...)
}

// Session windows run in panes: the collector stages a session policy's
// events into tumbling windows of SessionPane (UTC), and the compactor cuts
// each pane's rows into sessions per key, carrying the sessions still open
// at a pane's end into the next pane. Every loaded row of a session policy
// carries its session's bounds in two columns windrow adds.
const (
	SessionStartField = "_session_start" // the session's first event
	SessionEndField   = "_session_end"   // its last event + gap
)

// SessionPane is the pane size of session windows: the shortest of 1h, 2h,
// 3h, 4h, 6h, 8h, 12h and 24h that is at least the gap, or whole days.
// Being at least the gap, a session open at a pane's end either goes on in
// the next pane or ends within it.
func (w WindowSpec) SessionPane() Duration {
	for _, h := range []time.Duration{1, 2, 3, 4, 6, 8, 12, 24} {
		if d := Duration(h * time.Hour); d >= w.Gap {
			return d
		}
	}
	day := Duration(24 * time.Hour)
	return (w.Gap + day - 1) / day * day
}

// PaneSpec is the tumbling window spec of a session policy's panes (UTC).
func (w WindowSpec) PaneSpec() WindowSpec {
	return WindowSpec{Kind: Tumbling, Size: w.SessionPane(), Timezone: "UTC", MaxOutOfOrder: w.MaxOutOfOrder,
		AllowedLateness: w.AllowedLateness, Late: w.Late, IdleTimeout: w.IdleTimeout, FutureHorizon: w.FutureHorizon}
}

// WithSessionFields returns p with the session bound fields appended to its
// schema (nullable timestamps) when p has session windows, else p itself.
// The layout of session policies' files is built from it.
func (p *Policy) WithSessionFields() *Policy {
	if p.Window.Kind != SessionWindows {
		return p
	}
	q := *p
	q.Schema.Fields = append(slices.Clip(p.Schema.Fields),
		// Read from keys no JSON event has (a NUL byte): always null when
		// collected, set by the compactor.
		Field{Name: SessionStartField, Type: TypeTimestamp, Unit: UnitMilliseconds, From: "\x00" + SessionStartField},
		Field{Name: SessionEndField, Type: TypeTimestamp, Unit: UnitMilliseconds, From: "\x00" + SessionEndField})
	return &q
}

// ShapeChange describes how the window shape (kind, size, slide, gap, time
// zone) differs between two specs, "" when it does not. Such a change
// applies from a switch instant on (Policy.SwitchInstant, WindowHistory), so
// that no window of the old shape is split by the new one.
func ShapeChange(old, new WindowSpec) string {
	switch {
	case old.Kind != new.Kind:
		return fmt.Sprintf("window.kind %s → %s", old.Kind, new.Kind)
	case old.Size != new.Size:
		return fmt.Sprintf("window.size %s → %s", old.Size, new.Size)
	case old.Slide != new.Slide:
		return fmt.Sprintf("window.slide %s → %s", old.Slide, new.Slide)
	case old.Gap != new.Gap:
		return fmt.Sprintf("window.gap %s → %s", old.Gap, new.Gap)
	case old.Timezone != new.Timezone:
		return fmt.Sprintf("window.timezone %s → %s", old.Timezone, new.Timezone)
	}
	return ""
}
