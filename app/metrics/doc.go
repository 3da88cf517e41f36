// Package metrics exposes a windrow process's OpenTelemetry metrics on a
// Prometheus /metrics endpoint, with /healthz and /readyz beside it.
//
// Instruments are OpenTelemetry instruments (go.opentelemetry.io/otel/sdk/metric)
// exported through go.opentelemetry.io/otel/exporters/prometheus into a
// registry of their own (never the global one). Their Prometheus names, after
// the exporter's translation (dots to underscores, unit and _total suffixes),
// are listed in Names and documented in docs/metrics.md.
//
// Three sources feed them, none of which touches a hot path:
//
//   - the roles' own counters (collector, compactor and loader Stats), read
//     by asynchronous instruments at scrape time (Process);
//   - a cached cluster view (Cluster): consumer lag and watermarks refreshed
//     every 5 seconds, window states kept from a watch of the windows bucket;
//   - load durations, recorded by the loader's OnLoad hook (ObserveLoad);
//   - the disk-full condition of the process's stores (Options.DiskFull),
//     which /readyz reports too.
package metrics

// Names are the Prometheus names of the metrics windrow exports (histogram
// series add _bucket, _sum and _count). Alert rules and dashboards may use
// these only; a test checks deploy/.
var Names = []string{
	"windrow_collector_events_received_total",
	"windrow_collector_events_staged_total",
	"windrow_collector_events_dead_lettered_total",
	"windrow_collector_events_late_dropped_total",
	"windrow_collector_events_redelivered_total",
	"windrow_collector_segments_written_total",
	"windrow_collector_segment_bytes_total",
	"windrow_collector_flushes_total",
	"windrow_compactor_windows_sealed_total",
	"windrow_compactor_windows_compacted_total",
	"windrow_compactor_results_applied_total",
	"windrow_compactor_results_terminated_total",
	"windrow_loader_commands_total",
	"windrow_loader_rows_total",
	"windrow_loader_load_duration_seconds",
	"windrow_collector_consumer_lag",
	"windrow_source_expired",
	"windrow_watermark_lag_seconds",
	"windrow_watermark_stalled_seconds",
	"windrow_windows",
	"windrow_windows_past_sla",
	"windrow_windows_sla_missed",
	"windrow_batches_written",
	"windrow_batches_loaded",
	"windrow_ready",
	"windrow_disk_full",
}
