package policystore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/windows"
)

// parse parses a policy file for a test.
func parse(t *testing.T, data []byte) *windows.Policy {
	t.Helper()
	p, err := windows.ParsePolicy("test.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCanonicalRoundTrips(t *testing.T) {
	for name, src := range map[string][]byte{"sales": salesPolicy(t), "orders": []byte(testkit.OrdersPolicy)} {
		t.Run(name, func(t *testing.T) {
			c1, err := policystore.Canonical(parse(t, src))
			if err != nil {
				t.Fatal(err)
			}
			c2, err := policystore.Canonical(parse(t, c1))
			if err != nil {
				t.Fatalf("the canonical form does not parse: %v\n%s", err, c1)
			}
			if string(c1) != string(c2) {
				t.Fatalf("canonical form is not stable:\n%s\n---\n%s", c1, c2)
			}
			if strings.Contains(string(c1), "#") {
				t.Errorf("canonical form keeps comments:\n%s", c1)
			}
		})
	}
}

// reordered is the orders policy with the sections in another order, other
// flow/block styles, comments, and a default written out.
const reordered = `# the same policy, written differently
load: {table: orders}          # the target
segment:
  max_age: 100ms
  max_rows: 1000
window: {late: dlq, size: 1h, allowed_lateness: 0s, max_out_of_order: 1m, idle_timeout: 1h, kind: tumbling}
time: {field: at, mode: event}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: n, type: int64, required: true}
    - {name: at, type: timestamp, required: true}
source:
  subjects: [orders.>]
  stream: ORDERS
name: orders
`

func TestApplyIgnoresCommentsOrderAndDefaults(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	s := policystore.New(kv)
	p1, err := s.Apply(ctx, "orders.yaml", []byte(testkit.OrdersPolicy))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := s.Apply(ctx, "orders.yaml", []byte(reordered))
	if err != nil {
		t.Fatal(err)
	}
	if p2.Version != p1.Version || stored(t, kv) != 1 {
		t.Fatalf("a reordered, commented file: version %d → %d, %d values stored; want the same version and 1 value", p1.Version, p2.Version, stored(t, kv))
	}
	// The stored file stays the one of the version.
	cur, err := s.Current(ctx, "orders")
	if err != nil || string(cur.Data) != testkit.OrdersPolicy {
		t.Fatalf("Current = %v, %v; want the first file as written", cur, err)
	}
}

func TestPlanAndCommit(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	s := policystore.New(kv)
	data := []byte(testkit.OrdersPolicy)

	plan, err := s.Plan(ctx, parse(t, data), data)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Current != nil || !plan.Changed || len(plan.Old) != 0 || len(plan.New) == 0 {
		t.Fatalf("plan of a new policy = %+v, want no Current, Changed, empty Old", plan)
	}
	if n := stored(t, kv); n != 0 {
		t.Fatalf("Plan stored %d values", n)
	}
	v1, err := s.Commit(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != revision(t, kv, "orders") {
		t.Fatalf("Commit version %d, want the revision %d", v1.Version, revision(t, kv, "orders"))
	}

	changed := []byte(strings.Replace(testkit.OrdersPolicy, "max_rows: 1000", "max_rows: 2000", 1))
	plan, err = s.Plan(ctx, parse(t, changed), changed)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Current == nil || plan.Current.Version != v1.Version || !plan.Changed {
		t.Fatalf("plan of a change = %+v, want Current v%d and Changed", plan, v1.Version)
	}
	if !strings.Contains(string(plan.Old), "max_rows: 1000") || !strings.Contains(string(plan.New), "max_rows: 2000") {
		t.Fatalf("plan Old/New do not hold the change:\n%s\n---\n%s", plan.Old, plan.New)
	}
	v2, err := s.Commit(ctx, plan)
	if err != nil || v2.Version <= v1.Version {
		t.Fatalf("Commit of a change = %v, %v; want a version above %d", v2, err, v1.Version)
	}

	same, err := s.Plan(ctx, parse(t, changed), changed)
	if err != nil || same.Changed || same.Current.Version != v2.Version {
		t.Fatalf("plan of the stored file = %+v, %v; want unchanged at v%d", same, err, v2.Version)
	}
	if p, err := s.Commit(ctx, same); err != nil || p.Version != v2.Version {
		t.Fatalf("Commit unchanged = %v, %v; want v%d", p, err, v2.Version)
	}
}

func TestCommitRefusesConcurrentChanges(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	s := policystore.New(kv)
	data := []byte(testkit.OrdersPolicy)
	mine := []byte(strings.Replace(testkit.OrdersPolicy, "max_rows: 1000", "max_rows: 2000", 1))
	theirs := []byte(strings.Replace(testkit.OrdersPolicy, "max_rows: 1000", "max_rows: 3000", 1))

	// Both plan a first version; the second to commit is refused.
	plan, err := s.Plan(ctx, parse(t, mine), mine)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := s.Apply(ctx, "theirs.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Commit(ctx, plan)
	if !errors.Is(err, policystore.ErrConflict) || !strings.Contains(err.Error(), fmt.Sprintf("was not stored when read and is v%d now", v1.Version)) {
		t.Fatalf("Commit after a concurrent create: err = %v, want ErrConflict naming v%d", err, v1.Version)
	}

	// A plan on v1, then someone stores v2: refused, v2 stays.
	plan, err = s.Plan(ctx, parse(t, mine), mine)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.Apply(ctx, "theirs.yaml", theirs)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Commit(ctx, plan)
	want := fmt.Sprintf("orders was v%d when read and is v%d now", v1.Version, v2.Version)
	if !errors.Is(err, policystore.ErrConflict) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Commit after a concurrent update: err = %v, want ErrConflict with %q", err, want)
	}
	if got, err := s.Get(ctx, "orders"); err != nil || got.Version != v2.Version || got.Segment.MaxRows != 3000 {
		t.Fatalf("after the refused Commit: Get = %+v, %v; want their v%d", got, err, v2.Version)
	}

	// A plan on v2, then someone deletes the policy: refused, it stays deleted.
	plan, err = s.Plan(ctx, parse(t, mine), mine)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err = s.Commit(ctx, plan); !errors.Is(err, policystore.ErrConflict) || !strings.Contains(err.Error(), "is deleted now") {
		t.Fatalf("Commit after a concurrent delete: err = %v, want ErrConflict saying it is deleted", err)
	}
	if _, err := s.Current(ctx, "orders"); !errors.Is(err, policystore.ErrNotFound) {
		t.Fatalf("after the refused Commit: Current err = %v, want ErrNotFound", err)
	}

	// After a delete, a plan creates the policy again.
	plan, err = s.Plan(ctx, parse(t, mine), mine)
	if err != nil || plan.Current != nil {
		t.Fatalf("plan after delete = %+v, %v; want no Current", plan, err)
	}
	if p, err := s.Commit(ctx, plan); err != nil || p.Version <= v2.Version {
		t.Fatalf("Commit after delete = %v, %v; want a new version", p, err)
	}
}

func TestApplyRetriesConflicts(t *testing.T) {
	ctx := context.Background()
	s := policystore.New(testkit.New(t).Topology.Policies)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				data := strings.Replace(testkit.OrdersPolicy, "max_rows: 1000", fmt.Sprintf("max_rows: %d", 1000+100*w+i), 1)
				if _, err := s.Apply(ctx, "orders.yaml", []byte(data)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Apply: %v", err)
	}
}

func TestHistoryAtAndDeleteVersion(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	s := policystore.New(kv)
	if _, err := s.History(ctx, "orders"); !errors.Is(err, policystore.ErrNotFound) {
		t.Fatalf("History of a missing policy: err = %v, want ErrNotFound", err)
	}
	v1, err := s.Apply(ctx, "orders.yaml", []byte(testkit.OrdersPolicy))
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(testkit.OrdersPolicy, "max_rows: 1000", "max_rows: 2000", 1)
	v2, err := s.Apply(ctx, "orders.yaml", []byte(changed))
	if err != nil {
		t.Fatal(err)
	}

	// A stale delete is refused.
	if err := s.DeleteVersion(ctx, "orders", v1.Version); !errors.Is(err, policystore.ErrConflict) {
		t.Fatalf("DeleteVersion of v%d with v%d current: err = %v, want ErrConflict", v1.Version, v2.Version, err)
	}
	if err := s.DeleteVersion(ctx, "orders", v2.Version); err != nil {
		t.Fatalf("DeleteVersion: %v", err)
	}
	if _, err := s.Current(ctx, "orders"); !errors.Is(err, policystore.ErrNotFound) {
		t.Fatalf("Current after delete: err = %v, want ErrNotFound", err)
	}
	if es, err := s.Entries(ctx); err != nil || len(es) != 0 {
		t.Fatalf("Entries after delete = %v, %v; want none", es, err)
	}

	hist, err := s.History(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Version != v1.Version || hist[1].Version != v2.Version || !hist[2].Deleted {
		t.Fatalf("History = %+v, want v%d, v%d and the deletion", hist, v1.Version, v2.Version)
	}
	old, err := s.At(ctx, "orders", v1.Version)
	if err != nil || string(old.Data) != testkit.OrdersPolicy || old.Policy.Segment.MaxRows != 1000 || old.Policy.Version != v1.Version {
		t.Fatalf("At v%d = %+v, %v; want the first file", v1.Version, old, err)
	}
	if old.Stored.IsZero() {
		t.Error("At: no stored time")
	}
	if del, err := s.At(ctx, "orders", hist[2].Version); err != nil || !del.Deleted {
		t.Fatalf("At the deletion = %+v, %v; want Deleted", del, err)
	}
	_, err = s.At(ctx, "orders", 999)
	if !errors.Is(err, policystore.ErrVersionNotFound) || !strings.Contains(err.Error(), fmt.Sprintf("v%d, v%d", v1.Version, v2.Version)) {
		t.Fatalf("At a missing version: err = %v, want ErrVersionNotFound naming the kept versions", err)
	}
}

func TestEntriesKeepUnparsablePolicies(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	s := policystore.New(kv)
	if _, err := s.Apply(ctx, "orders.yaml", []byte(testkit.OrdersPolicy)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "broken", []byte("name: broken\n")); err != nil {
		t.Fatal(err)
	}
	es, err := s.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Name != "broken" || !errors.Is(es[0].Err, windows.ErrInvalidPolicy) || es[1].Policy == nil || es[1].Stored.IsZero() {
		t.Fatalf("Entries = %+v, want broken (with its error) and orders", es)
	}

	// A plan against the unparsable version shows its text and replaces it.
	data := []byte(strings.Replace(testkit.OrdersPolicy, "name: orders", "name: broken", 1))
	plan, err := s.Plan(ctx, parse(t, data), data)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Changed || string(plan.Old) != "name: broken\n" {
		t.Fatalf("plan against an unparsable version: Changed %v, Old %q", plan.Changed, plan.Old)
	}
	if _, err := s.Commit(ctx, plan); err != nil {
		t.Fatal(err)
	}
}
