package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Service names of windrow's roles, as they appear in Jaeger.
const (
	ServiceCollector = "windrow-collector"
	ServiceCompactor = "windrow-compactor"
	ServiceLoader    = "windrow-loader"
)

// Instrumentation scope of windrow's spans.
const scope = "github.com/windrow/windrow"

// Config configures the tracing of one service.
type Config struct {
	// Service is the service name, e.g. ServiceCollector. Required.
	Service string
	// Instance is service.instance.id (e.g. "collector-1"); optional.
	Instance string
	// Version is service.version; optional.
	Version string
	// ServiceNameFromEnv lets OTEL_SERVICE_NAME replace Service: for a
	// process that runs one role only.
	ServiceNameFromEnv bool
	// SpanProcessor, if set, receives the spans instead of the OTLP
	// exporter, and tracing is on whatever the environment says (tests:
	// tracetest.NewSpanRecorder()).
	SpanProcessor sdktrace.SpanProcessor
	// Sampler overrides OTEL_TRACES_SAMPLER; optional.
	Sampler sdktrace.Sampler
}

// Tracing is one service's tracer provider.
type Tracing struct {
	provider trace.TracerProvider
	tracer   trace.Tracer
	enabled  bool
	shutdown func(context.Context) error
}

// Disabled is tracing that records nothing.
func Disabled() *Tracing {
	p := noop.NewTracerProvider()
	return &Tracing{provider: p, tracer: p.Tracer(scope), shutdown: func(context.Context) error { return nil }}
}

// EndpointConfigured reports whether the environment asks for spans to be
// exported: an OTLP endpoint is set and the SDK and trace exporter are not
// turned off.
func EndpointConfigured() bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// New builds the tracing of one service: Disabled when no endpoint is
// configured (see EndpointConfigured) and no SpanProcessor is given.
func New(ctx context.Context, cfg Config) (*Tracing, error) {
	if cfg.Service == "" {
		return nil, errors.New("telemetry: Service is required")
	}
	var proc sdktrace.SpanProcessor
	switch {
	case cfg.SpanProcessor != nil:
		proc = cfg.SpanProcessor
	case EndpointConfigured():
		// Endpoint, headers, timeout, compression and TLS from the
		// OTEL_EXPORTER_OTLP_* variables.
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
		}
		proc = sdktrace.NewBatchSpanProcessor(exp)
	default:
		return Disabled(), nil
	}
	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(proc),
		sdktrace.WithIDGenerator(idGenerator{}),
	}
	if cfg.Sampler != nil {
		opts = append(opts, sdktrace.WithSampler(cfg.Sampler))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracing{provider: tp, tracer: tp.Tracer(scope), enabled: true, shutdown: tp.Shutdown}, nil
}

func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.Service), attribute.String("service.namespace", "windrow")}
	if cfg.Instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.Instance))
	}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	// Later detectors win: the environment may rename the service only when
	// the process runs one role.
	opts := []resource.Option{resource.WithTelemetrySDK(), resource.WithHost(), resource.WithProcessPID()}
	if cfg.ServiceNameFromEnv {
		opts = append(opts, resource.WithAttributes(attrs...), resource.WithFromEnv())
	} else {
		opts = append(opts, resource.WithFromEnv(), resource.WithAttributes(attrs...))
	}
	res, err := resource.New(ctx, opts...)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	// A partial resource (a detector failed) is still usable.
	return res, nil
}

// Enabled reports whether spans are recorded.
func (t *Tracing) Enabled() bool { return t != nil && t.enabled }

// Tracer is the service's tracer.
func (t *Tracing) Tracer() trace.Tracer {
	if t == nil {
		return Disabled().tracer
	}
	return t.tracer
}

// Provider is the service's tracer provider.
func (t *Tracing) Provider() trace.TracerProvider {
	if t == nil {
		return Disabled().provider
	}
	return t.provider
}

// Shutdown exports what is buffered and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.shutdown(ctx)
}
