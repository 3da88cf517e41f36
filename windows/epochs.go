package windows

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// PastShape is a window shape a policy had before its window shape changed,
// and the instant it stopped applying. Policy.WindowHistory lists them, oldest
// first: an event earlier than the first entry's Until is assigned windows of
// that entry's shape, an event in [Until of entry i-1, Until of entry i) those
// of entry i's shape, and an event at or after the last Until those of
// Policy.Window. The entries are written by the policy store when it stores a
// shape change (see Policy.SwitchInstant); a policy file does not need them.
type PastShape struct {
	// Until is the switch instant (UTC): the end of a window of this shape and
	// the start of a window of the next one, so that no window is split.
	Until time.Time `yaml:"until" json:"until"`
	// Kind is window.kind of the shape: tumbling or hopping (session windows
	// have no fixed boundaries to switch at).
	Kind WindowKind `yaml:"kind" json:"kind"`
	// Size is window.size of the shape.
	Size Duration `yaml:"size" json:"size"`
	// Slide is window.slide of a hopping shape.
	Slide Duration `yaml:"slide,omitempty" json:"slide,omitempty"`
	// Timezone is window.timezone of the shape. Default "UTC".
	Timezone string `yaml:"timezone" json:"timezone"`
}

// MaxSwitchSearch bounds the search for a switch instant (Policy.SwitchInstant):
// how many window boundaries of the coarser shape it looks at.
const MaxSwitchSearch = 100_000

// PastShape returns w's shape as a window_history entry ending at until.
func (w WindowSpec) PastShape(until time.Time) PastShape {
	return PastShape{Until: until.UTC(), Kind: w.Kind, Size: w.Size, Slide: w.Slide, Timezone: w.Timezone}
}

// spec returns the entry's shape as a WindowSpec (kind, size, slide, zone).
func (s PastShape) spec() WindowSpec {
	return WindowSpec{Kind: s.Kind, Size: s.Size, Slide: s.Slide, Timezone: s.Timezone}
}

// shapeName renders a shape for messages: "1h tumbling windows in UTC".
func shapeName(w WindowSpec) string {
	kind := w.Kind
	if kind == "" {
		kind = Tumbling
	}
	s := fmt.Sprintf("%s %s windows", w.Size, kind)
	if kind == Hopping {
		s = fmt.Sprintf("%s hopping windows sliding by %s", w.Size, w.Slide)
	}
	tz := w.Timezone
	if tz == "" {
		tz = DefaultTimezone
	}
	return s + " in " + tz
}

// shape is one epoch's shape, ready to compute boundaries.
type shape struct {
	spec WindowSpec
	pane *Assigner // tumbling: the windows; hopping: the panes of size slide
}

func newShape(w WindowSpec) (shape, error) {
	switch w.Kind {
	case Tumbling, Hopping, "":
	default:
		return shape{}, &FieldError{Field: "window.kind", Msg: fmt.Sprintf("%s windows have no fixed boundaries, so a change of shape cannot be switched at an instant (valid: tumbling, hopping)", w.Kind)}
	}
	paneSize := w.Size
	if w.Kind == Hopping {
		paneSize = w.Slide
	}
	a, err := NewAssigner(WindowSpec{Size: paneSize, Timezone: w.Timezone})
	if err != nil {
		return shape{}, err
	}
	return shape{spec: w, pane: a}, nil
}

// boundary reports whether us starts a window (a pane, for hopping windows).
func (s shape) boundary(us int64) bool {
	start, _ := s.pane.calendar(us)
	return start == us
}

// firstEnd returns the end of the first window of the shape that starts at
// from (a boundary).
func (s shape) firstEnd(from int64) int64 {
	n := 1
	if s.spec.Kind == Hopping {
		n = int(s.spec.Size / s.spec.Slide)
	}
	e := from
	for range n {
		_, e = s.pane.calendar(e)
	}
	return e
}

