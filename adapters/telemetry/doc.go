// Package telemetry sets up windrow's tracing with OpenTelemetry and carries
// trace context across NATS.
//
// # Setup
//
// New builds one TracerProvider per service (windrow-collector,
// windrow-compactor, windrow-loader: one process may run all three, and
// each shows in Jaeger under its own name). Tracing is on when an OTLP
// endpoint is configured by the standard variables
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; spans
// go over OTLP/HTTP), and off when none is, or OTEL_SDK_DISABLED=true, or
// OTEL_TRACES_EXPORTER=none. Off, the provider is OpenTelemetry's no-op one:
// starting a span allocates nothing and records nothing. The sampler comes
// from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default: parent-based,
// always on); resource attributes from OTEL_RESOURCE_ATTRIBUTES, and
// OTEL_SERVICE_NAME replaces the service name when the process runs a single
// role. Shutdown flushes what is buffered.
//
// # One trace per window run
//
// A window's run crosses processes and hours, so no process can hold its
// root span open. Instead the first collector that registers a segment of
// a window draws the run's trace id and root span id (and the sampling
// decision, from the configured sampler) and stores them in the window's
// state as a W3C traceparent. Every span of the run is a child of that root:
// the collectors' segment spans, the compactor's seal and compaction spans,
// and, through the traceparent header of the load command and the load
// result, the loader's load and the compactor's handling of its result.
// When the window is LOADED (or FAILED), the compactor that records it
// emits the root span itself, with the stored ids (see WithIDs), starting
// when the window's first event was staged and ending now, so that the root
// spans the whole run. Producers' spans (a traceparent header on an event)
// are linked from the segment that took the event.
//
// # Across NATS
//
// Inject and Extract move W3C trace context (traceparent, tracestate) and
// baggage through NATS message headers; windrow injects into every message
// it publishes that belongs to a run.
package telemetry
