package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func recorder(t *testing.T, sampler sdktrace.Sampler) (*Tracing, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tr, err := New(context.Background(), Config{Service: ServiceCompactor, SpanProcessor: rec, Sampler: sampler})
	if err != nil {
		t.Fatal(err)
	}
	return tr, rec
}

func TestDisabledWithoutEndpoint(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
		t.Setenv("OTEL_SDK_DISABLED", "")
		t.Setenv("OTEL_TRACES_EXPORTER", "")
		for k, v := range env {
			t.Setenv(k, v)
		}
		tr, err := New(context.Background(), Config{Service: ServiceCollector})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Enabled() || tr.NewRun(context.Background()) != "" {
			t.Errorf("env %v: tracing on, want off", env)
		}
		_, span := tr.Tracer().Start(context.Background(), "x")
		if span.SpanContext().IsValid() || span.IsRecording() {
			t.Errorf("env %v: a disabled tracer recorded a span", env)
		}
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
	if !EndpointConfigured() {
		t.Error("a traces endpoint alone does not turn tracing on")
	}
}

func TestInjectExtractOverNATSHeaders(t *testing.T) {
	tr, _ := recorder(t, nil)
	m, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(m)
	ctx, span := tr.Tracer().Start(baggage.ContextWithBaggage(context.Background(), bag), "publish")
	defer span.End()
	h := nats.Header{}
	Inject(ctx, h)
	if h.Get("traceparent") == "" || !strings.Contains(h.Get("baggage"), "tenant=acme") {
		t.Fatalf("headers %v: want traceparent and baggage", h)
	}
	got := Extract(context.Background(), h)
	sc := trace.SpanContextFromContext(got)
	if sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() || !sc.IsRemote() {
		t.Errorf("extracted %v, want the remote %v", sc, span.SpanContext())
	}
	if baggage.FromContext(got).Member("tenant").Value() != "acme" {
		t.Error("baggage lost")
	}
	// Nothing to inject: no headers written.
	empty := nats.Header{}
	Inject(context.Background(), empty)
	if len(empty) != 0 {
		t.Errorf("headers %v injected without a span", empty)
	}
}

func TestTraceParentRoundTrip(t *testing.T) {
	tr, _ := recorder(t, nil)
	tp := tr.NewRun(context.Background())
	sc, ok := ParseTraceParent(tp)
	if !ok || !sc.IsSampled() || TraceParent(sc) != tp {
		t.Fatalf("traceparent %q parsed to %v (ok %v)", tp, sc, ok)
	}
	for _, bad := range []string{"", "00-xyz", "00-00000000000000000000000000000000-0000000000000000-01"} {
		if _, ok := ParseTraceParent(bad); ok {
			t.Errorf("ParseTraceParent(%q) ok", bad)
		}
	}
	// A run that is not sampled keeps its ids with the flag off, so that
	// the run's spans follow the decision.
	off, _ := recorder(t, sdktrace.NeverSample())
	sc, ok = ParseTraceParent(off.NewRun(context.Background()))
	if !ok || sc.IsSampled() {
		t.Errorf("unsampled run %v (ok %v): want valid ids, not sampled", sc, ok)
	}
}

// TestRootTakesTheRunIDs: children recorded first under the run's ids, the
// root emitted last with WithIDs, make one tree.
func TestRootTakesTheRunIDs(t *testing.T) {
	tr, rec := recorder(t, nil)
	ctx := context.Background()
	run := tr.NewRun(ctx)
	_, child := tr.Tracer().Start(RunContext(ctx, run), "child")
	child.End()
	sc, _ := ParseTraceParent(run)
	_, root := tr.Tracer().Start(WithIDs(ctx, sc), "root", trace.WithNewRoot())
	root.End()
	// Without WithIDs a root gets fresh ids.
	_, other := tr.Tracer().Start(ctx, "other")
	other.End()
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	c, r, o := spans[0], spans[1], spans[2]
	if r.SpanContext().TraceID() != sc.TraceID() || r.SpanContext().SpanID() != sc.SpanID() || r.Parent().IsValid() {
		t.Errorf("root %v, want the run's ids %v and no parent", r.SpanContext(), sc)
	}
	if c.Parent().SpanID() != r.SpanContext().SpanID() || c.SpanContext().TraceID() != sc.TraceID() {
		t.Errorf("child's parent %v, want the root", c.Parent())
	}
	if o.SpanContext().TraceID() == sc.TraceID() {
		t.Error("an unrelated root reused the run's trace id")
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	tr, _ := recorder(t, nil)
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "x")
	ctx, span := tr.Tracer().Start(context.Background(), "work")
	log.InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	want := `"trace_id":"` + span.SpanContext().TraceID().String() + `","span_id":"` + span.SpanContext().SpanID().String() + `"`
	if !strings.Contains(lines[0], want) {
		t.Errorf("traced line %s, want %s", lines[0], want)
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("untraced line has a trace id: %s", lines[1])
	}
}