// SwitchInstant returns the instant T from which the window shape of p may
// change to next's (kind, size, slide, timezone): the first instant at or
// after floor that ends a window of p's current shape and starts a window of
// next's, so that no window of either shape covers instants on both sides of
// T. For hopping windows that means a pane boundary of both; hopping windows
// that would cross T do not exist (events near T are in fewer windows, as at
// the start of a stream).
//
// When p's shape itself began at a switch instant (its last WindowHistory
// entry), T also leaves it at least one whole window. T is searched over at
// most MaxSwitchSearch boundaries of the coarser shape; shapes whose
// boundaries never meet (daily windows in two zones, hourly windows in UTC
// and in a zone with a half-hour offset) are an error naming the field, as is
// a kind without fixed boundaries (session). Errors match ErrInvalidPolicy.
func (p *Policy) SwitchInstant(next WindowSpec, floor time.Time) (time.Time, error) {
	field := shapeField(p.Window, next)
	fail := func(format string, args ...any) (time.Time, error) {
		return time.Time{}, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	cur, err := newShape(p.Window)
	if err != nil {
		return time.Time{}, err
	}
	nxt, err := newShape(next)
	if err != nil {
		return time.Time{}, err
	}
	lo := ceilMicro(floor)
	if h := p.WindowHistory; len(h) > 0 {
		lo = max(lo, cur.firstEnd(h[len(h)-1].Until.UnixMicro()))
	}
	// Walk the boundaries of the coarser panes; check the finer ones.
	walk, check := cur, nxt
	if nxt.pane.sizeUs > cur.pane.sizeUs {
		walk, check = nxt, cur
	}
	b, e := walk.pane.calendar(lo)
	if b < lo {
		b = e
	}
	for range MaxSwitchSearch {
		if check.boundary(b) {
			return time.UnixMicro(b).UTC(), nil
		}
		_, b = walk.pane.calendar(b)
	}
	return fail("no instant within %d windows after %s is both a boundary of the current %s and of the new %s, so the change would split a window "+
		"(valid: shapes whose boundaries meet, e.g. sizes that divide each other in the same time zone); or use a new policy name and table",
		MaxSwitchSearch, floor.UTC().Format(time.RFC3339), shapeName(p.Window), shapeName(next))
}

// shapeField names the first shape field that differs between two specs.
func shapeField(old, new WindowSpec) string {
	switch {
	case old.Kind != new.Kind:
		return "window.kind"
	case old.Size != new.Size:
		return "window.size"
	case old.Slide != new.Slide:
		return "window.slide"
	case old.Timezone != new.Timezone:
		return "window.timezone"
	}
	return "window"
}

// ceilMicro rounds t up to a whole microsecond, in Unix microseconds.
func ceilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 { // UnixMicro rounds down
		us++
	}
	return us
}

// historyProblems checks WindowHistory: each entry a valid tumbling or
// hopping shape, the entries in order of Until, each Until a boundary of its
// shape and of the next one, and every shape that began at a switch instant
// holding at least one whole window before it ends.
func (p *Policy) historyProblems() []*FieldError {
	h := p.WindowHistory
	if len(h) == 0 {
		return nil
	}
	var ps problems
	if p.Window.Kind != Tumbling && p.Window.Kind != Hopping {
		ps.add("window_history", "only tumbling and hopping windows switch shapes at an instant (window.kind is %s): remove window_history or use a new policy name", p.Window.Kind)
		return ps
	}
	shapes := make([]shape, len(h)+1)
	ok := true
	for i, e := range h {
		base := fmt.Sprintf("window_history[%d]", i)
		spec := e.spec()
		var bad bool
		if spec.Kind != Tumbling && spec.Kind != Hopping {
			ps.add(base+".kind", "%q is not a kind with fixed boundaries (valid: tumbling, hopping)", string(spec.Kind))
			bad = true
		} else {
			for _, fe := range spec.kindProblems() {
				ps.add(base+strings.TrimPrefix(fe.Field, "window"), "%s", fe.Msg)
				bad = true
			}
		}
		if _, err := loadZone(spec.Timezone); err != nil {
			ps.add(base+".timezone", "%s", err)
			bad = true
		}
		if e.Until.IsZero() {
			ps.add(base+".until", "is required (the instant this shape stopped applying, RFC 3339)")
			bad = true
		} else if e.Until.Nanosecond()%1000 != 0 {
			ps.add(base+".until", "%s is not a whole microsecond", e.Until.Format(time.RFC3339Nano))
			bad = true
		}
		if i > 0 && !e.Until.IsZero() && !h[i-1].Until.IsZero() && !e.Until.After(h[i-1].Until) {
			ps.add(base+".until", "%s is not after the previous entry's %s (entries are oldest first)", e.Until.Format(time.RFC3339), h[i-1].Until.Format(time.RFC3339))
			bad = true
		}
		if !bad {
			shapes[i], _ = newShape(spec)
		}
		ok = ok && !bad
	}
	if !ok {
		return ps
	}
	cur, err := newShape(p.Window)
	if err != nil {
		return ps // window.* reports it
	}
	shapes[len(h)] = cur
	for i, e := range h {
		base := fmt.Sprintf("window_history[%d].until", i)
		us := e.Until.UnixMicro()
		if !shapes[i].boundary(us) || !shapes[i+1].boundary(us) {
			ps.add(base, "%s is not a boundary of both %s and the next %s, so it would split a window", e.Until.Format(time.RFC3339), shapeName(shapes[i].spec), shapeName(shapes[i+1].spec))
			continue
		}
		if i > 0 {
			if end := shapes[i].firstEnd(h[i-1].Until.UnixMicro()); us < end {
				ps.add(base, "%s leaves %s no whole window after they began at %s (valid: at or after %s)", e.Until.Format(time.RFC3339), shapeName(shapes[i].spec),
					h[i-1].Until.Format(time.RFC3339), time.UnixMicro(end).UTC().Format(time.RFC3339))
			}
		}
	}
	return ps
}

