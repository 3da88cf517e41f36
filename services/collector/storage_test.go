package collector

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/pipeline/staging"
	"github.com/windrow/windrow/windows"
)

// TestUnwritableStagingStopsAckingAndLosesNothing: when segments cannot be
// written (disk full, read-only or broken mount), the collector acks
// nothing, hands the messages back, stops with an error naming the path,
// and a collector started after the storage is repaired stages every event
// exactly once.
//
// The storage fault is a regular file where the staging directory must be:
// every segment write fails as it would on a read-only or full disk, and it
// works the same for root (which ignores permission bits) and other users.
func TestUnwritableStagingStopsAckingAndLosesNothing(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, policySrc)
	ctx := context.Background()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(env.Store.Root(), "staging")
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	publish(t, env.JS, 0, 50, hour)

	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "t"})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	runErr := c.Run(runCtx)
	if runErr == nil {
		t.Fatal("collector ran on with unwritable staging; want it to stop with an error")
	}
	if runCtx.Err() != nil {
		t.Fatalf("collector did not stop by itself: %v", runErr)
	}
	if !strings.Contains(runErr.Error(), "staging") {
		t.Errorf("error %q does not name the staging path", runErr)
	}
	t.Logf("collector stopped: %v", runErr)

	lag, err := inspect.CollectorLag(ctx, env.JS, p.Source.Stream, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if lag.AckFloor != 0 {
		t.Errorf("ack floor %d after failed writes, want 0: nothing may be acked", lag.AckFloor)
	}
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
	if _, _, err := env.States.Get(ctx, p.Name, win.ID()); !errors.Is(err, statestore.ErrNotFound) {
		t.Errorf("window state after failed writes: err %v, want not found (nothing registered)", err)
	}
	if got := c.Stats(); got.Staged != 0 || got.DeadLettered != 0 {
		t.Errorf("stats %+v, want nothing staged or dead-lettered", got)
	}

	// Storage repaired: a new collector stages all 50 events, once each.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	startCollector(t, env, p)
	testkit.WaitFor(t, 20*time.Second, "all 50 acked", func() bool {
		lag, err := inspect.CollectorLag(ctx, env.JS, p.Source.Stream, p.Name)
		return err == nil && lag.AckFloor >= 50 && lag.AckPending == 0
	})
	st, _, err := env.States.Get(ctx, p.Name, win.ID())
	if err != nil {
		t.Fatal(err)
	}
	regs, err := staging.ReadRegistrations(ctx, env.JS, p.Name, win.ID(), 0, st.LastSegmentSeq)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	for _, r := range regs {
		for seq := r.MinSourceSeq; seq <= r.MaxSourceSeq; seq++ {
			ok, err := staging.ContainsSeq(ctx, env.Store, c.layout, r.Object, seq)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				seen[seq]++
			}
		}
	}
	for seq := uint64(1); seq <= 50; seq++ {
		if seen[seq] != 1 {
			t.Errorf("source seq %d staged %d times, want once", seq, seen[seq])
		}
	}
	if st.StagedRows != 50 {
		t.Errorf("staged rows %d, want 50", st.StagedRows)
	}
}
