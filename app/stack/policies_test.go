package stack_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/app/stack"
)

const startPolicy = `name: started
source: {stream: STARTED, subjects: [started.>]}
schema:
  fields:
    - {name: k, type: string, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h}
load: {table: started}
`

// TestApplyPolicyFilesAtStart: restarting with the policy files a process
// was started with never reverts a live change (a newer stored version);
// an unchanged file is a no-op; a file edited after the stored version is
// applied; --force-policies applies the file whatever is stored.
func TestApplyPolicyFilesAtStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), Embedded: true, NATSPort: -1, Roles: []string{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	file := filepath.Join(t.TempDir(), "started.yaml")
	write := func(data string, modified time.Time) {
		t.Helper()
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(file, modified, modified); err != nil {
			t.Fatal(err)
		}
	}
	stored := func() (uint64, string) {
		t.Helper()
		cur, err := s.Policies.Current(ctx, "started")
		if err != nil {
			t.Fatal(err)
		}
		return cur.Version, cur.Policy.Window.Size.String()
	}
	start := func(force bool) (applied, kept int) {
		t.Helper()
		ps, ks, err := s.ApplyPolicyFilesAtStart(ctx, []string{file}, force)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			if !strings.Contains(k.String(), "--force-policies") {
				t.Errorf("kept message %q does not say how to apply the file anyway", k)
			}
		}
		return len(ps), len(ks)
	}

	write(startPolicy, time.Now().Add(-time.Hour))
	if a, k := start(false); a != 1 || k != 0 {
		t.Fatalf("first start: %d applied, %d kept; want the new policy applied", a, k)
	}
	v1, _ := stored()
	if a, k := start(false); a != 1 || k != 0 {
		t.Fatalf("restart with the same file: %d applied, %d kept", a, k)
	}
	if v, _ := stored(); v != v1 {
		t.Fatalf("restart with the same file stored version %d, want %d kept", v, v1)
	}
	// A live change (windrow policy apply) after the file was written.
	if _, err := s.ApplyPolicy(ctx, "live.yaml", []byte(strings.Replace(startPolicy, "size: 1h", "size: 1h, max_out_of_order: 5m", 1))); err != nil {
		t.Fatal(err)
	}
	v2, _ := stored()
	if a, k := start(false); a != 0 || k != 1 {
		t.Fatalf("restart with the older file: %d applied, %d kept; want it kept back", a, k)
	}
	if v, _ := stored(); v != v2 {
		t.Fatalf("restart with the older file reverted the live change: stored version %d, want %d", v, v2)
	}
	// The file edited after the live change is the operator's newest word.
	write(strings.Replace(startPolicy, "size: 1h", "size: 2h", 1), time.Now().Add(time.Second))
	if a, k := start(false); a != 1 || k != 0 {
		t.Fatalf("restart with an edited file: %d applied, %d kept", a, k)
	}
	if v, size := stored(); v == v2 || size != "2h0m0s" {
		t.Fatalf("edited file: stored version %d with size %s, want a new version of 2h", v, size)
	}
	// --force-policies reverts a newer stored version.
	if _, err := s.ApplyPolicy(ctx, "live.yaml", []byte(strings.Replace(startPolicy, "size: 1h", "size: 2h, max_out_of_order: 5m", 1))); err != nil {
		t.Fatal(err)
	}
	write(strings.Replace(startPolicy, "size: 1h", "size: 2h", 1), time.Now().Add(-time.Hour))
	if a, k := start(true); a != 1 || k != 0 {
		t.Fatalf("forced start: %d applied, %d kept", a, k)
	}
}
