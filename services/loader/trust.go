package loader

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/loads"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// PolicyVersions reads stored policy versions; *policystore.Store is one.
// A load command is checked against the version it names (At) and, when it
// carries settings of a later version, against the later ones (History).
type PolicyVersions interface {
	At(ctx context.Context, name string, version uint64) (*policystore.Entry, error)
	History(ctx context.Context, name string) ([]*policystore.Entry, error)
}

var _ PolicyVersions = (*policystore.Store)(nil)

// maxCachedVersions bounds the version cache; it is emptied when full.
const maxCachedVersions = 1024

type versionKey struct {
	name    string
	version uint64
}

// versionCache keeps the stored policy versions the loader has read. A
// stored version never changes (it is a KV revision), so an entry is never
// stale and steady-state verification reads no KV.
type versionCache struct {
	src PolicyVersions
	mu  sync.Mutex
	m   map[versionKey]*windows.Policy
}

func newVersionCache(src PolicyVersions) *versionCache {
	return &versionCache{src: src, m: map[versionKey]*windows.Policy{}}
}

func (c *versionCache) put(p *windows.Policy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedVersions {
		clear(c.m)
	}
	c.m[versionKey{p.Name, p.Version}] = p
}

// at returns the stored version of a policy, from the cache or the store.
// A version that is not stored (or is the policy's deletion, or no longer
// parses) wraps ErrUnknownPolicy; a store failure is transient.
func (c *versionCache) at(ctx context.Context, name string, version uint64) (*windows.Policy, error) {
	c.mu.Lock()
	p := c.m[versionKey{name, version}]
	c.mu.Unlock()
	if p != nil {
		return p, nil
	}
	e, err := c.src.At(ctx, name, version)
	if err != nil {
		return nil, storeErr(ctx, name, err)
	}
	p, err = usable(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownPolicy, err)
	}
	c.put(p)
	return p, nil
}

// cachedAfter returns the cached versions of a policy later than version,
// oldest first.
func (c *versionCache) cachedAfter(name string, version uint64) []*windows.Policy {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*windows.Policy
	for k, p := range c.m {
		if k.name == name && k.version > version {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *windows.Policy) int { return cmp.Compare(a.Version, b.Version) })
	return out
}

// after returns the stored versions of a policy later than version, oldest
// first (deletions and unparsable versions left out), and caches them.
func (c *versionCache) after(ctx context.Context, name string, version uint64) ([]*windows.Policy, error) {
	hist, err := c.src.History(ctx, name)
	if err != nil {
		return nil, storeErr(ctx, name, err)
	}
	var out []*windows.Policy
	for _, e := range hist {
		if e.Version <= version {
			continue
		}
		if p, err := usable(e); err == nil {
			c.put(p)
			out = append(out, p)
		}
	}
	return out, nil
}

// usable is the policy of a stored version, with its version set.
func usable(e *policystore.Entry) (*windows.Policy, error) {
	switch {
	case e.Deleted:
		return nil, fmt.Errorf("%s v%d is the deletion of the policy", e.Name, e.Version)
	case e.Err != nil:
		return nil, fmt.Errorf("%s v%d: stored file no longer parses: %w", e.Name, e.Version, e.Err)
	case e.Policy == nil:
		return nil, fmt.Errorf("%s v%d: no policy", e.Name, e.Version)
	}
	p := *e.Policy
	p.Version = e.Version
	return &p, nil
}

// storeErr classifies an error of the policy store: an unknown policy or
// version is permanent, anything else transient (unless ctx ended).
func storeErr(ctx context.Context, name string, err error) error {
	switch {
	case errors.Is(err, policystore.ErrNotFound), errors.Is(err, policystore.ErrVersionNotFound):
		return fmt.Errorf("%w: %w", ErrUnknownPolicy, err)
	case ctx.Err() != nil:
		return fmt.Errorf("read policy %s: %w", name, err)
	}
	return fmt.Errorf("read policy %s: %w: %w", name, ErrTransient, err)
}

// trusted is what a load takes from stored policy versions rather than from
// the command: where the rows go, how, and which files.
type trusted struct {
	table, mode, timeColumn string
	mergeKey, postLoad      []string
	columns                 []messages.Column
	objects                 []string
}

