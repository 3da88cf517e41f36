package policystore_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/windows"
)

const salesPath = "../../deploy/policies/daily_store_sales.yaml"

// salesPolicy returns the deployed daily_store_sales policy file.
func salesPolicy(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(salesPath)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// edit returns data with old replaced by new, which must occur in it.
func edit(t *testing.T, data []byte, old, new string) []byte {
	t.Helper()
	if !strings.Contains(string(data), old) {
		t.Fatalf("policy file does not contain %q", old)
	}
	return []byte(strings.Replace(string(data), old, new, 1))
}

// revision is the KV revision of a policy's key.
func revision(t *testing.T, kv jetstream.KeyValue, name string) uint64 {
	t.Helper()
	e, err := kv.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("kv get %s: %v", name, err)
	}
	return e.Revision()
}

// stored counts the values ever stored in the bucket, history included.
func stored(t *testing.T, kv jetstream.KeyValue) uint64 {
	t.Helper()
	st, err := kv.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Values()
}

func TestApplyVersionsByRevision(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	s := policystore.New(kv)
	data := salesPolicy(t)

	p1, err := s.Apply(ctx, salesPath, data)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if p1.Name != "daily_store_sales" {
		t.Fatalf("Apply returned policy %q", p1.Name)
	}
	if rev := revision(t, kv, p1.Name); p1.Version == 0 || p1.Version != rev {
		t.Fatalf("version = %d, want the KV revision %d", p1.Version, rev)
	}
	if cur, err := kv.Get(ctx, p1.Name); err != nil || string(cur.Value()) != string(data) {
		t.Fatal("the stored value is not the file as written")
	}

	// The identical file keeps its version and writes nothing.
	again, err := s.Apply(ctx, salesPath, data)
	if err != nil {
		t.Fatalf("Apply identical: %v", err)
	}
	if again.Version != p1.Version || stored(t, kv) != 1 {
		t.Fatalf("identical Apply: version %d → %d, %d values stored; want the same version and 1 value",
			p1.Version, again.Version, stored(t, kv))
	}

	// A changed file bumps it, to the new revision.
	changed := edit(t, data, "max_rows: 50000", "max_rows: 40000")
	p2, err := s.Apply(ctx, salesPath, changed)
	if err != nil {
		t.Fatalf("Apply changed: %v", err)
	}
	if p2.Version <= p1.Version || p2.Version != revision(t, kv, p2.Name) {
		t.Fatalf("changed Apply: version %d → %d (revision %d), want a bump to the revision", p1.Version, p2.Version, revision(t, kv, p2.Name))
	}
	if p2.Segment.MaxRows != 40000 {
		t.Errorf("changed Apply parsed max_rows %d, want 40000", p2.Segment.MaxRows)
	}
	got, err := s.Get(ctx, "daily_store_sales")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Version != p2.Version || got.Segment.MaxRows != 40000 {
		t.Fatalf("Get = version %d max_rows %d, want version %d max_rows 40000", got.Version, got.Segment.MaxRows, p2.Version)
	}

	// Going back to the first file is a change too: a new version, not the old one.
	p3, err := s.Apply(ctx, salesPath, data)
	if err != nil {
		t.Fatalf("Apply original again: %v", err)
	}
	if p3.Version <= p2.Version {
		t.Fatalf("re-applying the first file after a change: version %d, want > %d", p3.Version, p2.Version)
	}
}

func TestApplyRejectsInvalidPolicies(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	s := policystore.New(kv)
	valid := salesPolicy(t)

	tests := []struct {
		name    string
		data    []byte
		wantErr error
	}{
		{"empty", nil, windows.ErrInvalidPolicy},
		{"not YAML", []byte("name: [daily_store_sales\nsource: {"), windows.ErrInvalidPolicy},
		{"not a mapping", []byte("- a\n- b\n"), windows.ErrInvalidPolicy},
		{"YAML but no policy", []byte("name: x\n"), windows.ErrInvalidPolicy},
		{"bad window size", edit(t, valid, "size: 24h", "size: banana"), windows.ErrInvalidPolicy},
		{"bad name", edit(t, valid, "name: daily_store_sales", "name: Daily.Store"), windows.ErrInvalidPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Apply(ctx, "bad.yaml", tt.data)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Apply: err = %v, want %v", err, tt.wantErr)
			}
			if p != nil {
				t.Errorf("Apply returned a policy with an error: %+v", p)
			}
			if !strings.Contains(err.Error(), "bad.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
			if n := stored(t, kv); n != 0 {
				t.Fatalf("%d values stored after a rejected Apply, want 0", n)
			}
		})
	}

	// A bad edit of a stored policy leaves the stored version in place.
	p, err := s.Apply(ctx, salesPath, valid)
	if err != nil {
		t.Fatalf("Apply valid: %v", err)
	}
	if _, err := s.Apply(ctx, salesPath, edit(t, valid, "size: 24h", "size: -1h")); !errors.Is(err, windows.ErrInvalidPolicy) {
		t.Fatalf("Apply of a bad edit: err = %v, want ErrInvalidPolicy", err)
	}
	got, err := s.Get(ctx, p.Name)
	if err != nil || got.Version != p.Version {
		t.Fatalf("Get after a rejected edit = %v, %v; want version %d", got, err, p.Version)
	}
}

