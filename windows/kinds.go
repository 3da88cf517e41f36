package windows

import (
	"fmt"
	"time"
)

// Window kinds: defaults and limits checked by Validate.
const (
	// MinSlide is the shortest hopping window.slide.
	MinSlide = Duration(time.Second)
	// MaxHoppingWindowsPerEvent caps size/slide, the number of hopping windows
	// each event belongs to (24h/1m = 1440).
	MaxHoppingWindowsPerEvent = 1440
	// MinSessionGap is the shortest session window.gap.
	MinSessionGap = Duration(time.Second)
	// DefaultMaxOpenSessions is window.max_open_sessions when it is 0 or absent.
	DefaultMaxOpenSessions = 100_000
	// MaxMaxOpenSessions is the largest window.max_open_sessions.
	MaxMaxOpenSessions = 10_000_000

	validKindsList = "tumbling, hopping, session"
	slideExamples  = "e.g. size: 1h with slide: 15m, size: 24h with slide: 1h, size: 168h with slide: 24h"
)

// SessionLimit returns MaxOpenSessions, or DefaultMaxOpenSessions when it is 0.
func (w WindowSpec) SessionLimit() int {
	if w.MaxOpenSessions == 0 {
		return DefaultMaxOpenSessions
	}
	return w.MaxOpenSessions
}

// kindProblems checks kind, size, slide, gap and max_open_sessions: which of
// them the kind needs, which it refuses, and their values.
func (w *WindowSpec) kindProblems() []*FieldError {
	var ps problems
	onlyFor := func(field string, kind WindowKind) {
		ps.add(field, "is only used by %s windows (kind is %s): remove it, or set kind: %s", kind, w.Kind, kind)
	}
	switch w.Kind {
	case Tumbling:
		if e := sizeProblem(w.Size); e != nil {
			ps = append(ps, e)
		}
	case Hopping:
		ps = append(ps, hoppingProblems(w.Size, w.Slide)...)
	case SessionWindows:
		if w.Size != 0 {
			ps.add("window.size", "must be empty for session windows: a session lasts from its first event to its last event + gap (set window.gap instead)")
		}
		if e := gapProblem(w.Gap); e != nil {
			ps = append(ps, e)
		}
	default:
		ps.add("window.kind", "%q is not a window kind (valid: %s)", string(w.Kind), validKindsList)
		if e := sizeProblem(w.Size); e != nil {
			ps = append(ps, e)
		}
	}
	if w.Slide != 0 && w.Kind != Hopping && isKind(w.Kind) {
		onlyFor("window.slide", Hopping)
	}
	if w.Gap != 0 && w.Kind != SessionWindows && isKind(w.Kind) {
		onlyFor("window.gap", SessionWindows)
	}
	switch {
	case w.MaxOpenSessions == 0:
	case w.Kind != SessionWindows && isKind(w.Kind):
		onlyFor("window.max_open_sessions", SessionWindows)
	case w.MaxOpenSessions < 1 || w.MaxOpenSessions > MaxMaxOpenSessions:
		ps.add("window.max_open_sessions", "%d is out of range (valid: 1..%d; absent or 0 means %d)", w.MaxOpenSessions, MaxMaxOpenSessions, DefaultMaxOpenSessions)
	}
	return ps
}

func isKind(k WindowKind) bool { return k == Tumbling || k == Hopping || k == SessionWindows }

// hoppingProblems checks the size and slide of hopping windows. The slide obeys
// the tumbling size rule, because hopping windows are unions of consecutive
// tumbling panes of the slide; the size is a whole number of slides.
func hoppingProblems(size, slide Duration) []*FieldError {
	var ps problems
	sizeOK := false
	switch {
	case size == 0:
		ps.add("window.size", "is required (the length of each hopping window, a whole multiple of slide; %s)", slideExamples)
	case size < MinWindowSize:
		ps.add("window.size", "%s is too short (valid: at least 1s; %s)", size, slideExamples)
	case size.D()%time.Second != 0:
		ps.add("window.size", "%s is not whole seconds (%s)", size, slideExamples)
	default:
		sizeOK = true
	}
	slideOK := false
	switch {
	case slide == 0:
		ps.add("window.slide", "is required for hopping windows (how far apart windows start: divides 24h or is whole days, and divides size; %s)", slideExamples)
	case slide < 0:
		ps.add("window.slide", "%s must be positive (%s)", slide, slideExamples)
	case slide < MinSlide:
		ps.add("window.slide", "%s is too short (valid: at least 1s; %s)", slide, slideExamples)
	case slide.D()%time.Second != 0:
		ps.add("window.slide", "%s is not whole seconds (%s)", slide, slideExamples)
	default:
		if !alignsToDays(slide) {
			ps.add("window.slide", "%s neither divides 24h nor is a whole number of days, so windows would not align to midnight (%s)", slide, slideExamples)
		} else {
			slideOK = true
		}
	}
	if !sizeOK || !slideOK {
		return ps
	}
	switch n := size / slide; {
	case slide > size:
		ps.add("window.slide", "%s is longer than size %s (valid: at most size, which is a whole multiple of slide; %s)", slide, size, slideExamples)
	case size%slide != 0:
		ps.add("window.slide", "%s does not divide size %s, so windows would not start on slide boundaries (valid: size a whole multiple of slide; %s)", slide, size, slideExamples)
	case n > MaxHoppingWindowsPerEvent:
		ps.add("window.slide", "%s puts every event into %d windows of %s (valid: size/slide at most %d; use a longer slide)", slide, n, size, MaxHoppingWindowsPerEvent)
	}
	return ps
}

// alignsToDays reports whether d (whole seconds, > 0) divides 24h or is whole days.
func alignsToDays(d Duration) bool {
	const day = int64(24 * time.Hour / time.Second)
	secs := int64(d.D() / time.Second)
	return day%secs == 0 || secs%day == 0
}

func gapProblem(gap Duration) *FieldError {
	fe := func(format string, args ...any) *FieldError {
		return &FieldError{Field: "window.gap", Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case gap == 0:
		return fe("is required for session windows (a pause of gap or more between two events of a key starts a new session; e.g. 30m)")
	case gap < 0:
		return fe("%s must be positive (e.g. 30m)", gap)
	case gap < MinSessionGap:
		return fe("%s is too short (valid: at least %s, e.g. 30m)", gap, MinSessionGap)
	}
	return nil
}