// authorize checks a decoded command against the policy store and returns
// what to load. The command must name a stored version of its policy; its
// table, load mode, merge key, time column and post-load statements must be
// those of that version, and so must its columns — or, for each of the two
// groups, those of a later stored version: the compactor publishes a
// window's commands with the version the window was opened under, the load
// settings of the policy running then and the columns of the version that
// compacted it (the manifest's), which differ when the policy changed while
// the window was open. Every batch file must have a SHA-256 and lie under
// the policy's batch prefix of the command's window and revision. Failures
// are permanent (ErrUnknownPolicy, ErrPolicyMismatch, ErrChecksumMissing,
// ErrForeignObject), except a failing policy store (transient).
func (s *Service) authorize(ctx context.Context, cmd *messages.LoadCommand, refs []messages.BatchRef) (*trusted, error) {
	named, err := s.versions.at(ctx, cmd.Policy, cmd.PolicyVersion)
	if err != nil {
		return nil, fmt.Errorf("policy %s v%d: %w", cmd.Policy, cmd.PolicyVersion, err)
	}
	for _, ref := range refs {
		if ref.SHA256 == "" {
			return nil, fmt.Errorf("batch %s (%s): %w", ref.BatchID, ref.Object, ErrChecksumMissing)
		}
	}
	t, err := match(cmd, refs, []*windows.Policy{named})
	if err == nil {
		return t, nil
	}
	// Maybe a later version's settings (a policy changed while the window
	// was open): rare, so the history is read only when the versions cached
	// do not match either.
	if t, lerr := match(cmd, refs, append([]*windows.Policy{named}, s.versions.cachedAfter(cmd.Policy, cmd.PolicyVersion)...)); lerr == nil {
		return t, nil
	}
	later, lerr := s.versions.after(ctx, cmd.Policy, cmd.PolicyVersion)
	if lerr != nil {
		return nil, lerr
	}
	if len(later) == 0 {
		return nil, err
	}
	if t, lerr := match(cmd, refs, append([]*windows.Policy{named}, later...)); lerr == nil {
		return t, nil
	}
	return nil, err // the named version's disagreement is the clearer reason
}

// match builds the trusted load of cmd from the first candidate version
// whose load settings it carries, the first whose columns it carries and
// the first whose batch prefix holds its files; an error names what the
// first candidate disagrees with.
func match(cmd *messages.LoadCommand, refs []messages.BatchRef, cands []*windows.Policy) (*trusted, error) {
	t := &trusted{}
	var errs []error
	if i := slices.IndexFunc(cands, func(p *windows.Policy) bool { return loadSettings(cmd, p) == nil }); i >= 0 {
		p := cands[i]
		t.table, t.mode, t.mergeKey, t.postLoad, t.timeColumn = p.Load.Table, string(p.Load.Mode), p.Load.MergeKey, p.Load.PostLoad, timeColumn(p)
	} else {
		errs = append(errs, loadSettings(cmd, cands[0]))
	}
	if i := slices.IndexFunc(cands, func(p *windows.Policy) bool { return slices.Equal(cmd.Columns, records.Columns(p)) }); i >= 0 {
		t.columns = records.Columns(cands[i])
	} else {
		errs = append(errs, fmt.Errorf("%w: columns %s, v%d has %s", ErrPolicyMismatch, colList(cmd.Columns), cands[0].Version, colList(records.Columns(cands[0]))))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	objects, err := inPrefix(cmd, refs, cands)
	if err != nil {
		return nil, err
	}
	t.objects = objects
	return t, nil
}

// manifestBatches reads the batches of a whole-window load from the
// manifest it names: the manifest must lie under the policy's batch prefix
// (checked like a batch file) and describe the command's run — its window,
// revision, number of batches and rows. A missing manifest wraps
// ErrFileMissing and one that disagrees ErrPolicyMismatch (permanent);
// other read errors are transient.
func (s *Service) manifestBatches(ctx context.Context, cmd *messages.LoadCommand) ([]messages.BatchRef, error) {
	// The manifest has no checksum of its own: the batches it lists do,
	// and each is verified before it is loaded.
	if _, err := s.authorize(ctx, cmd, []messages.BatchRef{{BatchID: "manifest", Object: cmd.Manifest, SHA256: "-"}}); err != nil {
		return nil, err
	}
	m, err := loads.ReadManifest(ctx, s.cfg.Objects, cmd.Manifest)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return nil, fmt.Errorf("%w: %w", ErrFileMissing, err)
	case err != nil && errors.Is(err, messages.ErrInvalid):
		return nil, fmt.Errorf("%w: %w", ErrPolicyMismatch, err)
	case err != nil && ctx.Err() == nil:
		return nil, fmt.Errorf("%w: %w", ErrTransient, err)
	case err != nil:
		return nil, err
	}
	var rows int64
	for _, b := range m.Batches {
		rows += b.Rows
	}
	if m.Policy != cmd.Policy || !m.WindowStart.Equal(cmd.WindowStart) || m.Revision != cmd.Revision || len(m.Batches) != cmd.Parts || rows != cmd.Rows {
		return nil, fmt.Errorf("%w: manifest %s is of %s window %s revision %d with %d batches of %d rows; the command loads %s %s revision %d, %d batches of %d rows",
			ErrPolicyMismatch, cmd.Manifest, m.Policy, messages.WindowID(m.WindowStart), m.Revision, len(m.Batches), rows,
			cmd.Policy, messages.WindowID(cmd.WindowStart), cmd.Revision, cmd.Parts, cmd.Rows)
	}
	return m.Batches, nil
}

