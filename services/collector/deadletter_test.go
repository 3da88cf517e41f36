package collector

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// TestFitPayload guards against a dead letter larger than the server allows:
// an event just under the limit plus windrow's headers would fail to publish
// and stop the collector on every redelivery.
func TestFitPayload(t *testing.T) {
	const limit = 1 << 20
	for _, tc := range []struct {
		name      string
		size      int
		truncated bool
	}{
		{"small", 100, false},
		{"just under the limit", limit - 100, true},
		{"far over", 3 * limit, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := nats.NewMsg("windrow.dlq.p")
			m.Data = bytes.Repeat([]byte("x"), tc.size)
			m.Header.Set(messages.HeaderReason, "malformed_json")
			m.Header.Set(messages.HeaderDetail, "detail")
			fitPayload(m, limit)
			if got := m.Header.Get(messages.HeaderTruncated) == "true"; got != tc.truncated {
				t.Fatalf("truncated = %v, want %v", got, tc.truncated)
			}
			size := len(m.Data) + 12
			for k, vs := range m.Header {
				for _, v := range vs {
					size += len(k) + len(v) + 4
				}
			}
			if size > limit {
				t.Fatalf("message is %d bytes with headers, limit %d", size, limit)
			}
			if tc.truncated && m.Header.Get(messages.HeaderOriginalSize) == "" {
				t.Fatal("no original size header on a cut payload")
			}
		})
	}
}

// TestDeadLetterStoredOnceAfterDuplicateWindow guards dead letters against
// the DLQ stream's duplicate window: a collector consumer recreated after
// the window has passed re-delivers the source events, and each bad event
// and late event must still be in the DLQ once.
func TestDeadLetterStoredOnceAfterDuplicateWindow(t *testing.T) {
	for _, late := range []string{"dlq", "drop"} {
		t.Run("late "+late, func(t *testing.T) {
			testDeadLetterStoredOnce(t, strings.Replace(policySrc, "late: dlq", "late: "+late, 1), late == "dlq")
		})
	}
}

func testDeadLetterStoredOnce(t *testing.T, src string, lateDLQ bool) {
	env := testkit.New(t)
	p := testkit.Policy(t, src)
	ctx := context.Background()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	dlqStream, err := env.JS.Stream(ctx, messages.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	cfg := dlqStream.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// Two bad events and, in a sealed window, one late event.
	for _, data := range []string{`{"id":`, `{"id":"x","n":"one","at":"2026-05-01T01:00:00Z"}`} {
		if _, err := env.JS.Publish(ctx, "ev.x", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	sealed := windows.Window{Start: hour.Add(-time.Hour), End: hour}
	if _, err := env.States.Update(ctx, messages.WindowKey(p.Name, sealed.ID()), func(*messages.WindowState) (*messages.WindowState, error) {
		return &messages.WindowState{Policy: p.Name, WindowStart: sealed.Start, WindowEnd: sealed.End, Status: messages.StatusSealed}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.JS.Publish(ctx, "ev.x", event(1, sealed.Start.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	publish(t, env.JS, 2, 5, hour)

	run := func() {
		c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "t"})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(rctx) }()
		testkit.WaitFor(t, 10*time.Second, "every event acked", drained(t, env, p))
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("collector run: %v", err)
		}
	}
	run()
	count := func() uint64 {
		t.Helper()
		info, err := dlqStream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	if n := count(); n != 3 {
		t.Fatalf("DLQ holds %d messages after the first delivery, want 3", n)
	}
	// Past the duplicate window, the consumer is recreated: every source
	// event is delivered again.
	time.Sleep(3 * cfg.Duplicates)
	if err := env.JS.DeleteConsumer(ctx, p.Source.Stream, messages.CollectorConsumer(p.Name)); err != nil {
		t.Fatal(err)
	}
	run()
	if n := count(); n != 3 {
		t.Errorf("DLQ holds %d messages after the source was delivered again, want 3", n)
	}
	dl, err := inspect.CountDeadLetters(ctx, env.JS, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(2) // the bad events; the late one is a marker
	if lateDLQ {
		want = 3
	}
	if dl.Total != want || dl.LateByWindow[sealed.ID()] != 1 {
		t.Errorf("counted %d dead letters (late by window %v), want %d and 1 late in %s", dl.Total, dl.LateByWindow, want, sealed.ID())
	}
}
