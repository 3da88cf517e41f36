// Package statestore keeps window states in the NATS KV bucket
// messages.BucketWindows. Every change is a compare-and-set on the key's
// revision, retried on conflict by re-reading and re-applying the change, so
// concurrent collectors and compactors never overwrite each other: a
// collector registers a segment only while the window is OPEN, and exactly one
// compactor's seal succeeds.
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

// ErrNoChange, returned by an update function, ends Update without writing.
var ErrNoChange = errors.New("no change")

// ErrNotFound is returned by Get for a window without state.
var ErrNotFound = errors.New("window state not found")

// maxAttempts bounds CAS retries of one Update.
const maxAttempts = 100

// Store reads and writes window states.
type Store struct {
	kv jetstream.KeyValue
}

// New returns a store over the windows bucket.
func New(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// Get returns a window's state and its KV revision.
func (s *Store) Get(ctx context.Context, policy, windowID string) (*messages.WindowState, uint64, error) {
	return s.get(ctx, messages.WindowKey(policy, windowID))
}

func (s *Store) get(ctx context.Context, key string) (*messages.WindowState, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get window %s: %w", key, err)
	}
	var st messages.WindowState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("decode window %s: %w", key, err)
	}
	return &st, e.Revision(), nil
}

// Update applies change to the window's current state (nil when there is
// none) and writes the result with compare-and-set, retrying on conflicts.
// change must be a pure function of its input: it may run several times.
// It returns the state written, or the current one if change returned ErrNoChange.
func (s *Store) Update(ctx context.Context, key string, change func(cur *messages.WindowState) (*messages.WindowState, error)) (*messages.WindowState, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		cur, rev, err := s.get(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		var in *messages.WindowState
		if cur != nil {
			c := *cur
			in = &c
		}
		next, err := change(in)
		if errors.Is(err, ErrNoChange) {
			return cur, nil
		}
		if err != nil {
			return nil, err
		}
		if next == nil {
			return nil, fmt.Errorf("update window %s: the change returned no state", key)
		}
		next.UpdatedAt = time.Now().UTC()
		if err := next.Validate(); err != nil {
			return nil, fmt.Errorf("update window %s: %w", key, err)
		}
		data, err := json.Marshal(next)
		if err != nil {
			return nil, fmt.Errorf("encode window %s: %w", key, err)
		}
		if cur == nil {
			_, err = s.kv.Create(ctx, key, data)
		} else {
			_, err = s.kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("write window %s: %w", key, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("update window %s: gave up after %d conflicting writes", key, maxAttempts)
}

// List returns every window state of a policy ("" for all policies).
func (s *Store) List(ctx context.Context, policy string) ([]*messages.WindowState, error) {
	filter := ">"
	if policy != "" {
		filter = messages.WindowKeyFilter(policy)
	}
	lister, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list windows: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var out []*messages.WindowState
	for _, k := range keys {
		st, _, err := s.get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
