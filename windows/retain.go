package windows

import "time"

// RetainMin is the bound window.retain must exceed: a window (a session
// policy's pane), its allowed_lateness and, with late: revise, its
// revise_after. A window's state is needed at least that long after the
// window starts; retain counts from its end, so anything above it leaves
// the window room for late events and revisions.
func (w WindowSpec) RetainMin() time.Duration {
	size := w.Size
	if w.Kind == SessionWindows {
		size = w.SessionPane()
	}
	low := size.D() + w.AllowedLateness.D()
	if w.Late == LateRevise {
		ra := w.ReviseAfter
		if ra == 0 {
			ra = DefaultReviseAfter
		}
		low += ra.D()
	}
	return low
}

// RetainFor is how long a LOADED window's state is kept (window.retain):
// the policy's value; when it is 0, DefaultRetain, or twice RetainMin for
// windows too long for it (a week or more).
func (w WindowSpec) RetainFor() Duration {
	if w.Retain == 0 && DefaultRetain.D() > w.RetainMin() {
		return DefaultRetain
	}
	if w.Retain == 0 {
		return Duration(2 * w.RetainMin())
	}
	return w.Retain
}
