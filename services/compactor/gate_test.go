package compactor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// TestWatermarkWaitsForTheEventsBehindACappedOffer: a segment of events
// from a clock a day ahead (source sequence 1) offers the watermark what
// the quorum of the collector's recent events supports, which speaks for
// events up to sequence 10 (watermark_seq). Its offer counts only once the
// collectors' ack floor reaches 10, not when its own event is acked:
// before, a collector killed with sequences 6..10 in its buffers had them
// redelivered into windows the watermark had already closed.
func TestWatermarkWaitsForTheEventsBehindACappedOffer(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, strings.Replace(policySrc, "window: {size: 1h}", "window: {size: 1h, max_out_of_order: 1m, idle_timeout: 1h}", 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	taken := takeSource(t, env, p, 10)
	ack(t, taken[:5]...)
	held := taken[5:] // still in a collector's buffers
	ahead := windows.Window{Start: hour.Add(24 * time.Hour), End: hour.Add(25 * time.Hour)}
	capped := hour.Add(30 * time.Minute) // what the quorum of the recent events supports
	reg := &messages.SegmentRegistered{Policy: p.Name, PolicyVersion: 1, WindowStart: ahead.Start, WindowEnd: ahead.End, SegmentID: "ahead",
		Object: "x", Rows: 1, Bytes: 1, SHA256: strings.Repeat("0", 64), MinSourceSeq: 1, MaxSourceSeq: 1,
		MinEventTime: ahead.Start.Add(time.Minute), MaxEventTime: ahead.Start.Add(time.Minute), WatermarkTime: capped, WatermarkSeq: 10,
		Collector: "t", CreatedAt: time.Now()}
	if _, err := natsx.Publish(ctx, env.JS, messages.SegmentSubject(p.Name, ahead.ID()), reg, nil); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Tick: 10 * time.Millisecond})
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
	testkit.WaitFor(t, 5*time.Second, "the compactor ticking past the registration", func() bool { return ticks() >= 20 })
	if wm, ok := s.Watermark(); ok {
		t.Fatalf("watermark %s with the ack floor at 5: the capped offer counted before the events behind it were staged", wm)
	}
	ack(t, held...)
	testkit.WaitFor(t, 5*time.Second, "the offer counted once the ack floor reached 10", func() bool {
		wm, ok := s.Watermark()
		return ok && wm.Equal(capped.Add(-time.Minute))
	})
}
