package loadtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testjaeger"
	"github.com/windrow/windrow/messages"
)

const jaegerPolicy = `name: traced_orders
source: {stream: TRACED, subjects: [traced.>]}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: n, type: int64, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h, max_out_of_order: 1m, allowed_lateness: 0s, idle_timeout: 1h}
segment: {max_rows: 500, max_age: 100ms}
output: {target_file_size: 1MiB, row_group_rows: 1000}
load: {table: traced_orders}
`

// TestJaegerShowsEachWindowRun runs the pipeline against a real Jaeger v2
// (configured only by the standard OTEL_* variables, as a user would) and
// asks Jaeger's HTTP API for each window's trace: one trace, spans from the
// collector, compactor and loader, the window's root with its attributes,
// every other span under it, in causal order.
func TestJaegerShowsEachWindowRun(t *testing.T) {
	j := testjaeger.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", j.OTLPHTTPEndpoint)
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), Embedded: true, NATSPort: -1, Instance: "jaeger-test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	if _, err := s.ApplyPolicy(ctx, "traced.yaml", []byte(jaegerPolicy)); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()

	// Three windows of 1,500 events; events of the fourth close the third.
	h0 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	const perWindow = 1500
	for w := 0; w < 3; w++ {
		for i := 0; i < perWindow; i++ {
			at := h0.Add(time.Duration(w)*time.Hour + time.Duration(i)*2*time.Second)
			data := fmt.Appendf(nil, `{"id":"w%d-%d","n":%d,"at":%q}`, w, i, i, at.Format(time.RFC3339))
			if _, err := s.JS.PublishAsync("traced.eu", data); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Events of the fourth window close the third: 100, more than 1% of
	// the recent events (one alone is an outlier the watermark's quorum
	// does not follow).
	for i := range 100 {
		if _, err := s.JS.Publish(ctx, "traced.eu", fmt.Appendf(nil, `{"id":"close-%d","n":0,"at":%q}`, i, h0.Add(3*time.Hour+2*time.Minute).Format(time.RFC3339))); err != nil {
			t.Fatal(err)
		}
	}
	wins := []string{messages.WindowID(h0), messages.WindowID(h0.Add(time.Hour)), messages.WindowID(h0.Add(2 * time.Hour))}
	states := map[string]*messages.WindowState{}
	deadline := time.Now().Add(90 * time.Second)
	for _, w := range wins {
		for {
			st, _, err := s.States.Get(ctx, "traced_orders", w)
			if err == nil && st.Status == messages.StatusLoaded {
				states[w] = st
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("window %s not loaded within 90s (state %+v, err %v)", w, st, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Stop and flush every provider: all spans are in Jaeger's hands.
	stop()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	closed = true
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, w := range wins {
		st := states[w]
		if st.TraceID == "" {
			t.Fatalf("window %s has no trace id in its state", w)
		}
		qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
		tr, err := waitTrace(qctx, j, st)
		qcancel()
		if err != nil {
			t.Fatalf("window %s: %v", w, err)
		}
		checkJaegerRun(t, tr, st)
	}
}

// waitTrace polls Jaeger until the window's trace holds its root span and
// every load's result handling.
func waitTrace(ctx context.Context, j *testjaeger.Jaeger, st *messages.WindowState) (testjaeger.Trace, error) {
	for {
		tr, err := j.GetTrace(ctx, st.TraceID)
		if err == nil {
			_, root := tr.SpanByOperation("window traced_orders " + st.ID())
			applied := 0
			for _, sp := range tr.Spans {
				if sp.OperationName == "compactor.apply_result" {
					applied++
				}
			}
			if root && applied >= st.BatchCount {
				return tr, nil
			}
		}
		select {
		case <-ctx.Done():
			return tr, fmt.Errorf("trace %s not complete in Jaeger: %v (last error %v)", st.TraceID, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func checkJaegerRun(t *testing.T, tr testjaeger.Trace, st *messages.WindowState) {
	t.Helper()
	w := st.ID()
	svcs := tr.Services()
	slices.Sort(svcs)
	if want := []string{telemetry.ServiceCollector, telemetry.ServiceCompactor, telemetry.ServiceLoader}; !slices.Equal(svcs, want) {
		t.Errorf("window %s: services %v, want %v", w, svcs, want)
	}
	root, _ := tr.SpanByOperation("window traced_orders " + w)
	if root.ParentSpanID() != "" || tr.Service(root) != telemetry.ServiceCompactor {
		t.Errorf("window %s: root has parent %q, service %q", w, root.ParentSpanID(), tr.Service(root))
	}
	for key, want := range map[string]string{
		"windrow.policy": "traced_orders", "windrow.window": w, "windrow.revision": "0", "windrow.status": "LOADED",
		"windrow.policy_version": fmt.Sprint(st.PolicyVersion), "windrow.rows": fmt.Sprint(st.Rows),
		"windrow.window_start": st.WindowStart.UTC().Format(time.RFC3339), "windrow.window_end": st.WindowEnd.UTC().Format(time.RFC3339),
	} {
		if kv, ok := root.Tag(key); !ok || kv.String() != want {
			t.Errorf("window %s: root tag %s = %q, want %q", w, key, kv.String(), want)
		}
	}
	// Every span hangs off the root, through parents that are in the trace.
	for _, sp := range tr.Spans {
		if sp.SpanID == root.SpanID {
			continue
		}
		for cur, hops := sp, 0; cur.SpanID != root.SpanID; hops++ {
			p, ok := tr.SpanByID(cur.ParentSpanID())
			if !ok || hops > 10 {
				t.Errorf("window %s: span %s (%s) does not reach the root", w, sp.OperationName, tr.Service(sp))
				break
			}
			cur = p
		}
	}
	// Causal order: every segment before the seal, the seal before the
	// compaction, each load after the commands were published, each
	// result handled after its load.
	first := func(op string) testjaeger.Span {
		sp, ok := tr.SpanByOperation(op)
		if !ok {
			t.Fatalf("window %s: no %s span", w, op)
		}
		return sp
	}
	seal, compact, publish := first("compactor.seal"), first("compactor.compact"), first("compactor.publish_loads")
	var segRows int64
	segs, loads, applies := 0, 0, 0
	for _, sp := range tr.Spans {
		switch sp.OperationName {
		case "collector.segment":
			segs++
			kv, _ := sp.Tag("windrow.rows")
			var n int64
			fmt.Sscan(kv.String(), &n)
			segRows += n
			if sp.StartTime > seal.StartTime {
				t.Errorf("window %s: a segment starts after the seal", w)
			}
		case "loader.load":
			loads++
			if sp.ParentSpanID() != publish.SpanID || sp.StartTime < publish.StartTime {
				t.Errorf("window %s: loader.load not a later child of compactor.publish_loads", w)
			}
		case "compactor.apply_result":
			applies++
			p, ok := tr.SpanByID(sp.ParentSpanID())
			if !ok || p.OperationName != "loader.load" || sp.StartTime < p.StartTime {
				t.Errorf("window %s: apply_result not a later child of loader.load", w)
			}
		}
	}
	if seal.StartTime > compact.StartTime || root.StartTime > seal.StartTime {
		t.Errorf("window %s: root ≤ seal ≤ compact violated", w)
	}
	if segRows != st.StagedRows || segs != int(st.Segments) {
		t.Errorf("window %s: %d segment spans with %d rows, state: %d segments, %d rows", w, segs, segRows, st.Segments, st.StagedRows)
	}
	if loads != st.BatchCount || applies != st.BatchCount {
		t.Errorf("window %s: %d loads, %d results applied, %d batches", w, loads, applies, st.BatchCount)
	}
	if len(tr.Warnings) > 0 || strings.Contains(fmt.Sprint(tr.Spans), "invalid parent") {
		t.Errorf("window %s: Jaeger warnings %v", w, tr.Warnings)
	}
	t.Logf("window %s: trace %s, %d spans (%d segments, %d batches) from %v", w, st.TraceID, len(tr.Spans), segs, st.BatchCount, svcs)
}
