// Package policystore keeps window policies in the NATS KV bucket
// messages.BucketPolicies, one key per policy holding the policy file as the
// user wrote it. A policy's version is the key's KV revision, so every
// service that reads it agrees on the number, and every batch records it.
//
// One part of a stored policy is written by the store, not by the user:
// window_history, the window shapes the policy had before a change of window
// shape and the instants they stopped applying. Plan records a shape change
// there and carries the history over to every later file that leaves it out;
// the store appends it to the file as written, below a marker comment.
package policystore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/windows"
)

// ErrNotFound is returned for a policy that is not in the store.
var ErrNotFound = errors.New("policy not found")

// Store reads and writes policies.
type Store struct {
	kv    jetstream.KeyValue
	floor ShapeFloor
}

// New returns a store over the policies bucket.
func New(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// ShapeFloor returns the earliest instant from which a new window shape may
// apply to a stored policy: no window of its current shapes that may hold
// events (stored windows, the windows of the watermark and of now) ends
// later. Plan calls it for a change of window shape and switches shapes at
// the first instant from the floor on that splits no window
// (windows.Policy.SwitchInstant).
type ShapeFloor func(ctx context.Context, cur *windows.Policy) (time.Time, error)

// SetShapeFloor installs f; call it before the store is used concurrently.
// Without one, Plan refuses changes of window shape.
func (s *Store) SetShapeFloor(f ShapeFloor) { s.floor = f }

// ErrConflict is returned when a policy changed in the store between the
// read a change was planned on and the write: the write is refused rather
// than overwriting a version its author has not seen.
var ErrConflict = errors.New("policy changed in the store since it was read")

// ErrVersionNotFound is returned for a version that is not in a policy's
// history (never one of its versions, or older than the bucket keeps).
var ErrVersionNotFound = errors.New("policy version not found")

// applyAttempts bounds Apply's retries when concurrent writers conflict;
// between attempts it waits a random while, longer each time.
const applyAttempts = 50

// Apply validates the policy file and stores it. It returns the parsed
// policy with its new version; a file whose canonical form (Canonical)
// equals the stored one keeps its version and writes nothing, so comments
// and key order alone are no change.
//
// Apply writes with compare-and-set on the revision it read and, when
// another writer got in between, plans again against the new version: the
// last Apply wins, and none writes over a version it did not read. Use Plan
// and Commit to refuse such a write instead.
func (s *Store) Apply(ctx context.Context, filename string, data []byte) (*windows.Policy, error) {
	p, err := windows.ParsePolicy(filename, data)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		plan, err := s.Plan(ctx, p, data)
		if err != nil {
			return nil, InFile(err, filename)
		}
		stored, err := s.Commit(ctx, plan)
		if errors.Is(err, ErrConflict) && attempt < applyAttempts {
			select {
			case <-ctx.Done():
				return nil, errors.Join(err, ctx.Err())
			case <-time.After(rand.N(time.Duration(min(attempt, 20)) * 5 * time.Millisecond)):
			}
			continue
		}
		return stored, err
	}
}

// Get returns the current version of a policy.
func (s *Store) Get(ctx context.Context, name string) (*windows.Policy, error) {
	e, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get policy %s: %w", name, err)
	}
	return decode(e)
}

func decode(e jetstream.KeyValueEntry) (*windows.Policy, error) {
	p, err := windows.ParsePolicy("kv:"+e.Key(), e.Value())
	if err != nil {
		return nil, fmt.Errorf("stored policy %s (revision %d): %w", e.Key(), e.Revision(), err)
	}
	p.Version = e.Revision()
	return p, nil
}

// List returns every current policy, sorted by name.
func (s *Store) List(ctx context.Context) ([]*windows.Policy, error) {
	keys, err := natsx.ListKeys(ctx, s.kv, ">")
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	var out []*windows.Policy
	for _, k := range keys {
		p, err := s.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes a policy whatever its current version. It places a
// deletion marker and keeps the history (see History, At); DeleteVersion
// deletes only the version it was given.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete policy %s: %w", name, err)
	}
	return nil
}

// Change is one update seen by Watch: a new or changed policy, or a deletion
// (Policy nil, Name set).
type Change struct {
	Name   string
	Policy *windows.Policy
	Err    error // the stored file no longer parses
}

// Watch sends the current policies and then every change until ctx is done.
func (s *Store) Watch(ctx context.Context) (<-chan Change, error) {
	w, err := natsx.Watch(ctx, s.kv, []string{">"})
	if err != nil {
		return nil, fmt.Errorf("watch policies: %w", err)
	}
	out := make(chan Change)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue // end of the initial values
				}
				c := Change{Name: e.Key()}
				if e.Operation() == jetstream.KeyValuePut {
					c.Policy, c.Err = decode(e)
				}
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