// EpochAssigner assigns windows over a policy's shape history: events earlier
// than a switch instant get windows of the shape that applied then, later
// ones those of the next shape (see PastShape). Only the windows that lie
// wholly inside their shape's epoch exist: for tumbling windows that is every
// window (switch instants are window boundaries); hopping windows that would
// cross a switch instant are left out, so an event near one is in fewer than
// size/slide windows.
//
// AssignAll is safe for concurrent use; AssignAllMicros uses the caches of the
// epochs' assigners: give each goroutine its own EpochAssigner.
type EpochAssigner struct {
	epochs   []epoch
	last     int // the epoch of the last AssignAllMicros
	perEvent int
}

type epoch struct {
	fromUs, untilUs int64 // [from, until); MinInt64 and MaxInt64 at the ends
	a               WindowAssigner
}

var _ WindowAssigner = (*EpochAssigner)(nil)

// NewEpochAssigner returns the assigner of p's windows over its shapes: those
// of p.WindowHistory before their switch instants, p.Window from the last one
// on (with no history, p.Window throughout). p must be valid (ParsePolicy or
// Validate); errors match ErrInvalidPolicy.
func NewEpochAssigner(p *Policy) (*EpochAssigner, error) {
	if fes := p.historyProblems(); len(fes) > 0 {
		errs := make([]error, len(fes))
		for i, fe := range fes {
			errs[i] = fe
		}
		return nil, fmt.Errorf("new epoch assigner: %w", errors.Join(errs...))
	}
	x := &EpochAssigner{}
	from := int64(math.MinInt64)
	add := func(spec WindowSpec, until int64) error {
		a, err := NewWindowAssigner(spec)
		if err != nil {
			return fmt.Errorf("new epoch assigner: %w", err)
		}
		x.epochs = append(x.epochs, epoch{fromUs: from, untilUs: until, a: a})
		x.perEvent = max(x.perEvent, a.WindowsPerEvent())
		from = until
		return nil
	}
	for _, e := range p.WindowHistory {
		if err := add(e.spec(), e.Until.UnixMicro()); err != nil {
			return nil, err
		}
	}
	if err := add(p.Window, math.MaxInt64); err != nil {
		return nil, err
	}
	return x, nil
}

// WindowsPerEvent returns the most windows an instant is in, over all shapes.
func (x *EpochAssigner) WindowsPerEvent() int { return x.perEvent }

// find returns the index of the epoch containing us.
func (x *EpochAssigner) find(us int64) int {
	for i := range x.epochs {
		if us < x.epochs[i].untilUs {
			return i
		}
	}
	return len(x.epochs) - 1 // not reached: the last epoch ends at MaxInt64
}

// AssignAll appends the windows that contain t, of the shape that applied at t.
func (x *EpochAssigner) AssignAll(t time.Time, dst []Window) []Window {
	e := &x.epochs[x.find(t.UnixMicro())]
	n := len(dst)
	dst = e.a.AssignAll(t, dst)
	if len(x.epochs) == 1 {
		return dst
	}
	kept := dst[:n]
	for _, w := range dst[n:] {
		if w.Start.UnixMicro() >= e.fromUs && w.End.UnixMicro() <= e.untilUs {
			kept = append(kept, w)
		}
	}
	return kept
}

// AssignAllMicros appends the windows that contain us, of the shape that
// applied at us. It does not allocate when dst has room for
// WindowsPerEvent more windows.
func (x *EpochAssigner) AssignAllMicros(us int64, dst []WindowMicros) []WindowMicros {
	e := &x.epochs[x.last]
	if us < e.fromUs || us >= e.untilUs {
		x.last = x.find(us)
		e = &x.epochs[x.last]
	}
	n := len(dst)
	dst = e.a.AssignAllMicros(us, dst)
	if len(x.epochs) == 1 {
		return dst
	}
	kept := dst[:n]
	for _, w := range dst[n:] {
		if w.StartUs >= e.fromUs && w.EndUs <= e.untilUs {
			kept = append(kept, w)
		}
	}
	return kept
}

// ShapeFloor is the earliest instant from which a new window shape may apply
// to p (the floor of SwitchInstant): the latest of now, of the newest event
// time its watermark stands for (watermark + max_out_of_order; a zero
// watermark stands for none), of the ends of p's windows, under its current
// shapes, of that instant, and of the ends of its stored windows (any
// status). So no window of the old shape that may hold events is split.
// Events dated later than that which a collector takes in between the apply
// and its restart on the new version are the one gap (see
// docs/architecture.md, "Window shape changes").
func (p *Policy) ShapeFloor(now, watermark time.Time, storedEnds []time.Time) (time.Time, error) {
	at := now
	if !watermark.IsZero() {
		at = latest(at, watermark.Add(p.Window.MaxOutOfOrder.D()))
	}
	assign, err := NewEpochAssigner(p)
	if err != nil {
		return time.Time{}, err
	}
	floor := at
	for _, w := range assign.AssignAll(at, nil) {
		floor = latest(floor, w.End)
	}
	for _, end := range storedEnds {
		floor = latest(floor, end)
	}
	return floor, nil
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
