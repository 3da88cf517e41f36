package policystore_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/windows"
)

// fixedFloor is a ShapeFloor that does not look at the pipeline.
func fixedFloor(at time.Time) policystore.ShapeFloor {
	return func(context.Context, *windows.Policy) (time.Time, error) { return at, nil }
}

func TestShapeChangeIsRecordedInWindowHistory(t *testing.T) {
	ctx := context.Background()
	kv := testkit.New(t).Topology.Policies
	s := policystore.New(kv)
	s.SetShapeFloor(fixedFloor(time.Date(2026, 11, 26, 2, 55, 0, 0, time.UTC)))
	if _, err := s.Apply(ctx, "orders.yaml", []byte(reordered)); err != nil {
		t.Fatal(err)
	}
	twoHours := []byte(strings.Replace(reordered, "size: 1h", "size: 2h", 1))
	file := slices.Clone(twoHours)
	plan, err := s.Plan(ctx, mustParse(t, twoHours), twoHours)
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC) // the first even hour after the floor
	if plan.Switch == nil || !plan.Switch.At.Equal(t1) ||
		plan.Switch.String() != "window.size 1h0m0s → 2h0m0s applies from 2026-11-26T04:00:00Z; windows before that keep 1h0m0s tumbling windows in UTC" {
		t.Fatalf("Switch = %v, want 1h → 2h from %v", plan.Switch, t1)
	}
	if !strings.Contains(string(plan.New), "window_history:\n  - until: 2026-11-26T04:00:00Z\n    kind: tumbling\n    size: 1h0m0s\n    timezone: UTC\n") {
		t.Fatalf("canonical form without the history:\n%s", plan.New)
	}
	p, err := s.Commit(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	want := []windows.PastShape{{Until: t1, Kind: windows.Tumbling, Size: windows.Duration(time.Hour), Timezone: "UTC"}}
	if !slices.Equal(p.WindowHistory, want) {
		t.Fatalf("history %+v, want %+v", p.WindowHistory, want)
	}
	// Stored: the file as written, then the history below the marker.
	cur, err := s.Current(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(cur.Data, file) || !strings.HasSuffix(string(cur.Data),
		"\n# window_history: written by windrow when the window shape changed (see docs/policy.md); keep it\nwindow_history:\n  - {until: 2026-11-26T04:00:00Z, kind: tumbling, size: 1h0m0s, timezone: \"UTC\"}\n") {
		t.Fatalf("stored text:\n%s", cur.Data)
	}
	if !slices.Equal(cur.Policy.WindowHistory, want) {
		t.Fatalf("stored history %+v", cur.Policy.WindowHistory)
	}

	// The same file again, and the stored text itself (policy get): unchanged.
	for _, data := range [][]byte{twoHours, cur.Data} {
		again, err := s.Apply(ctx, "orders.yaml", data)
		if err != nil || again.Version != cur.Version || !slices.Equal(again.WindowHistory, want) {
			t.Fatalf("apply again: v%d (want v%d), history %+v, %v", again.Version, cur.Version, again.WindowHistory, err)
		}
	}
	// A file with another history is refused.
	forged := string(cur.Data[:len(cur.Data)-len("\"UTC\"}\n")]) + "\"UTC\"}\n  - {until: 2026-11-28T00:00:00Z, kind: tumbling, size: 1h, timezone: UTC}\n"
	forged = strings.Replace(forged, "2026-11-26T04:00:00Z, kind: tumbling, size: 1h0m0s", "2026-11-26T02:00:00Z, kind: tumbling, size: 1h0m0s", 1)
	if _, err := s.Apply(ctx, "orders.yaml", []byte(forged)); !errors.Is(err, windows.ErrInvalidPolicy) || !strings.Contains(err.Error(), "orders.yaml: window_history: differs from the stored policy's (1 entries)") {
		t.Fatalf("a file with another history: %v", err)
	}

	// Back to 1h: a second entry, after a whole 2h window of the current shape.
	back, err := s.Apply(ctx, "orders.yaml", []byte(reordered))
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, windows.PastShape{Until: t1.Add(2 * time.Hour), Kind: windows.Tumbling, Size: windows.Duration(2 * time.Hour), Timezone: "UTC"})
	if !slices.Equal(back.WindowHistory, want) || back.Window.Size.D() != time.Hour {
		t.Fatalf("history %+v, want %+v", back.WindowHistory, want)
	}
}

func TestShapeChangeRefused(t *testing.T) {
	ctx := context.Background()
	s := policystore.New(testkit.New(t).Topology.Policies)
	if _, err := s.Apply(ctx, "orders.yaml", []byte(reordered)); err != nil {
		t.Fatal(err)
	}
	twoHours := []byte(strings.Replace(reordered, "size: 1h", "size: 2h", 1))
	if _, err := s.Apply(ctx, "orders.yaml", twoHours); err == nil || !strings.Contains(err.Error(), "no ShapeFloor") {
		t.Fatalf("a shape change without a floor: %v, want it refused", err)
	}
	s.SetShapeFloor(fixedFloor(time.Date(2026, 11, 26, 2, 55, 0, 0, time.UTC)))
	daily := []byte(strings.Replace(reordered, "size: 1h", "size: 24h, timezone: Asia/Kolkata", 1))
	p1, _ := s.Get(ctx, "orders")
	_, err := s.Apply(ctx, "orders.yaml", daily)
	// Kolkata midnight is 18:30 UTC: no hourly UTC window ends there.
	if !errors.Is(err, windows.ErrInvalidPolicy) || !strings.Contains(err.Error(), "orders.yaml: window.size: 1h0m0s → 24h0m0s: no instant within 100000 windows") {
		t.Fatalf("a shape whose boundaries never meet: %v", err)
	}
	if p2, _ := s.Get(ctx, "orders"); p2.Version != p1.Version {
		t.Fatal("a refused change was stored")
	}
}

// TestStoredDataFallsBackToCanonical: a file that writes window_history
// itself (not below the marker) cannot take a new entry appended; the store
// keeps the canonical form instead.
func TestStoredDataFallsBackToCanonical(t *testing.T) {
	src := strings.Replace(reordered, "name: orders\n", "window_history: [{until: 2026-11-26T00:00:00Z, size: 30m}]\nname: orders\n", 1)
	p := mustParse(t, []byte(src))
	p.WindowHistory = append(p.WindowHistory, windows.PastShape{Until: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), Kind: windows.Tumbling, Size: windows.Duration(time.Hour), Timezone: "UTC"})
	p.Window.Size = windows.Duration(2 * time.Hour)
	got, err := policystore.StoredData([]byte(src), p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := policystore.Canonical(p)
	if !bytes.Equal(got, want) {
		t.Fatalf("stored:\n%s\nwant the canonical form:\n%s", got, want)
	}
	back := mustParse(t, got)
	if !slices.Equal(back.WindowHistory, p.WindowHistory) {
		t.Fatalf("history read back %+v, want %+v", back.WindowHistory, p.WindowHistory)
	}
}

func mustParse(t *testing.T, data []byte) *windows.Policy {
	t.Helper()
	p, err := windows.ParsePolicy("orders.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