// timeColumn is the time column a merge load of p orders by; "" otherwise.
func timeColumn(p *windows.Policy) string {
	if p.Load.Mode != windows.LoadMerge {
		return ""
	}
	return records.TimeColumn(p)
}

// loadSettings reports the first load setting of cmd that differs from p's.
func loadSettings(cmd *messages.LoadCommand, p *windows.Policy) error {
	wholeWindow := p.Load.Mode != windows.LoadAppend
	switch {
	case cmd.Table != p.Load.Table:
		return fmt.Errorf("%w: table %q, v%d loads into %q", ErrPolicyMismatch, cmd.Table, p.Version, p.Load.Table)
	case cmd.Mode != string(p.Load.Mode):
		return fmt.Errorf("%w: mode %q, v%d loads in mode %q", ErrPolicyMismatch, cmd.Mode, p.Version, p.Load.Mode)
	case cmd.WholeWindow() != wholeWindow:
		return fmt.Errorf("%w: whole-window load %v, v%d's mode %q wants %v", ErrPolicyMismatch, cmd.WholeWindow(), p.Version, p.Load.Mode, wholeWindow)
	case !slices.Equal(cmd.MergeKey, p.Load.MergeKey):
		return fmt.Errorf("%w: merge key %v, v%d's is %v", ErrPolicyMismatch, cmd.MergeKey, p.Version, p.Load.MergeKey)
	case cmd.TimeColumn != timeColumn(p):
		return fmt.Errorf("%w: time column %q, v%d's is %q", ErrPolicyMismatch, cmd.TimeColumn, p.Version, timeColumn(p))
	case !slices.Equal(cmd.PostLoad, p.Load.PostLoad):
		return fmt.Errorf("%w: post-load statements differ from v%d's", ErrPolicyMismatch, p.Version)
	}
	return nil
}

func colList(cols []messages.Column) string {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = c.Name + " " + c.Type
		if c.Required {
			s[i] += " required"
		}
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// inPrefix returns the keys of refs if every one is a clean key under the
// batch prefix (loads.BatchPrefix) of cmd's policy, window and revision.
// The prefix's date is the window start's date in the policy's time zone,
// which a change of window shape may have changed: every time zone of the
// candidates and of their window histories is accepted.
func inPrefix(cmd *messages.LoadCommand, refs []messages.BatchRef, cands []*windows.Policy) ([]string, error) {
	var prefixes []string
	add := func(loc *time.Location) {
		if pre := loads.BatchPrefix(cmd.Policy, loc, cmd.WindowStart, cmd.Revision) + "/"; !slices.Contains(prefixes, pre) {
			prefixes = append(prefixes, pre)
		}
	}
	for _, p := range cands {
		add(p.Location())
		for _, h := range p.WindowHistory {
			if loc, err := time.LoadLocation(h.Timezone); err == nil {
				add(loc)
			}
		}
	}
	objects := make([]string, len(refs))
	for i, ref := range refs {
		key := ref.Object
		ok := path.Clean(key) == key && !slices.Contains(strings.Split(key, "/"), "..") &&
			slices.ContainsFunc(prefixes, func(pre string) bool { return strings.HasPrefix(key, pre) })
		if !ok {
			return nil, fmt.Errorf("batch %s: %w: %q is not under %s", ref.BatchID, ErrForeignObject, key, prefixes[0])
		}
		objects[i] = key
	}
	return objects, nil
}
