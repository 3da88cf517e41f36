package windows

import "time"

// Watermark is the event-time clock of one policy: the time before which no more
// on-time events are expected. It never goes back: a candidate below the current
// value is ignored. It is pure (the caller passes every time in) and not safe for
// concurrent use.
type Watermark struct {
	maxOutOfOrder time.Duration
	idleTimeout   time.Duration
	lateness      time.Duration
	value         time.Time
	set           bool
	// An idle spell: it began at idleStart (the caller's monotonic clock),
	// with the value idleBase (idleOK: it was set).
	idling, idleOK bool
	idleStart      time.Duration
	idleBase       time.Time
}

// NewWatermark returns an unset watermark for spec, which should be defaulted and valid.
func NewWatermark(spec WindowSpec) *Watermark {
	return &Watermark{
		maxOutOfOrder: spec.MaxOutOfOrder.D(),
		idleTimeout:   spec.IdleTimeout.D(),
		lateness:      spec.AllowedLateness.D(),
	}
}

// Staged reports the newest event time among records that are staged (and below
// the consumer's ack floor). Candidate = eventTime - MaxOutOfOrder.
func (w *Watermark) Staged(eventTime time.Time) {
	w.advance(eventTime.Add(-w.maxOutOfOrder))
}

// Idle reports that the source has nothing pending or in flight at at, a
// reading of the caller's monotonic clock; now is the wall clock. The first
// call of a spell records at as its start and the watermark then as its
// base; it returns how long the spell has lasted, idleFor = at - start.
// Once idleFor >= IdleTimeout, candidate = base + idleFor: the
// watermark advances by the time elapsed since the source went idle, never
// past now - MaxOutOfOrder, so a paused replay of history moves it by the
// length of the pause, not to the wall clock, and a wall clock that jumps
// forward does not move it at all. Busy ends the spell.
func (w *Watermark) Idle(now time.Time, at time.Duration) (idleFor time.Duration) {
	if !w.idling {
		w.idling, w.idleOK, w.idleStart, w.idleBase = true, w.set, at, w.value
	}
	idleFor = at - w.idleStart
	if idleFor < w.idleTimeout || !w.idleOK {
		return idleFor
	}
	candidate := w.idleBase.Add(idleFor)
	if limit := now.Add(-w.maxOutOfOrder); candidate.After(limit) {
		candidate = limit
	}
	w.advance(candidate)
	return idleFor
}

// Busy ends an idle spell: the source has something pending or in flight.
func (w *Watermark) Busy() { w.idling = false }

// Flushed reports that the input was declared complete at wall time at
// (windrow flush) and everything published before was staged: candidate =
// at - MaxOutOfOrder, the watermark an idle live stream would have then.
func (w *Watermark) Flushed(at time.Time) {
	w.advance(at.Add(-w.maxOutOfOrder))
}

// Restore sets the watermark to a value recorded earlier (by a previous run),
// so that it does not go back across restarts. Like every observation it is
// ignored when below the current value.
func (w *Watermark) Restore(recorded time.Time) {
	w.advance(recorded)
}

func (w *Watermark) advance(candidate time.Time) {
	candidate = candidate.Round(0).UTC() // drop any monotonic reading: event times have none
	if !w.set || candidate.After(w.value) {
		w.value, w.set = candidate, true
	}
}

// Value returns the watermark and whether any observation set it.
func (w *Watermark) Value() (time.Time, bool) { return w.value, w.set }

// Closed reports whether the watermark has reached win.End + AllowedLateness.
func (w *Watermark) Closed(win Window) bool {
	return w.set && !w.value.Before(win.End.Add(w.lateness))
}

// Due reports whether a segment of rows rows, bytes bytes (decoded size estimate)
// and age age has reached any of its flush triggers. A limit that is zero or
// negative (an unvalidated Segment) is no trigger.
func (s Segment) Due(rows int, bytes int64, age time.Duration) bool {
	return (s.MaxRows > 0 && rows >= s.MaxRows) ||
		(s.MaxBytes > 0 && bytes >= int64(s.MaxBytes)) ||
		(s.MaxAge > 0 && age >= s.MaxAge.D())
}