func TestGetListDelete(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	s := policystore.New(kv)

	if _, err := s.Get(ctx, "daily_store_sales"); !errors.Is(err, policystore.ErrNotFound) {
		t.Fatalf("Get of a missing policy: err = %v, want ErrNotFound", err)
	}
	if ps, err := s.List(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("List of an empty store = %v, %v; want none", ps, err)
	}

	sales, err := s.Apply(ctx, salesPath, salesPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Apply(ctx, "a.yaml", edit(t, salesPolicy(t), "name: daily_store_sales", "name: a_policy"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(ps) != 2 || ps[0].Name != "a_policy" || ps[1].Name != "daily_store_sales" {
		t.Fatalf("List = %v, want [a_policy daily_store_sales] sorted by name", names(ps))
	}
	if ps[0].Version != other.Version || ps[1].Version != sales.Version {
		t.Fatalf("List versions = %d, %d; want %d, %d", ps[0].Version, ps[1].Version, other.Version, sales.Version)
	}

	if err := s.Delete(ctx, "daily_store_sales"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "daily_store_sales"); !errors.Is(err, policystore.ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if ps, err := s.List(ctx); err != nil || len(ps) != 1 || ps[0].Name != "a_policy" {
		t.Fatalf("List after Delete = %v, %v; want [a_policy]", names(ps), err)
	}

	// Re-applying the same file after a delete stores it again.
	back, err := s.Apply(ctx, salesPath, salesPolicy(t))
	if err != nil {
		t.Fatalf("Apply after Delete: %v", err)
	}
	if back.Version <= sales.Version {
		t.Fatalf("Apply after Delete: version %d, want > %d", back.Version, sales.Version)
	}
	if got, err := s.Get(ctx, "daily_store_sales"); err != nil || got.Version != back.Version {
		t.Fatalf("Get after re-Apply = %v, %v; want version %d", got, err, back.Version)
	}
}

func TestGetStoredPolicyThatNoLongerParses(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	if _, err := kv.Put(ctx, "broken", []byte("name: broken\n")); err != nil {
		t.Fatal(err)
	}
	_, err := policystore.New(kv).Get(ctx, "broken")
	if !errors.Is(err, windows.ErrInvalidPolicy) {
		t.Fatalf("Get of an unparsable stored policy: err = %v, want ErrInvalidPolicy", err)
	}
}

func names(ps []*windows.Policy) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// next receives one change, failing the test if none comes in time.
func next(t *testing.T, ch <-chan policystore.Change) policystore.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change from Watch within 10s")
	}
	return policystore.Change{}
}

func TestWatch(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	s := policystore.New(kv)
	data := salesPolicy(t)
	v1, err := s.Apply(ctx, salesPath, data)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Apply(ctx, "a.yaml", edit(t, data, "name: daily_store_sales", "name: a_policy"))
	if err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.Watch(wctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}

	// The existing policies first.
	initial := map[string]uint64{}
	for range 2 {
		c := next(t, ch)
		if c.Policy == nil || c.Err != nil || c.Policy.Name != c.Name {
			t.Fatalf("initial change = %+v, want a policy", c)
		}
		initial[c.Name] = c.Policy.Version
	}
	if initial["daily_store_sales"] != v1.Version || initial["a_policy"] != other.Version {
		t.Fatalf("initial versions = %v, want daily_store_sales %d and a_policy %d", initial, v1.Version, other.Version)
	}

	// Then a change.
	v2, err := s.Apply(ctx, salesPath, edit(t, data, "max_rows: 50000", "max_rows: 40000"))
	if err != nil {
		t.Fatal(err)
	}
	c := next(t, ch)
	if c.Name != "daily_store_sales" || c.Policy == nil || c.Policy.Version != v2.Version || c.Policy.Segment.MaxRows != 40000 {
		t.Fatalf("change = %+v, want daily_store_sales version %d", c, v2.Version)
	}

	// Then a deletion.
	if err := s.Delete(ctx, "daily_store_sales"); err != nil {
		t.Fatal(err)
	}
	c = next(t, ch)
	if c.Name != "daily_store_sales" || c.Policy != nil || c.Err != nil {
		t.Fatalf("deletion = %+v, want Name daily_store_sales, Policy nil, Err nil", c)
	}

	// A stored file that does not parse is reported, not dropped.
	if _, err := kv.Put(ctx, "broken", []byte("name: broken\n")); err != nil {
		t.Fatal(err)
	}
	c = next(t, ch)
	if c.Name != "broken" || c.Policy != nil || !errors.Is(c.Err, windows.ErrInvalidPolicy) {
		t.Fatalf("unparsable change = %+v, want Name broken with ErrInvalidPolicy", c)
	}

	// Cancelling the context closes the channel.
	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed within 10s of cancel")
		}
	}
}

func TestWatchEmptyStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := policystore.New(testkit.New(t).Topology.Policies)
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	p, err := s.Apply(ctx, salesPath, salesPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	c := next(t, ch)
	if c.Name != p.Name || c.Policy == nil || c.Policy.Version != p.Version {
		t.Fatalf("first change = %+v, want %s version %d", c, p.Name, p.Version)
	}
}
