package stack_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
)

const tracedPolicy = testkit.OrdersPolicy

// failOnce fails the first load of one batch with a transient error.
type failOnce struct {
	warehouse.Warehouse
	batch string
	done  atomic.Bool
}

func (w *failOnce) Load(ctx context.Context, b warehouse.Batch) (int64, bool, error) {
	if b.ID == w.batch && w.done.CompareAndSwap(false, true) {
		return 0, false, fmt.Errorf("warehouse busy (injected): %w", warehouse.ErrTransient)
	}
	return w.Warehouse.Load(ctx, b)
}

// TestWindowRunIsOneTrace runs the three roles in one process, each with
// its own tracer provider, and checks each window's run: one root span
// (the window) with the ids its children use, the collector's segment
// spans, the compactor's seal, compaction and batch writes, the loader's
// attempts (the first of one window fails and is retried), and the result
// handling, from the three services, in causal order; producers' spans are
// linked from the segments that took their events.
func TestWindowRunIsOneTrace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rec := tracetest.NewSpanRecorder()
	tracing := map[string]*telemetry.Tracing{}
	for _, role := range stack.AllRoles {
		tr, err := telemetry.New(ctx, telemetry.Config{Service: "windrow-" + role, SpanProcessor: rec})
		if err != nil {
			t.Fatal(err)
		}
		tracing[role] = tr
	}
	h0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	w0, w1 := messages.WindowID(h0), messages.WindowID(h0.Add(time.Hour))
	retried := messages.BatchID("orders", h0.Add(time.Hour), 0, 0)
	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), Embedded: true, NATSPort: -1, Instance: "t",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tracing: tracing,
		WrapWarehouse: func(w warehouse.Warehouse) warehouse.Warehouse { return &failOnce{Warehouse: w, batch: retried} }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ApplyPolicy(ctx, "orders.yaml", []byte(tracedPolicy)); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	// A producer traces its publishes: the segment that takes the event links to its span.
	producerTP, err := telemetry.New(ctx, telemetry.Config{Service: "shop", SpanProcessor: rec})
	if err != nil {
		t.Fatal(err)
	}
	pctx, producerSpan := producerTP.Tracer().Start(ctx, "checkout")
	producerSpan.End()
	publish := func(id string, at time.Time, traced bool) {
		t.Helper()
		m := nats.NewMsg("orders.eu")
		m.Data = fmt.Appendf(nil, `{"id":%q,"n":1,"at":%q}`, id, at.Format(time.RFC3339))
		if traced {
			telemetry.Inject(pctx, m.Header)
		}
		if _, err := s.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	publish("a1", h0.Add(5*time.Minute), true)
	publish("a2", h0.Add(10*time.Minute), false)
	publish("b1", h0.Add(65*time.Minute), false)
	testnats.WaitFor(t, 30*time.Second, "window 00h loaded", func() bool { return status(ctx, s, w0) == messages.StatusLoaded })
	// The next window closes when an event of 02:01 moves the watermark past 02:00.
	publish("c1", h0.Add(121*time.Minute), false)
	testnats.WaitFor(t, 30*time.Second, "window 01h loaded", func() bool { return status(ctx, s, w1) == messages.StatusLoaded })
	// The root is emitted by the compactor right after LOADED is written.
	testnats.WaitFor(t, 10*time.Second, "both roots recorded", func() bool {
		n := 0
		for _, sp := range rec.Ended() {
			if strings.HasPrefix(sp.Name(), "window orders ") {
				n++
			}
		}
		return n == 2
	})

	spans := rec.Ended()
	for _, win := range []string{w0, w1} {
		st, _, err := s.States.Get(ctx, "orders", win)
		if err != nil {
			t.Fatal(err)
		}
		checkRun(t, spans, st, win == w1, win == w0, producerSpan.SpanContext())
	}
}

func status(ctx context.Context, s *stack.Stack, win string) messages.WindowStatus {
	st, _, err := s.States.Get(ctx, "orders", win)
	if err != nil {
		return ""
	}
	return st.Status
}

