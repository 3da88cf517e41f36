package loadtest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/services/natsx"
)

// TestWindowShapeChangeWaitsForOpenWindows: a new window size is refused
// while windows of the old size are open (it would split them), and applies
// once they are loaded; a change of anything else applies at once.
func TestWindowShapeChangeWaitsForOpenWindows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	v1 := `name: shaped
source: {stream: SHAPED, subjects: [shaped.>]}
` + SalesSchemaYAML + `window: {size: 1h, max_out_of_order: 5m, idle_timeout: 2s}
segment: {max_age: 200ms}
load: {table: shaped}
`
	p := applyPolicy(t, ctx, s, v1)
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	defer runRoles(t, ctx, s)()
	h0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	events := slices.Collect(Sales{Seed: 31, Events: 3_000, Start: h0, Span: 3 * time.Hour, SubjectPrefix: "shaped"}.All())
	if err := (&Publisher{JS: s.JS}).PublishEvents(ctx, events, "shaped"); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, ctx, s, p, time.Minute)

	v2 := strings.Replace(v1, "size: 1h", "size: 2h", 1)
	_, err := s.Policies.Apply(ctx, "shaped.yaml", []byte(v2))
	if err == nil || !strings.Contains(err.Error(), "window.size 1h0m0s → 2h0m0s while") || !strings.Contains(err.Error(), "would split them") {
		t.Fatalf("size change with open windows: %v, want it refused", err)
	}
	if cur, _ := s.Policies.Get(ctx, "shaped"); cur.Window.Size.D() != time.Hour {
		t.Fatalf("stored size %s after a refused change", cur.Window.Size.D())
	}
	// Other changes apply while windows are open.
	v1b := strings.Replace(v1, "max_age: 200ms", "max_age: 300ms", 1)
	if _, err := s.Policies.Apply(ctx, "shaped.yaml", []byte(v1b)); err != nil {
		t.Fatalf("a segment change was refused: %v", err)
	}
	// Once the windows are loaded (idle rule), the new size applies.
	waitLoaded(t, ctx, s, p.Name, 3, time.Minute)
	v2b := strings.Replace(v1b, "size: 1h", "size: 2h", 1)
	got, err := s.Policies.Apply(ctx, "shaped.yaml", []byte(v2b))
	if err != nil {
		t.Fatalf("size change after every window loaded: %v", err)
	}
	if got.Window.Size.D() != 2*time.Hour {
		t.Fatalf("stored size %s", got.Window.Size.D())
	}
}
