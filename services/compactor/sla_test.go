package compactor

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// TestOverdueWindowIsMarkedOnItsTrace: a window past its SLA deadline and
// not loaded gets one "window.sla_missed" span in its run's trace, with
// error status, however many sweeps see it.
func TestOverdueWindowIsMarkedOnItsTrace(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, strings.Replace(policySrc, "load: {table: comp}", "load: {table: comp}\nsla: {deadline: 30m}", 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	l, err := records.NewLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tr, err := telemetry.New(ctx, telemetry.Config{Service: telemetry.ServiceCompactor, SpanProcessor: rec})
	if err != nil {
		t.Fatal(err)
	}
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)} // long past its deadline
	stageSegment(t, env, l, p, win, seqRange(1, 10))
	run := tr.NewRun(ctx)
	if _, err := env.States.Update(ctx, messages.WindowKey(p.Name, win.ID()), func(cur *messages.WindowState) (*messages.WindowState, error) {
		cur.TraceParent = run
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Tracing: tr, JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Sweep: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testkit.WaitFor(t, 10*time.Second, "the overdue window marked", func() bool {
		for _, sp := range rec.Ended() {
			if sp.Name() == "window.sla_missed" {
				return true
			}
		}
		return false
	})
	// Let about ten more sweeps see it: it must not be marked again.
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	root, _ := telemetry.ParseTraceParent(run)
	var marks int
	for _, sp := range rec.Ended() {
		if sp.Name() != "window.sla_missed" {
			continue
		}
		marks++
		if sp.Parent().SpanID() != root.SpanID() || sp.SpanContext().TraceID() != root.TraceID() {
			t.Errorf("sla_missed span is not a child of the run's root")
		}
		if sp.Status().Code != codes.Error {
			t.Errorf("sla_missed status %v, want error", sp.Status())
		}
	}
	if marks != 1 {
		t.Errorf("%d window.sla_missed spans, want 1", marks)
	}
}
