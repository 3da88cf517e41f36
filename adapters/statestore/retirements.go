package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
)

// Retirement reads a policy's retirement record (messages.Retirement, key
// messages.RetirementKey in the watermarks bucket); ok is false when no
// window was retired yet.
func (w *Watermarks) Retirement(ctx context.Context, policy string) (r messages.Retirement, ok bool, err error) {
	r, _, ok, err = w.retirement(ctx, policy)
	return r, ok, err
}

func (w *Watermarks) retirement(ctx context.Context, policy string) (r messages.Retirement, rev uint64, ok bool, err error) {
	e, err := w.kv.Get(ctx, messages.RetirementKey(policy))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return messages.Retirement{Policy: policy}, 0, false, nil
	}
	if err != nil {
		return r, 0, false, fmt.Errorf("get retirement of %s: %w", policy, err)
	}
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return r, 0, false, fmt.Errorf("decode retirement of %s: %w", policy, err)
	}
	return r, e.Revision(), true, nil
}

// AdvanceRetirement applies change to the policy's retirement record (a
// zero record with the policy's name when there is none) and writes the
// result by compare-and-set, retrying on conflict as Update does; change
// must be pure.
// The horizon never moves back: a result behind the current horizon is
// refused. ErrNoChange from change writes nothing.
func (w *Watermarks) AdvanceRetirement(ctx context.Context, policy string, change func(cur messages.Retirement) (messages.Retirement, error)) (messages.Retirement, error) {
	key := messages.RetirementKey(policy)
	var c conflicts
	for {
		cur, rev, ok, err := w.retirement(ctx, policy)
		if err != nil {
			return cur, err
		}
		next, err := change(cur)
		if errors.Is(err, ErrNoChange) {
			return cur, nil
		}
		if err != nil {
			return cur, err
		}
		if next.Horizon.Before(cur.Horizon) || next.Policy != policy {
			return cur, fmt.Errorf("retirement of %s: horizon %s behind %s (it only moves forward)", policy, next.Horizon.Format(time.RFC3339Nano), cur.Horizon.Format(time.RFC3339Nano))
		}
		next.UpdatedAt = time.Now().UTC()
		if err := next.Validate(); err != nil {
			return cur, fmt.Errorf("retirement of %s: %w", policy, err)
		}
		data, err := json.Marshal(next)
		if err != nil {
			return cur, err
		}
		if ok {
			_, err = w.kv.Update(ctx, key, data, rev)
		} else {
			_, err = w.kv.Create(ctx, key, data)
		}
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return cur, fmt.Errorf("write retirement of %s: %w", policy, err)
		}
		if err := c.again(ctx, "retirement of "+policy); err != nil {
			return cur, err
		}
	}
}
