package statestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrContended ends a compare-and-set change that kept losing to other
// writers of the same key for maxConflictTime.
var ErrContended = errors.New("other writers kept changing the key")

// Pacing of compare-and-set retries. A conflict means another writer's
// change of the key succeeded, so the writers as a whole always make
// progress; a fixed count of retries would fail a writer merely for being
// unlucky when many instances update one key (a window's state while its
// collectors register segments) or when the machine is loaded. So a change
// is retried until its context ends, or for at most maxConflictTime, with a
// pause that grows from conflictPauseMin to conflictPauseMax after each
// conflict and is drawn at random below that bound (full jitter), so that
// writers that collided do not collide again in lockstep.
const (
	conflictPauseMin = time.Millisecond
	conflictPauseMax = 100 * time.Millisecond
	maxConflictTime  = time.Minute
)

// conflicts paces the retries of one compare-and-set change.
type conflicts struct {
	n     int
	start time.Time
}

// again is called after a conflicting write. It waits before the next
// attempt and returns nil, or the error that ends the change: what (e.g.
// "update window K") gave up after n conflicting writes, because ctx ended
// (wrapping ctx.Err()) or after maxConflictTime (wrapping ErrContended).
func (c *conflicts) again(ctx context.Context, what string) error {
	if c.n == 0 {
		c.start = time.Now()
	}
	c.n++
	giveUp := func(cause error) error {
		return fmt.Errorf("%s: gave up after %d conflicting writes in %s: %w", what, c.n, time.Since(c.start).Round(time.Millisecond), cause)
	}
	if err := ctx.Err(); err != nil {
		return giveUp(err)
	}
	left := maxConflictTime - time.Since(c.start)
	if left <= 0 {
		return giveUp(ErrContended)
	}
	bound := conflictPauseMax
	if c.n < 8 {
		bound = min(bound, conflictPauseMin<<c.n)
	}
	pause := min(rand.N(bound), left)
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return giveUp(ctx.Err())
	case <-t.C:
		return nil
	}
}
