package windows

import (
	"errors"
	"fmt"
	"time"
)

// WindowMicros is a window [StartUs, EndUs) in microseconds since the Unix
// epoch: the allocation-free form of Window used on the hot path.
type WindowMicros struct {
	StartUs, EndUs int64
}

// Window returns w as a Window (UTC times).
func (w WindowMicros) Window() Window {
	return Window{Start: time.UnixMicro(w.StartUs).UTC(), End: time.UnixMicro(w.EndUs).UTC()}
}

// ID returns the window's ID, as Window.ID.
func (w WindowMicros) ID() string { return w.Window().ID() }

// WindowAssigner maps an event time to every window that contains it. Both
// *Assigner (tumbling: one window) and *HoppingAssigner (size/slide windows)
// implement it. Session windows are not a function of the time alone; they
// are kept by Sessions.
type WindowAssigner interface {
	// AssignAll appends to dst the windows that contain t, sorted by start, and
	// returns the extended slice. It is the reference form and is safe for
	// concurrent use.
	AssignAll(t time.Time, dst []Window) []Window
	// AssignAllMicros is AssignAll in microseconds, for the hot path: it does
	// not allocate when dst has room for WindowsPerEvent more windows. It uses
	// caches, so it must not be called from several goroutines at once.
	AssignAllMicros(us int64, dst []WindowMicros) []WindowMicros
	// WindowsPerEvent is how many windows contain each instant: 1 for
	// tumbling windows, size/slide for hopping ones.
	WindowsPerEvent() int
}

var (
	_ WindowAssigner = (*Assigner)(nil)
	_ WindowAssigner = (*HoppingAssigner)(nil)
)

// NewWindowAssigner returns the assigner for spec.Kind: an *Assigner for
// tumbling windows (also for an empty kind), a *HoppingAssigner for hopping
// ones. Session windows have no assigner (use NewSessions); asking for one is
// an error, like any invalid size, slide or zone. Errors match ErrInvalidPolicy.
//
// NewAssigner, by contrast, ignores Kind: given a hopping spec it returns
// tumbling windows of spec.Size. A service that may see hopping policies
// must use NewWindowAssigner (or refuse kinds other than tumbling).
func NewWindowAssigner(spec WindowSpec) (WindowAssigner, error) {
	switch spec.Kind {
	case Tumbling, "":
		return NewAssigner(spec)
	case Hopping:
		return NewHoppingAssigner(spec)
	case SessionWindows:
		return nil, fmt.Errorf("new window assigner: %w", &FieldError{Field: "window.kind",
			Msg: "session windows depend on each key's events, not on the time alone: use NewSessions"})
	}
	return nil, fmt.Errorf("new window assigner: %w", &FieldError{Field: "window.kind",
		Msg: fmt.Sprintf("%q is not a window kind (valid: %s)", string(spec.Kind), validKindsList)})
}

// AssignAll appends the one tumbling window that contains t (see Assign).
func (a *Assigner) AssignAll(t time.Time, dst []Window) []Window {
	return append(dst, a.Assign(t))
}

// AssignAllMicros appends the one tumbling window that contains us (see AssignMicros).
func (a *Assigner) AssignAllMicros(us int64, dst []WindowMicros) []WindowMicros {
	s, e := a.AssignMicros(us)
	return append(dst, WindowMicros{s, e})
}

// WindowsPerEvent returns 1: tumbling windows tile time.
func (a *Assigner) WindowsPerEvent() int { return 1 }

