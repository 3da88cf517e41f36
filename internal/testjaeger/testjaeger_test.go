package testjaeger

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// provider returns a tracer provider for service that exports to j over
// OTLP/HTTP (opts empty: wherever the OTEL_EXPORTER_OTLP_* environment
// says); it is shut down, flushing, when the test ends.
func provider(t *testing.T, service string, opts ...otlptracehttp.Option) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		t.Fatalf("otlptracehttp: %v", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
	)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// TestRoundTrip sends a parent span of svc-a and a child span of svc-b in
// one trace to a real Jaeger over OTLP/HTTP and reads them back through the
// query API: both spans, the parent/child reference, both services, tags.
func TestRoundTrip(t *testing.T) {
	j := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Before anything is sent: the query API answers, with no services.
	if svcs, err := j.Services(ctx); err != nil || len(svcs) != 0 {
		t.Fatalf("Services before sending = %v, %v; want none", svcs, err)
	}

	// svc-a is configured in code, svc-b through the environment, the way
	// windrow's processes will be.
	tpA := provider(t, "svc-a", otlptracehttp.WithEndpointURL(j.OTLPTracesURL()))
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", j.OTLPHTTPEndpoint)
	tpB := provider(t, "svc-b")
	pctx, parent := tpA.Tracer("testjaeger").Start(ctx, "parent-op",
		trace.WithAttributes(attribute.String("windrow.test", "parent"), attribute.Int64("windrow.n", 1<<53+1)))
	_, child := tpB.Tracer("testjaeger").Start(pctx, "child-op",
		trace.WithAttributes(attribute.String("windrow.test", "child")))
	time.Sleep(2 * time.Millisecond)
	child.End()
	parent.End()
	for _, tp := range []*sdktrace.TracerProvider{tpA, tpB} {
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	traceID := parent.SpanContext().TraceID().String()
	parentID := parent.SpanContext().SpanID().String()
	childID := child.SpanContext().SpanID().String()

	// Spans of the two services may be stored in different batches: wait
	// until the trace found by svc-a has both.
	traces, err := j.WaitForTraces(ctx, "svc-a", func(trs []Trace) bool {
		return slices.ContainsFunc(trs, func(tr Trace) bool { return tr.TraceID == traceID && len(tr.Spans) == 2 })
	})
	if err != nil {
		t.Fatalf("%v; found %+v", err, traces)
	}

	svcs, err := j.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(svcs)
	if !slices.Equal(svcs, []string{"svc-a", "svc-b"}) {
		t.Errorf("Services = %v, want [svc-a svc-b]", svcs)
	}

	tr, err := j.GetTrace(ctx, traceID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.TraceID != traceID || len(tr.Spans) != 2 {
		t.Fatalf("GetTrace(%s) = trace %s with %d spans, want 2 spans", traceID, tr.TraceID, len(tr.Spans))
	}
	p, ok := tr.SpanByID(parentID)
	if !ok {
		t.Fatalf("no parent span %s in %+v", parentID, tr.Spans)
	}
	c, ok := tr.SpanByID(childID)
	if !ok {
		t.Fatalf("no child span %s in %+v", childID, tr.Spans)
	}
	if p.OperationName != "parent-op" || c.OperationName != "child-op" {
		t.Errorf("operations = %q, %q; want parent-op, child-op", p.OperationName, c.OperationName)
	}
	if got := p.ParentSpanID(); got != "" {
		t.Errorf("parent span has parent %s, want none", got)
	}
	if got := c.ParentSpanID(); got != parentID {
		t.Errorf("child's CHILD_OF = %q, want the parent %s (references %+v)", got, parentID, c.References)
	}
	if c.References[0].TraceID != traceID {
		t.Errorf("child's reference trace = %s, want %s", c.References[0].TraceID, traceID)
	}
	if got := tr.Service(p); got != "svc-a" {
		t.Errorf("parent's service = %q, want svc-a", got)
	}
	if got := tr.Service(c); got != "svc-b" {
		t.Errorf("child's service = %q, want svc-b", got)
	}
	if got := tr.Services(); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"svc-a", "svc-b"}) {
		t.Errorf("trace services = %v", got)
	}
	if kv, ok := p.Tag("windrow.test"); !ok || kv.String() != "parent" || kv.Type != "string" {
		t.Errorf("parent tag windrow.test = %+v, %v", kv, ok)
	}
	if kv, ok := p.Tag("windrow.n"); !ok || kv.String() != "9007199254740993" || kv.Type != "int64" {
		t.Errorf("parent tag windrow.n = %+v, %v; want int64 9007199254740993 (exact)", kv, ok)
	}
	if p.Duration <= 0 || c.Duration <= 0 || p.Start().Before(time.Now().Add(-time.Minute)) {
		t.Errorf("times: parent start %v dur %dus, child dur %dus", p.Start(), p.Duration, c.Duration)
	}

	// Search by tag: the child's tag finds the trace under svc-b, not svc-a.
	found, err := j.FindTraces(ctx, "svc-b", map[string]string{"windrow.test": "child"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].TraceID != traceID {
		t.Errorf("FindTraces(svc-b, windrow.test=child) = %d traces, want the one trace %s", len(found), traceID)
	}
	found, err = j.FindTraces(ctx, "svc-a", map[string]string{"windrow.test": "child"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 0 {
		t.Errorf("FindTraces(svc-a, windrow.test=child) = %d traces, want none", len(found))
	}

	if _, err := j.GetTrace(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, ErrTraceNotFound) {
		t.Errorf("GetTrace(unknown) error = %v, want ErrTraceNotFound", err)
	}
}

// TestTwoInstances: two Jaegers run side by side on their own ports, and
// what one receives the other does not see.
func TestTwoInstances(t *testing.T) {
	j1, j2 := Start(t), Start(t)
	if j1.QueryURL == j2.QueryURL || j1.OTLPHTTPEndpoint == j2.OTLPHTTPEndpoint || j1.OTLPGRPCEndpoint == j2.OTLPGRPCEndpoint {
		t.Fatalf("instances share ports: %+v %+v", j1, j2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tp := provider(t, "only-in-one", otlptracehttp.WithEndpointURL(j1.OTLPTracesURL()))
	_, span := tp.Tracer("testjaeger").Start(ctx, "op")
	span.End()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := j1.WaitForTraces(ctx, "only-in-one", func(trs []Trace) bool { return len(trs) == 1 }); err != nil {
		t.Fatal(err)
	}
	if svcs, err := j2.Services(ctx); err != nil || len(svcs) != 0 {
		t.Errorf("second instance's services = %v, %v; want none", svcs, err)
	}
}

// TestWaitForTracesGivesUp: the wait is bounded by its context.
func TestWaitForTracesGivesUp(t *testing.T) {
	j := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := j.WaitForTraces(ctx, "nobody", func(trs []Trace) bool { return len(trs) > 0 })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

// TestBinary: the binary is looked for where the build script puts it
// (testbin.Tool covers the lookup itself).
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WINDROW_JAEGER_BIN", "")
	t.Setenv("WINDROW_TOOLS_CACHE", dir)
	want := filepath.Join(dir, "jaeger-"+ModuleVersion, "jaeger")
	if p, err := CachePath(); err != nil || p != want {
		t.Fatalf("CachePath = %q, %v; want %q", p, err, want)
	}
	if _, err := Binary(); err == nil || !strings.Contains(err.Error(), "tools/jaeger/build.sh") {
		t.Fatalf("Binary with nothing built: err = %v, want the build hint", err)
	}
}

// TestStartFailure: a Jaeger that exits at start is reported with its log,
// and a port lost to someone else is told apart (Start retries on it). It
// runs stand-in scripts, not Jaeger.
func TestStartFailure(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("stand-in binaries are shell scripts")
	}
	dir := t.TempDir()
	script := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}

	_, err := start(t, script("boom", "echo 'cannot start: boom' >&2; exit 3"), dir, 1)
	if err == nil || errors.Is(err, errPortTaken) || !strings.Contains(err.Error(), "cannot start: boom") {
		t.Errorf("exiting binary: err = %v; want its log, not errPortTaken", err)
	}

	_, err = start(t, script("taken", "echo 'listen tcp 127.0.0.1:4318: bind: address already in use' >&2; exit 1"), dir, 2)
	if !errors.Is(err, errPortTaken) {
		t.Errorf("port taken: err = %v; want errPortTaken", err)
	}
}
