package collector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/internal/testdisk"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// TestDiskFullSegmentWriteIsTransient guards issue 12 (item 8): a segment
// write that finds the disk full (a real tmpfs filled to the last byte)
// stops the collector with an error wrapping objstore.ErrDiskFull, for its
// supervisor to restart it with backoff (app/policyrun): nothing acked,
// nothing dead-lettered. After space is freed a restarted collector stages
// every event once.
func TestDiskFullSegmentWriteIsTransient(t *testing.T) {
	env := testkit.New(t)
	disk := testdisk.New(t, 4<<20)
	store, err := local.New(disk.Dir + "/objects")
	if err != nil {
		t.Fatal(err)
	}
	env.Store = store
	p := testkit.Policy(t, policySrc)
	ctx := context.Background()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	publish(t, env.JS, 0, 50, hour)
	disk.Fill(t)

	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "t"})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	runErr := c.Run(runCtx)
	if !errors.Is(runErr, objstore.ErrDiskFull) {
		t.Fatalf("collector on a full disk stopped with %v; want an error wrapping objstore.ErrDiskFull", runErr)
	}
	lag, err := inspect.CollectorLag(ctx, env.JS, p.Source.Stream, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if lag.AckFloor != 0 {
		t.Errorf("ack floor %d on a full disk, want 0: nothing may be acked", lag.AckFloor)
	}
	if got := c.Stats(); got.Staged != 0 || got.DeadLettered != 0 {
		t.Errorf("stats %+v on a full disk, want nothing staged or dead-lettered", got)
	}
	if dl, err := inspect.CountDeadLetters(ctx, env.JS, p.Name); err != nil || len(dl.ByReason) != 0 {
		t.Errorf("dead letters %v (err %v), want none", dl, err)
	}
	if since, full := store.DiskFull(); !full || since.IsZero() {
		t.Error("the store does not report its disk full")
	}

	disk.Free(t)
	startCollector(t, env, p)
	testkit.WaitFor(t, 20*time.Second, "all 50 acked", func() bool {
		lag, err := inspect.CollectorLag(ctx, env.JS, p.Source.Stream, p.Name)
		return err == nil && lag.AckFloor >= 50 && lag.AckPending == 0
	})
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
	st, _, err := env.States.Get(ctx, p.Name, win.ID())
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != messages.StatusOpen || st.StagedRows != 50 {
		t.Errorf("window %s with %d staged rows, want OPEN with 50", st.Status, st.StagedRows)
	}
	if _, full := store.DiskFull(); full {
		t.Error("the store still reports its disk full after segments were written")
	}
}