// HoppingAssigner maps an event time to every hopping window that contains it.
//
// Hopping windows are built from panes: the tumbling windows of size Slide,
// aligned exactly as an Assigner of that size aligns them (to local midnight in
// Timezone when Slide divides 24h, to local days numbered from the epoch when
// it is whole days; a day with a DST change has a 23h or 25h daily pane, the
// last hourly pane of a 25h day lasts 2h and a 23h day has 23 hourly panes).
// With n = Size/Slide, one window starts at each pane and is the union of that
// pane and the n-1 panes after it. So:
//
//   - every instant is in exactly n windows: those starting at its pane and at
//     the n-1 panes before it;
//   - windows start at pane boundaries, one per pane, so a window's ID (its
//     start, Window.ID) is unique and stable, and there is a window starting at
//     every local midnight when Slide divides 24h;
//   - a window lasts n panes. Away from DST changes that is Size. Across one it
//     is Size plus or minus the shift: with Slide a whole number of days, a
//     window of n days spans n local calendar days (23h or 25h per DST day);
//     with Slide dividing 24h, a 24h window that starts at local midnight is
//     exactly that local day when the day keeps 24h/Slide panes (Slide longer
//     than the shift, e.g. 2h, 6h, 12h), but with 1h panes a 23h day has only
//     23 of them, so its 24-pane window runs to 01:00 the next day.
//
// Pane returns the pane of an instant: hopping windows can be kept as panes
// and each window put together from its n panes, storing every event once.
//
// AssignAll, Pane and WindowAt are safe for concurrent use; AssignAllMicros and
// PaneMicros use caches: give each goroutine its own HoppingAssigner.
type HoppingAssigner struct {
	pane   *Assigner // tumbling panes of size Slide; its caches serve AssignAllMicros
	n      int       // Size/Slide: windows per instant, panes per window
	sizeUs int64

	// bounds caches, for AssignAllMicros outside UTC, the pane boundaries
	// around the last pane k: bounds[i] is the start of pane k-n+1+i, for i in
	// 0..2n, so pane k is [bounds[n-1], bounds[n]).
	bounds []int64
	cached bool
}

// NewHoppingAssigner returns a HoppingAssigner for spec's Size, Slide and
// Timezone (Kind is not looked at). Slide must be valid as a tumbling size
// (at least 1s, whole seconds, dividing 24h or whole days), Size a whole
// multiple of it, at most MaxHoppingWindowsPerEvent times; errors match
// ErrInvalidPolicy.
func NewHoppingAssigner(spec WindowSpec) (*HoppingAssigner, error) {
	var errs []error
	for _, fe := range hoppingProblems(spec.Size, spec.Slide) {
		errs = append(errs, fe)
	}
	if _, err := loadZone(spec.Timezone); err != nil {
		errs = append(errs, &FieldError{Field: "window.timezone", Msg: err.Error()})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new hopping window assigner: %w", errors.Join(errs...))
	}
	pane, err := NewAssigner(WindowSpec{Size: spec.Slide, Timezone: spec.Timezone})
	if err != nil {
		return nil, fmt.Errorf("new hopping window assigner: %w", err)
	}
	n := int(spec.Size / spec.Slide)
	h := &HoppingAssigner{pane: pane, n: n, sizeUs: spec.Size.D().Microseconds()}
	if !pane.utc {
		h.bounds = make([]int64, 2*n+1)
	}
	return h, nil
}

// WindowsPerEvent returns Size/Slide.
func (h *HoppingAssigner) WindowsPerEvent() int { return h.n }

// Pane returns the pane (the tumbling window of size Slide) that contains t.
// Its ID is also the ID of the hopping window that starts with it.
func (h *HoppingAssigner) Pane(t time.Time) Window { return h.pane.Assign(t) }

// PaneMicros returns the pane that contains us, in microseconds, using caches
// (see Assigner.AssignMicros).
func (h *HoppingAssigner) PaneMicros(us int64) (startUs, endUs int64) {
	return h.pane.AssignMicros(us)
}

// WindowAt returns the hopping window that starts at start, and false when no
// window starts there (start is not a pane boundary).
func (h *HoppingAssigner) WindowAt(start time.Time) (Window, bool) {
	us := start.UnixMicro()
	c := paneCursor{a: h.pane}
	s, e := c.at(us)
	if s != us || start.Nanosecond()%1000 != 0 {
		return Window{}, false
	}
	for range h.n - 1 {
		_, e = c.at(e)
	}
	return WindowMicros{s, e}.Window(), true
}

