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

// Idle reports that the source had nothing pending or in flight for idleFor at
// wall time now; once idleFor >= IdleTimeout, candidate = now - MaxOutOfOrder.
func (w *Watermark) Idle(now time.Time, idleFor time.Duration) {
	if idleFor < w.idleTimeout {
		return
	}
	w.advance(now.Add(-w.maxOutOfOrder))
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
