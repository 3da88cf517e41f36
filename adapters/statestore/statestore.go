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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/messages"
)

// ErrNoChange, returned by an update function, ends Update without writing.
var ErrNoChange = errors.New("no change")

// ErrNotFound is returned by Get for a window without state.
var ErrNotFound = errors.New("window state not found")

// ErrDeleted is returned by Update when the window's state was deleted
// (the window is retired, window.retain): it is never created again.
var ErrDeleted = errors.New("window state deleted: the window is retired")

// Store reads and writes window states.
type Store struct {
	kv jetstream.KeyValue
	// reads counts state values read (Get, and each state of List and
	// Update); lists counts List calls.
	reads, lists atomic.Int64
}

// Reads returns how many window states the store has read and how many
// times it listed a policy's states, since it was made.
func (s *Store) Reads() (states, lists int64) { return s.reads.Load(), s.lists.Load() }

// KV is the windows bucket the store reads and writes.
func (s *Store) KV() jetstream.KeyValue { return s.kv }

// New returns a store over the windows bucket.
func New(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// Get returns a window's state and its KV revision.
func (s *Store) Get(ctx context.Context, policy, windowID string) (*messages.WindowState, uint64, error) {
	return s.get(ctx, messages.WindowKey(policy, windowID))
}

func (s *Store) get(ctx context.Context, key string) (*messages.WindowState, uint64, error) {
	s.reads.Add(1)
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
// none) and writes the result with compare-and-set, retrying on conflicts
// (paced by a growing, jittered pause) until ctx ends or for at most a
// minute of conflicts; giving up wraps ctx.Err() or ErrContended.
// change must be a pure function of its input: it may run several times.
// It returns the state written, or the current one if change returned ErrNoChange.
func (s *Store) Update(ctx context.Context, key string, change func(cur *messages.WindowState) (*messages.WindowState, error)) (*messages.WindowState, error) {
	var c conflicts
	for {
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
			// Revision 0: the key must have no entry at all, not even the
			// delete marker a retired window leaves (kv.Create would write
			// over it and bring the window back).
			_, err = s.kv.Update(ctx, key, data, 0)
			if err != nil && (errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)) {
				if _, gerr := s.kv.Get(ctx, key); errors.Is(gerr, jetstream.ErrKeyNotFound) {
					return nil, fmt.Errorf("update window %s: %w", key, ErrDeleted)
				}
			}
		} else {
			_, err = s.kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("write window %s: %w", key, err)
		}
		if err := c.again(ctx, "update window "+key); err != nil {
			return nil, err
		}
	}
}

// Delete deletes a window's state (retirement) if check, a pure function
// of the current state, accepts it: compare-and-set on the key's revision,
// re-read and checked again on conflict. It returns the state deleted, or
// check's error (nil, nil when there is no state). Conflicts are retried as
// in Update. The key keeps a delete
// marker, so Update never creates the state again.
func (s *Store) Delete(ctx context.Context, key string, check func(cur *messages.WindowState) error) (*messages.WindowState, error) {
	var c conflicts
	for {
		cur, rev, err := s.get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if err := check(cur); err != nil {
			return nil, err
		}
		err = s.kv.Delete(ctx, key, jetstream.LastRevision(rev))
		if err == nil {
			return cur, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil, fmt.Errorf("delete window %s: %w", key, err)
		}
		if err := c.again(ctx, "delete window "+key); err != nil {
			return nil, err
		}
	}
}

// List returns every window state of a policy ("" for all policies).
func (s *Store) List(ctx context.Context, policy string) ([]*messages.WindowState, error) {
	s.lists.Add(1)
	filter := ">"
	if policy != "" {
		filter = messages.WindowKeyFilter(policy)
	}
	keys, err := natsx.ListKeys(ctx, s.kv, filter)
	if err != nil {
		return nil, fmt.Errorf("list windows: %w", err)
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

// PurgeRetired removes the delete markers that retired windows of a policy
// left (Delete) that were written before before, so that the bucket does
// not keep a marker per retired window for ever (525,600 a year with
// one-minute windows). Until then the marker keeps Update from creating
// the state again; after it, the retirement horizon, which collectors read
// about every 250ms, is what turns the window's events late. Each key's
// messages are purged up to its marker's revision only: a value written
// after the marker stays. js is the JetStream of the bucket; it returns how
// many markers it removed.
func (s *Store) PurgeRetired(ctx context.Context, js jetstream.JetStream, policy string, before time.Time) (int, error) {
	w, err := natsx.Watch(ctx, s.kv, []string{messages.WindowKeyFilter(policy)}, jetstream.MetaOnly())
	if err != nil {
		return 0, fmt.Errorf("purge retired windows of %s: %w", policy, err)
	}
	var markers []jetstream.KeyValueEntry
	for e := range w.Updates() {
		if e == nil {
			break // every current entry delivered
		}
		if e.Operation() == jetstream.KeyValueDelete && e.Created().Before(before) {
			markers = append(markers, e)
		}
	}
	if err := w.Stop(); err != nil {
		return 0, err
	}
	if len(markers) == 0 {
		return 0, nil
	}
	stream, err := js.Stream(ctx, "KV_"+s.kv.Bucket())
	if err != nil {
		return 0, fmt.Errorf("purge retired windows of %s: %w", policy, err)
	}
	for i, e := range markers {
		subject := "$KV." + s.kv.Bucket() + "." + e.Key()
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeSequence(e.Revision()+1)); err != nil {
			return i, fmt.Errorf("purge marker of %s: %w", e.Key(), err)
		}
	}
	return len(markers), nil
}