// AssignAll appends the Size/Slide windows that contain t, sorted by start.
// It computes the panes from the zone's calendar without the caches of
// AssignAllMicros, and is safe for concurrent use.
func (h *HoppingAssigner) AssignAll(t time.Time, dst []Window) []Window {
	us := t.UnixMicro()
	if h.pane.utc {
		d := h.pane.sizeUs
		s := (floorDiv(us, d) - int64(h.n) + 1) * d
		for range h.n {
			dst = append(dst, WindowMicros{s, s + h.sizeUs}.Window())
			s += d
		}
		return dst
	}
	// first walks the starts of panes k-n+1..k, next their ends, which are the
	// starts of panes k+1..k+n: window i is [start of pane k-n+1+i, start of pane k+1+i).
	first, next := paneCursor{a: h.pane}, paneCursor{a: h.pane}
	s, e := first.at(us)
	for range h.n - 1 {
		s, _ = first.at(s - 1)
	}
	for range h.n {
		dst = append(dst, WindowMicros{s, e}.Window())
		_, s = first.at(s)
		_, e = next.at(e)
	}
	return dst
}

// AssignAllMicros appends the Size/Slide windows that contain us, sorted by
// start, and returns the extended slice. It does not allocate when dst has
// room for them. In UTC it is integer arithmetic; elsewhere it caches the pane
// boundaries around the last pane, so events in the same or the next pane
// cost a copy of the n windows.
func (h *HoppingAssigner) AssignAllMicros(us int64, dst []WindowMicros) []WindowMicros {
	n := h.n
	if h.pane.utc {
		d := h.pane.sizeUs
		s := (floorDiv(us, d) - int64(n) + 1) * d
		for range n {
			dst = append(dst, WindowMicros{s, s + h.sizeUs})
			s += d
		}
		return dst
	}
	b := h.boundsFor(us)
	for i := range n {
		dst = append(dst, WindowMicros{b[i], b[i+n]})
	}
	return dst
}

// boundsFor returns bounds positioned on the pane of us.
func (h *HoppingAssigner) boundsFor(us int64) []int64 {
	b, n := h.bounds, h.n
	if h.cached {
		if us >= b[n-1] && us < b[n] {
			return b
		}
		if us >= b[n] && us < b[n+1] { // the next pane: shift by one
			copy(b, b[1:])
			_, b[2*n] = h.pane.AssignMicros(b[2*n-1])
			return b
		}
	}
	b[n-1], b[n] = h.pane.AssignMicros(us)
	for i := n + 1; i <= 2*n; i++ {
		_, b[i] = h.pane.AssignMicros(b[i-1])
	}
	for i := n - 2; i >= 0; i-- {
		b[i], _ = h.pane.AssignMicros(b[i+1] - 1)
	}
	h.cached = true
	return b
}

// paneCursor computes the panes of a tumbling Assigner like its AssignMicros,
// but keeps its local-day cache to itself, leaving the Assigner untouched: a
// cursor on the stack makes walking panes safe for concurrent use.
type paneCursor struct {
	a                *Assigner
	dayStart, dayEnd int64
	ok               bool
}

func (c *paneCursor) at(us int64) (int64, int64) {
	a := c.a
	switch {
	case a.utc:
		s := floorDiv(us, a.sizeUs) * a.sizeUs
		return s, s + a.sizeUs
	case a.days > 0:
		return a.calendar(us)
	}
	if !c.ok || us < c.dayStart || us >= c.dayEnd {
		c.dayStart, c.dayEnd, _ = a.localDay(us)
		c.ok = true
	}
	return a.withinDay(us, c.dayStart, c.dayEnd)
}
