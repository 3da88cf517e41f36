package compactor

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// TestIdleRuleByElapsedTime runs the compactor with injected clocks over a
// backfill of a past window whose producer paused: the idle rule moves the
// watermark by the (monotonic) time elapsed since the source went idle, a
// forward jump of the wall clock moves nothing, and a flush request moves
// it to the request's time less max_out_of_order.
func TestIdleRuleByElapsedTime(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, strings.Replace(policySrc, "window: {size: 1h}", "window: {size: 1h, max_out_of_order: 1m, idle_timeout: 1s}", 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Ten source events, all taken and acked by the collectors' consumer:
	// nothing pending or in flight, ack floor 10.
	ack(t, takeSource(t, env, p, 10)...)
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)} // months before the wall clock
	stageSegment(t, env, l, p, win, seqRange(1, 10))             // newest event End-1s

	wall := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	var wallNanos, elapsed atomic.Int64
	wallNanos.Store(wall.UnixNano())
	s, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Tick: 10 * time.Millisecond,
		Now:     func() time.Time { return time.Unix(0, wallNanos.Load()).UTC() },
		Elapsed: func() time.Duration { return time.Duration(elapsed.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	ticks := func() uint64 { s.mu.Lock(); defer s.mu.Unlock(); return s.ticks }
	settle := func() { // let the compactor tick a few times with the clocks as they are
		n := ticks()
		testkit.WaitFor(t, 5*time.Second, "ticks", func() bool { return ticks() >= n+5 })
	}
	wantWM := func(what string, want time.Time) {
		t.Helper()
		testkit.WaitFor(t, 5*time.Second, what, func() bool { v, _ := s.Watermark(); return v.Equal(want) })
	}
	status := func() messages.WindowStatus {
		st, _, err := env.States.Get(ctx, p.Name, win.ID())
		if err != nil {
			t.Fatal(err)
		}
		return st.Status
	}

	newest := win.End.Add(-time.Second)
	wantWM("the staged segment counted", newest.Add(-time.Minute))
	settle() // the idle spell starts at elapsed 0

	// The producer pauses for 30s (idle_timeout 1s): the watermark moves 30s,
	// not to the wall clock, and the window being backfilled stays open.
	elapsed.Store(int64(30 * time.Second))
	wantWM("the watermark 30s past its idle base", newest.Add(-time.Minute+30*time.Second))
	settle()
	if st := status(); st != messages.StatusOpen {
		t.Fatalf("window %s after a 30s pause, want OPEN", st)
	}

	// The wall clock jumps a day forward; the monotonic clock does not move.
	wallNanos.Add(int64(24 * time.Hour))
	settle()
	if v, _ := s.Watermark(); !v.Equal(newest.Add(-time.Minute + 30*time.Second)) {
		t.Fatalf("a wall-clock jump moved the watermark to %s", v)
	}
	if st := status(); st != messages.StatusOpen {
		t.Fatalf("window %s after a wall-clock jump, want OPEN", st)
	}

	// The producer declares its input complete: the watermark goes to the
	// request's time less max_out_of_order and the window is sealed.
	at := time.Unix(0, wallNanos.Load()).UTC()
	if err := env.Watermarks.RequestFlush(ctx, messages.FlushRequest{Policy: p.Name, At: at, By: "test"}); err != nil {
		t.Fatal(err)
	}
	wantWM("the flushed watermark", at.Add(-time.Minute))
	testkit.WaitFor(t, 10*time.Second, "the window sealed after the flush", func() bool { return status() != messages.StatusOpen })
	elapsed.Add(int64(2 * time.Second)) // the watermark is written at most once a second
	testkit.WaitFor(t, 5*time.Second, "the published watermark says flush", func() bool {
		wm, ok, err := env.Watermarks.Get(ctx, p.Name)
		return err == nil && ok && wm.Flush && !wm.Idle && wm.Watermark.Equal(at.Add(-time.Minute)) && wm.FlushRev > 0
	})
}
