package compactor

import (
	"errors"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/pipeline/windowstate"
)

// noWrite translates what windowstate says when an event changes nothing
// (ErrNoChange) or does not apply (a refusal) into statestore.ErrNoChange:
// the update writes nothing. To the compactor both mean that there is
// nothing for it to do; callers that must tell them apart look at the
// error first.
func noWrite(err error) error {
	if errors.Is(err, windowstate.ErrNoChange) || errors.Is(err, windowstate.ErrRefused) {
		return statestore.ErrNoChange
	}
	return err
}