func attr(sp sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range sp.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func service(sp sdktrace.ReadOnlySpan) string {
	v, _ := sp.Resource().Set().Value("service.name")
	return v.AsString()
}

// checkRun checks the trace of one window run.
func checkRun(t *testing.T, all []sdktrace.ReadOnlySpan, st *messages.WindowState, wantRetry, wantProducerLink bool, producer trace.SpanContext) {
	t.Helper()
	win := st.ID()
	rootSC, ok := telemetry.ParseTraceParent(st.TraceParent)
	if !ok {
		t.Fatalf("window %s: no traceparent in its state", win)
	}
	if st.TraceID != rootSC.TraceID().String() {
		t.Errorf("window %s: state trace_id %q, traceparent %q", win, st.TraceID, st.TraceParent)
	}
	var run []sdktrace.ReadOnlySpan
	byName := map[string][]sdktrace.ReadOnlySpan{}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, sp := range all {
		if sp.SpanContext().TraceID() == rootSC.TraceID() {
			run = append(run, sp)
			byName[sp.Name()] = append(byName[sp.Name()], sp)
			byID[sp.SpanContext().SpanID()] = sp
		}
	}
	one := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		if len(byName[name]) != 1 {
			t.Fatalf("window %s: %d %q spans, want 1", win, len(byName[name]), name)
		}
		return byName[name][0]
	}
	parentIs := func(sp sdktrace.ReadOnlySpan, parent sdktrace.ReadOnlySpan) {
		t.Helper()
		if sp.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("window %s: %s's parent is %s, want %s (%s)", win, sp.Name(), sp.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
		}
	}
	startsAfter := func(sp, before sdktrace.ReadOnlySpan) {
		t.Helper()
		if sp.StartTime().Before(before.StartTime()) {
			t.Errorf("window %s: %s starts %s before %s", win, sp.Name(), before.StartTime().Sub(sp.StartTime()), before.Name())
		}
	}

	root := one("window orders " + win)
	if root.SpanContext().SpanID() != rootSC.SpanID() || root.Parent().IsValid() {
		t.Errorf("window %s: root span %s (parent %v), want id %s and no parent", win, root.SpanContext().SpanID(), root.Parent().SpanID(), rootSC.SpanID())
	}
	for key, want := range map[string]string{
		"windrow.policy": "orders", "windrow.window": win, "windrow.status": "LOADED",
		"windrow.window_start": st.WindowStart.UTC().Format(time.RFC3339), "windrow.window_end": st.WindowEnd.UTC().Format(time.RFC3339),
	} {
		if v, _ := attr(root, key); v.Emit() != want {
			t.Errorf("window %s: root %s = %q, want %q", win, key, v.Emit(), want)
		}
	}
	for key, want := range map[string]int64{"windrow.revision": 0, "windrow.policy_version": int64(st.PolicyVersion), "windrow.rows": st.Rows} {
		if v, ok := attr(root, key); !ok || v.AsInt64() != want {
			t.Errorf("window %s: root %s = %v, want %d", win, key, v.Emit(), want)
		}
	}

	services := map[string]bool{}
	for _, sp := range run {
		services[service(sp)] = true
		if sp != root && !sp.Parent().IsValid() {
			t.Errorf("window %s: span %s has no parent", win, sp.Name())
		}
		if sp.EndTime().After(root.EndTime()) && sp.Name() != "compactor.apply_result" {
			t.Errorf("window %s: %s ends after the root", win, sp.Name())
		}
	}
	for _, svc := range []string{telemetry.ServiceCollector, telemetry.ServiceCompactor, telemetry.ServiceLoader} {
		if !services[svc] {
			t.Errorf("window %s: no span from %s in the run's trace (services %v)", win, svc, services)
		}
	}

	segs := byName["collector.segment"]
	if len(segs) == 0 {
		t.Fatalf("window %s: no collector.segment span", win)
	}
	var segRows int64
	linked := false
	for _, sp := range segs {
		parentIs(sp, root)
		startsAfter(sp, root)
		v, _ := attr(sp, "windrow.rows")
		segRows += v.AsInt64()
		for _, l := range sp.Links() {
			if l.SpanContext.SpanID() == producer.SpanID() && l.SpanContext.TraceID() == producer.TraceID() {
				linked = true
			}
		}
	}
	if segRows != st.StagedRows {
		t.Errorf("window %s: segment spans hold %d rows, the window staged %d", win, segRows, st.StagedRows)
	}
	if linked != wantProducerLink {
		t.Errorf("window %s: a segment links the producer's span: %v, want %v", win, linked, wantProducerLink)
	}

	seal := one("compactor.seal")
	parentIs(seal, root)
	for _, sp := range segs {
		startsAfter(seal, sp)
	}
	compact := one("compactor.compact")
	parentIs(compact, root)
	startsAfter(compact, seal)
	parentIs(one("compactor.read_segments"), compact)
	merge := one("compactor.merge_dedup")
	parentIs(merge, compact)
	if v, _ := attr(merge, "windrow.rows"); v.AsInt64() != st.Rows {
		t.Errorf("window %s: merge rows %d, want %d", win, v.AsInt64(), st.Rows)
	}
	writes := byName["compactor.write_batch"]
	if len(writes) != st.BatchCount {
		t.Errorf("window %s: %d write_batch spans, %d batches", win, len(writes), st.BatchCount)
	}
	for _, w := range writes {
		parentIs(w, merge)
	}
	publish := one("compactor.publish_loads")
	parentIs(publish, compact)

	loads := byName["loader.load"]
	wantLoads := st.BatchCount
	if wantRetry {
		wantLoads++
	}
	if len(loads) != wantLoads {
		t.Fatalf("window %s: %d loader.load spans, want %d", win, len(loads), wantLoads)
	}
	failed := 0
	for _, l := range loads {
		parentIs(l, publish)
		startsAfter(l, publish)
		if l.Status().Code == codes.Error {
			failed++
			if !strings.Contains(l.Status().Description, "injected") {
				t.Errorf("window %s: failed load's status %q does not carry the error", win, l.Status().Description)
			}
		}
	}
	if (failed == 1) != wantRetry || failed > 1 {
		t.Errorf("window %s: %d failed load attempts, want retry=%v", win, failed, wantRetry)
	}
	txs := byName["loader.warehouse_transaction"]
	if len(txs) != wantLoads {
		t.Errorf("window %s: %d warehouse transactions, want %d", win, len(txs), wantLoads)
	}
	for _, tx := range txs {
		if p, ok := byID[tx.Parent().SpanID()]; !ok || p.Name() != "loader.load" {
			t.Errorf("window %s: warehouse transaction's parent is not a loader.load span", win)
		}
	}
	applies := byName["compactor.apply_result"]
	if len(applies) != st.BatchCount {
		t.Fatalf("window %s: %d apply_result spans, want %d", win, len(applies), st.BatchCount)
	}
	for _, a := range applies {
		p, ok := byID[a.Parent().SpanID()]
		if !ok || p.Name() != "loader.load" || p.Status().Code == codes.Error {
			t.Errorf("window %s: apply_result's parent is not the successful loader.load", win)
		} else {
			startsAfter(a, p)
		}
	}
}
