package policystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/windrow/windrow/adapters/natsx"
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
	keys, err := natsx.ListKeys(ctx, s.kv, ">")
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
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
	// Policy is the parsed file with the stored window_history carried over
	// (and a shape change recorded in it); Commit sets its Version.
	Policy *windows.Policy
	// Data is what Commit stores: the file as written, with the window
	// history appended when the policy has one (see StoredData).
	Data []byte
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
	// Switch is the change of window shape the plan records, nil without one.
	Switch *ShapeSwitch
}

// ShapeSwitch is a change of window shape and the instant it applies from.
type ShapeSwitch struct {
	Change string            // as windows.ShapeChange: "window.size 1h0m0s → 2h0m0s"
	At     time.Time         // the switch instant (UTC): events from it on get the new shape
	Old    windows.PastShape // the shape before At, as recorded in window_history
}

// String renders the switch for people: "window.size 1h0m0s → 2h0m0s
// applies from 2026-11-27T00:00:00Z; windows before that keep 1h0m0s
// tumbling windows in UTC".
func (s *ShapeSwitch) String() string {
	old := fmt.Sprintf("%s %s windows", s.Old.Size, s.Old.Kind)
	if s.Old.Kind == windows.Hopping {
		old = fmt.Sprintf("%s hopping windows sliding by %s", s.Old.Size, s.Old.Slide)
	}
	return fmt.Sprintf("%s applies from %s; windows before that keep %s in %s", s.Change, s.At.UTC().Format(time.RFC3339), old, s.Old.Timezone)
}

// Plan compares a parsed policy file (windows.ParsePolicy) with the stored
// version of its policy. It stores nothing, and leaves p as it is.
//
// The stored window_history is carried over to a file that leaves it out; a
// file that has one must have the stored one. A change of window shape is
// recorded in the history: it applies from the first instant at or after the
// store's ShapeFloor that ends a window of the old shape and starts one of
// the new shape (Plan.Switch). A change that cannot be switched without
// splitting a window is refused with an error naming the field.
func (s *Store) Plan(ctx context.Context, p *windows.Policy, data []byte) (*Plan, error) {
	// Valid but not run by this version: storing it would run it as
	// something else or stop its workers.
	if err := p.NotRunYet(""); err != nil {
		return nil, err
	}
	q := *p
	q.WindowHistory = slices.Clone(p.WindowHistory)
	plan := &Plan{Policy: &q, Changed: true}
	cur, err := s.Current(ctx, p.Name)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, err
	default:
		plan.Current = cur
		if cur.Err != nil {
			plan.Old = cur.Data
			break
		}
		if plan.Old, err = Canonical(cur.Policy); err != nil {
			return nil, err
		}
		if err := s.shapeHistory(ctx, plan, cur.Policy); err != nil {
			return nil, err
		}
	}
	if plan.New, err = Canonical(plan.Policy); err != nil {
		return nil, err
	}
	if plan.Current != nil && plan.Current.Err == nil {
		plan.Changed = !bytes.Equal(plan.Old, plan.New)
	}
	if plan.Data, err = StoredData(data, plan.Policy); err != nil {
		return nil, err
	}
	return plan, nil
}

// shapeHistory carries the stored window history over to the plan's policy
// and records a change of window shape in it.
func (s *Store) shapeHistory(ctx context.Context, plan *Plan, cur *windows.Policy) error {
	p := plan.Policy
	switch {
	case len(p.WindowHistory) == 0:
		p.WindowHistory = slices.Clone(cur.WindowHistory)
	case !slices.Equal(p.WindowHistory, cur.WindowHistory):
		return &windows.FieldError{Field: "window_history", Msg: fmt.Sprintf("differs from the stored policy's (%d entries): windrow writes it when the window shape changes; leave it out of the file", len(cur.WindowHistory))}
	}
	change := windows.ShapeChange(cur.Window, p.Window)
	if change == "" {
		return nil
	}
	if s.floor == nil {
		return fmt.Errorf("policy %s: %s: this store cannot tell when windows of the old shape end (no ShapeFloor)", p.Name, change)
	}
	floor, err := s.floor(ctx, cur)
	if err != nil {
		return fmt.Errorf("policy %s: %s: find the windows of the old shape: %w", p.Name, change, err)
	}
	at, err := cur.SwitchInstant(p.Window, floor)
	var fe *windows.FieldError
	if errors.As(err, &fe) {
		// "window.size: 1h0m0s → 7m0s: no instant …", the file named by InFile.
		return &windows.FieldError{Field: fe.Field, Msg: strings.TrimPrefix(change, fe.Field+" ") + ": " + fe.Msg}
	}
	if err != nil {
		return fmt.Errorf("policy %s: %s: %w", p.Name, change, err)
	}
	old := cur.Window.PastShape(at)
	p.WindowHistory = append(p.WindowHistory, old)
	if err := p.Validate(); err != nil {
		return fmt.Errorf("policy %s: %s from %s: %w", p.Name, change, at.Format(time.RFC3339), err)
	}
	plan.Switch = &ShapeSwitch{Change: change, At: at, Old: old}
	return nil
}

// historyMarker starts the window history the store appends to a file.
const historyMarker = "# window_history: written by windrow when the window shape changed (see docs/policy.md); keep it\n"

// StoredData returns what the store keeps for a policy file: the file as
// written when the policy has no window history, and otherwise the file
// (without a history block it carries) followed by the history, below
// historyMarker. When that text would not read back as p (a file that
// writes window_history elsewhere, or does not end in block style), it is p's
// canonical form instead.
func StoredData(data []byte, p *windows.Policy) ([]byte, error) {
	if len(p.WindowHistory) == 0 {
		return data, nil
	}
	var b bytes.Buffer
	user, _, _ := bytes.Cut(data, []byte(historyMarker))
	b.Write(user)
	if len(user) > 0 && user[len(user)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString(historyMarker)
	b.WriteString("window_history:\n")
	for _, h := range p.WindowHistory {
		fmt.Fprintf(&b, "  - {until: %s, kind: %s, size: %s", h.Until.UTC().Format(time.RFC3339Nano), h.Kind, h.Size)
		if h.Slide != 0 {
			fmt.Fprintf(&b, ", slide: %s", h.Slide)
		}
		fmt.Fprintf(&b, ", timezone: %q}\n", h.Timezone)
	}
	want, err := Canonical(p)
	if err != nil {
		return nil, err
	}
	if back, err := windows.ParsePolicy("", b.Bytes()); err == nil {
		if got, err := Canonical(back); err == nil && bytes.Equal(got, want) {
			return b.Bytes(), nil
		}
	}
	return want, nil
}

// InFile names file in the *windows.FieldError that err holds, if any and
// it names no file yet, so that a refused change names the policy file.
func InFile(err error, file string) error {
	var fe *windows.FieldError
	if errors.As(err, &fe) && fe.File == "" {
		fe.File = file
	}
	return err
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
