package windowstate

import (
	"errors"
	"fmt"

	"github.com/windrow/windrow/messages"
)

var (
	// ErrNoChange: the event changes nothing; write nothing.
	ErrNoChange = errors.New("windowstate: no change")
	// ErrRefused matches every *RefusedError.
	ErrRefused = errors.New("windowstate: refused")
	// ErrLate: a segment registered above the cutoff of a window that is no
	// longer OPEN, whose policy does not revise (Register). Its rows are late.
	ErrLate = errors.New("late segment")
)

// RefusedError is an event that does not apply to the window in its
// current status. errors.Is(err, ErrRefused) holds for every one, and
// errors.Is(err, Err) for its cause when it has one (ErrLate).
type RefusedError struct {
	From   messages.WindowStatus // the window's status; "" when it has no state
	Event  string                // "seal", "claim", …
	Reason string
	Err    error // a sentinel naming the refusal, or nil
}

func (e *RefusedError) Error() string {
	from := string(e.From)
	if from == "" {
		from = "no state"
	}
	return fmt.Sprintf("windowstate: %s refused (%s): %s", e.Event, from, e.Reason)
}

// Is reports whether target is ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Unwrap returns the refusal's sentinel, if any.
func (e *RefusedError) Unwrap() error { return e.Err }

// refuse is a refusal of event for cur.
func refuse(cur *messages.WindowState, event, reason string) *RefusedError {
	e := &RefusedError{Event: event, Reason: reason}
	if cur != nil {
		e.From = cur.Status
	}
	return e
}

// noChange is ErrNoChange with the reason.
func noChange(reason string) error { return fmt.Errorf("%w: %s", ErrNoChange, reason) }
