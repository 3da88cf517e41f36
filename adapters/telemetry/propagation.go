package telemetry

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"sync"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// propagator is W3C trace context plus baggage.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// HeaderCarrier adapts NATS message headers to a TextMapCarrier. Keys are
// used as given (W3C keys are lower case, as every OpenTelemetry SDK writes
// them).
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key.
func (c HeaderCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys lists the keys.
func (c HeaderCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// Inject writes ctx's span context and baggage into h; nothing when ctx has
// no valid span.
func Inject(ctx context.Context, h nats.Header) {
	if h == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx with the remote span context and baggage of h.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, HeaderCarrier(h))
}

// TraceParent formats sc as a W3C traceparent; "" for an invalid one.
func TraceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	h := nats.Header{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), HeaderCarrier(h))
	return HeaderCarrier(h).Get("traceparent")
}

// ParseTraceParent parses a W3C traceparent; ok is false when it is not one.
func ParseTraceParent(s string) (trace.SpanContext, bool) {
	if s == "" {
		return trace.SpanContext{}, false
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), HeaderCarrier{"traceparent": {s}})
	sc := trace.SpanContextFromContext(ctx)
	return sc, sc.IsValid()
}

// TraceID is the trace id of a traceparent, "" if it is not one.
func TraceID(traceparent string) string {
	if sc, ok := ParseTraceParent(traceparent); ok {
		return sc.TraceID().String()
	}
	return ""
}

// RunContext returns ctx with the window run's root (a traceparent stored
// in the window's state) as remote parent: spans started from it belong to
// the run. Without a valid traceparent, ctx is returned unchanged.
func RunContext(ctx context.Context, traceparent string) context.Context {
	sc, ok := ParseTraceParent(traceparent)
	if !ok {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// NewRun draws the trace id and root span id of a new window run and makes
// the sampling decision with t's sampler (kept in the traceparent's flags,
// which the run's spans follow). It returns "" when tracing is off.
func (t *Tracing) NewRun(ctx context.Context) string {
	if !t.Enabled() {
		return ""
	}
	// A span that is started and never ended is never exported: it only
	// yields fresh ids and the sampler's decision for them.
	_, probe := t.tracer.Start(trace.ContextWithSpanContext(ctx, trace.SpanContext{}), "window run", trace.WithNewRoot())
	// Not sampled: still kept, so that the run's spans follow the decision.
	return TraceParent(probe.SpanContext())
}

// forcedIDs, in a context, are the ids the next root span started from it
// takes (WithIDs).
type forcedIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

type forcedKey struct{}

// WithIDs returns a context in which the next root span started (with
// trace.WithNewRoot, or without a parent) gets exactly these ids: how the
// root of a window run is emitted with the ids its children already use.
// It has effect only on providers made by New.
func WithIDs(ctx context.Context, sc trace.SpanContext) context.Context {
	return context.WithValue(ctx, forcedKey{}, forcedIDs{trace: sc.TraceID(), span: sc.SpanID()})
}

// idGenerator draws random ids, except for a root span started from a
// context made by WithIDs.
type idGenerator struct{}

var (
	rngMu sync.Mutex
	rng   = newRand()
)

func newRand() *rand.Rand {
	var seed [16]byte
	_, _ = crand.Read(seed[:])
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if f, ok := ctx.Value(forcedKey{}).(forcedIDs); ok && f.trace.IsValid() && f.span.IsValid() {
		return f.trace, f.span
	}
	rngMu.Lock()
	defer rngMu.Unlock()
	var tid trace.TraceID
	var sid trace.SpanID
	for !tid.IsValid() {
		binary.NativeEndian.PutUint64(tid[:8], rng.Uint64())
		binary.NativeEndian.PutUint64(tid[8:], rng.Uint64())
	}
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rng.Uint64())
	}
	return tid, sid
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	rngMu.Lock()
	defer rngMu.Unlock()
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rng.Uint64())
	}
	return sid
}
