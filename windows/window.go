package windows

import (
	"errors"
	"fmt"
	"time"
)

// WindowIDLayout formats a window's start, in UTC, as its ID.
const WindowIDLayout = "20060102T150405Z"

const (
	usPerSecond = int64(time.Second / time.Microsecond)
	usPerDay    = 86400 * usPerSecond
)

// Window is the half-open interval [Start, End). Start and End are in UTC.
type Window struct {
	Start, End time.Time
}

// ID returns the window's start in UTC formatted as WindowIDLayout, e.g. "20260308T000000Z".
func (w Window) ID() string { return w.Start.UTC().Format(WindowIDLayout) }

// String returns "ID[start, end)" for logs.
func (w Window) String() string {
	return fmt.Sprintf("%s[%s, %s)", w.ID(), w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339))
}

// Contains reports whether Start <= t < End.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }

// ParseWindowID returns the start time (UTC) that a window ID names.
func ParseWindowID(id string) (time.Time, error) {
	t, err := time.Parse(WindowIDLayout, id)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w %q: want the form %s", ErrInvalidWindowID, id, WindowIDLayout)
	}
	return t.UTC(), nil
}

// ClosesAt is when a window stops accepting events: End + AllowedLateness.
func (s WindowSpec) ClosesAt(w Window) time.Time { return w.End.Add(s.AllowedLateness.D()) }

// Assigner maps an event time to its tumbling window.
//
// Boundaries depend only on the time and the spec. When Size divides 24h, a local
// day in Timezone has at most 24h/Size windows: window k starts at local midnight
// plus k*Size (elapsed time), and the last one ends at the next local midnight. So
// on a day with a DST change a 24h window lasts 23 or 25 hours, and the last 1h
// window of a 25h day lasts 2h, while a 23h day has only 23 hourly windows. When Size
// is n whole days, a window spans n local calendar days starting on a day whose
// number (days since 1970-01-01 in the local calendar) is a multiple of n; in UTC
// that is plain alignment to the Unix epoch.
//
// Assign is safe for concurrent use. AssignMicros caches the last window it
// computed, so an Assigner must not be used by several goroutines at once through
// AssignMicros; give each goroutine its own (NewAssigner is cheap).
type Assigner struct {
	sizeUs int64
	days   int64 // > 1 when Size is several whole days
	loc    *time.Location
	utc    bool

	// Caches for AssignMicros (empty when start == end).
	lastStart, lastEnd int64
	dayStart, dayEnd   int64 // the local day of the last sub-day window, non-UTC zones
}

// NewAssigner returns an Assigner for spec. Size must be valid (at least 1s, whole
// seconds, dividing 24h or whole days) and Timezone an IANA zone ("" is UTC); the
// error matches ErrInvalidPolicy.
func NewAssigner(spec WindowSpec) (*Assigner, error) {
	var errs []error
	if fe := sizeProblem(spec.Size); fe != nil {
		errs = append(errs, fe)
	}
	loc, err := loadZone(spec.Timezone)
	if err != nil {
		errs = append(errs, &FieldError{Field: "window.timezone", Msg: err.Error()})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new window assigner: %w", errors.Join(errs...))
	}
	a := &Assigner{
		sizeUs: spec.Size.D().Microseconds(),
		loc:    loc,
		utc:    loc == time.UTC,
	}
	if a.sizeUs > usPerDay {
		a.days = a.sizeUs / usPerDay
	}
	return a, nil
}

// Assign returns the window that contains t. It is the reference form: it uses
// neither the caches nor the integer fast path of AssignMicros.
func (a *Assigner) Assign(t time.Time) Window {
	s, e := a.calendar(t.UnixMicro())
	return Window{Start: time.UnixMicro(s).UTC(), End: time.UnixMicro(e).UTC()}
}

// AssignMicros returns the window containing us, all three in microseconds since
// the Unix epoch. It returns the cached last window when us falls inside it, so
// in-order events cost a comparison; in UTC a miss is integer arithmetic.
func (a *Assigner) AssignMicros(us int64) (startUs, endUs int64) {
	if us >= a.lastStart && us < a.lastEnd {
		return a.lastStart, a.lastEnd
	}
	return a.miss(us)
}

func (a *Assigner) miss(us int64) (int64, int64) {
	var s, e int64
	switch {
	case a.utc:
		// Local days are UTC days: alignment to the epoch covers whole days too.
		s = floorDiv(us, a.sizeUs) * a.sizeUs
		e = s + a.sizeUs
	case a.days > 0:
		s, e = a.calendar(us)
	default:
		if us < a.dayStart || us >= a.dayEnd {
			a.dayStart, a.dayEnd, _ = a.localDay(us)
		}
		s, e = a.withinDay(us, a.dayStart, a.dayEnd)
	}
	a.lastStart, a.lastEnd = s, e
	return s, e
}

// calendar computes the window of us from the zone's calendar, without caches.
func (a *Assigner) calendar(us int64) (int64, int64) {
	dayStart, dayEnd, dn := a.localDay(us)
	if a.days > 0 {
		k := floorDiv(dn, a.days) * a.days
		return a.startOfDay(k), a.startOfDay(k + a.days)
	}
	return a.withinDay(us, dayStart, dayEnd)
}

// withinDay returns the sub-day window containing us in the local day [dayStart,
// dayEnd): window k starts at dayStart + k*Size, and the last of the 24h/Size
// windows of the day ends at dayEnd, so a long (DST) day stretches its last window
// and a short day cuts it.
func (a *Assigner) withinDay(us, dayStart, dayEnd int64) (int64, int64) {
	k := (us - dayStart) / a.sizeUs
	if last := usPerDay/a.sizeUs - 1; k >= last {
		return dayStart + last*a.sizeUs, dayEnd
	}
	s := dayStart + k*a.sizeUs
	return s, min(s+a.sizeUs, dayEnd)
}

// localDay returns the local day containing us: its first instant, the first
// instant of the next day, and its day number (days since 1970-01-01 in the local
// calendar). A day starts at the instant time.Date gives for its local midnight;
// those instants increase with the day, so days tile the time line even where a
// zone skips or repeats midnight.
func (a *Assigner) localDay(us int64) (start, end, dayNum int64) {
	y, m, d := time.UnixMicro(us).In(a.loc).Date()
	dn := floorDiv(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix(), 86400)
	start = a.startOfDay(dn)
	for us < start {
		dn--
		start = a.startOfDay(dn)
	}
	end = a.startOfDay(dn + 1)
	for us >= end {
		dn++
		start, end = end, a.startOfDay(dn+1)
	}
	return start, end, dn
}

// startOfDay returns the first instant of local day number dn, in microseconds.
func (a *Assigner) startOfDay(dn int64) int64 {
	return time.Date(1970, time.January, 1+int(dn), 0, 0, 0, 0, a.loc).UnixMicro()
}

// floorDiv is a/b rounded toward negative infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
