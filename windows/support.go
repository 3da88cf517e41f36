package windows

import (
	"errors"
	"fmt"
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
	switch p.Window.Kind {
	case Tumbling, Hopping, "":
	default:
		add("window.kind", string(p.Window.Kind)+" windows are part of the policy language, but this version's collector and compactor run tumbling and hopping windows only (valid today: tumbling, hopping)")
	}
	if len(p.Key) > 0 && p.Window.Kind == SessionWindows {
		add("key", "sessions per key are part of the policy language, but this version's collector and compactor do not run session windows yet")
	}
	return errors.Join(errs...)
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
