package policystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/windrow/windrow/windows"
)

// Entry is one stored version of a policy: a value of its key, or the
// deletion of the key.
type Entry struct {
	Name    string
	Version uint64    // the KV revision
	Stored  time.Time // when the server stored it
	Deleted bool      // the key was deleted at this revision; Data and Policy are empty
	Data    []byte    // the policy file as it was applied
	// Policy is the parsed file; nil when Deleted or when the stored file
	// no longer parses, which Err then says.
	Policy *windows.Policy
	Err    error
}

func entryOf(e jetstream.KeyValueEntry) *Entry {
	en := &Entry{Name: e.Key(), Version: e.Revision(), Stored: e.Created()}
	if e.Operation() != jetstream.KeyValuePut {
		en.Deleted = true
		return en
	}
	en.Data = e.Value()
	en.Policy, en.Err = decode(e)
	return en
}

// Canonical is the normalised form of a parsed policy: the YAML of the
// defaulted Policy, keys in a fixed order, without comments. Two files with
// the same canonical form configure the same policy.
func Canonical(p *windows.Policy) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("policy %s: canonical form: %w", p.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("policy %s: canonical form: %w", p.Name, err)
	}
	return b.Bytes(), nil
}

// Current returns the current version of a policy, also when its stored
// file no longer parses (Entry.Err). A deleted policy is ErrNotFound.
func (s *Store) Current(ctx context.Context, name string) (*Entry, error) {
	e, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get policy %s: %w", name, err)
	}
	return entryOf(e), nil
}

// History returns the versions of a policy the bucket still holds, oldest
// first, deletions included. A policy without any is ErrNotFound.
func (s *Store) History(ctx context.Context, name string) ([]*Entry, error) {
	es, err := s.kv.History(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("history of policy %s: %w", name, err)
	}
	out := make([]*Entry, 0, len(es))
	for _, e := range es {
		out = append(out, entryOf(e))
	}
	return out, nil
}

// At returns one version of a policy from its history; the deletion of the
// policy is a version too (Entry.Deleted). A version the history does not
// hold is ErrVersionNotFound, naming the versions it holds.
func (s *Store) At(ctx context.Context, name string, version uint64) (*Entry, error) {
	hist, err := s.History(ctx, name)
	if err != nil {
		return nil, err
	}
	kept := make([]string, 0, len(hist))
	for _, e := range hist {
		if e.Version == version {
			return e, nil
		}
		if !e.Deleted {
			kept = append(kept, fmt.Sprintf("v%d", e.Version))
		}
	}
	return nil, fmt.Errorf("%w: %s has no version %d (the history holds %s)", ErrVersionNotFound, name, version, strings.Join(kept, ", "))
}

// Entries returns the current version of every stored policy, sorted by
// name; unlike List, a stored file that no longer parses is returned (with
// Entry.Err) rather than failing the whole list.
func (s *Store) Entries(ctx context.Context) ([]*Entry, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var out []*Entry
	for _, k := range keys {
		e, err := s.Current(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Plan is a policy file compared with the stored version of its policy:
// what Commit will store, and against which version.
type Plan struct {
	Policy *windows.Policy // the parsed file; Commit sets its Version
	Data   []byte          // the file as written, which Commit stores
	// Current is the stored version the plan was made against; nil when the
	// policy is not stored (never applied, or deleted).
	Current *Entry
	// Old and New are the canonical forms of the stored and the new policy.
	// Old is empty without Current, and is the stored file as written when
	// that no longer parses.
	Old, New []byte
	// Changed: the canonical forms differ (or nothing is stored, or the
	// stored file no longer parses).
	Changed bool
}

// Plan compares a parsed policy file (windows.ParsePolicy) with the stored
// version of its policy. It stores nothing.
func (s *Store) Plan(ctx context.Context, p *windows.Policy, data []byte) (*Plan, error) {
	// Valid but not run by this version: storing it would run it as
	// something else or stop its workers.
	if err := p.NotRunYet(""); err != nil {
		return nil, err
	}
	canon, err := Canonical(p)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Policy: p, Data: data, New: canon, Changed: true}
	cur, err := s.Current(ctx, p.Name)
	if errors.Is(err, ErrNotFound) {
		return plan, nil
	}
	if err != nil {
		return nil, err
	}
	plan.Current = cur
	if cur.Err != nil {
		plan.Old = cur.Data
		return plan, nil
	}
	if plan.Old, err = Canonical(cur.Policy); err != nil {
		return nil, err
	}
	plan.Changed = !bytes.Equal(plan.Old, plan.New)
	if plan.Changed && s.guard != nil {
		if err := s.guard(ctx, cur.Policy, p); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// Commit stores a changed plan with compare-and-set on the version it was
// made against; when the policy changed in the store since (a new version,
// a deletion, a first version), it stores nothing and returns an error
// matching ErrConflict that names both versions. An unchanged plan stores
// nothing and keeps the current version. It returns the plan's policy with
// its version set.
func (s *Store) Commit(ctx context.Context, plan *Plan) (*windows.Policy, error) {
	p := plan.Policy
	if !plan.Changed {
		p.Version = plan.Current.Version
		return p, nil
	}
	var rev uint64
	var err error
	if plan.Current == nil {
		rev, err = s.kv.Create(ctx, p.Name, plan.Data)
	} else {
		rev, err = s.kv.Update(ctx, p.Name, plan.Data, plan.Current.Version)
	}
	if isConflict(err) {
		return nil, s.conflict(ctx, p.Name, plan.Current)
	}
	if err != nil {
		return nil, fmt.Errorf("store policy %s: %w", p.Name, err)
	}
	p.Version = rev
	return p, nil
}

// DeleteVersion deletes a policy if its current version is still version:
// it places a deletion marker and keeps the history, so older versions stay
// readable with At. A policy that changed since is ErrConflict.
func (s *Store) DeleteVersion(ctx context.Context, name string, version uint64) error {
	err := s.kv.Delete(ctx, name, jetstream.LastRevision(version))
	if isConflict(err) {
		return s.conflict(ctx, name, &Entry{Name: name, Version: version})
	}
	if err != nil {
		return fmt.Errorf("delete policy %s: %w", name, err)
	}
	return nil
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// conflict describes a refused compare-and-set: what was read, what is there now.
func (s *Store) conflict(ctx context.Context, name string, read *Entry) error {
	was := "not stored"
	if read != nil {
		was = fmt.Sprintf("v%d", read.Version)
	}
	now := "unknown"
	if cur, err := s.Current(ctx, name); err == nil {
		now = fmt.Sprintf("v%d", cur.Version)
	} else if errors.Is(err, ErrNotFound) {
		now = "deleted"
	}
	return fmt.Errorf("%w: %s was %s when read and is %s now", ErrConflict, name, was, now)
}
