package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/services/collector"
	"github.com/windrow/windrow/services/compactor"
	"github.com/windrow/windrow/services/loader"
)

// Process is what the metrics read, at scrape time, from the roles running
// in this process. Counters must only grow: a role restarted in the process
// adds its new counts to its predecessors' (app/stack does that).
type Process interface {
	// CollectorStats returns the collectors' counters by policy.
	CollectorStats() map[string]collector.Stats
	// CompactorStats returns the compactors' counters by policy.
	CompactorStats() map[string]compactor.Stats
	// LoaderStats returns the loader's counters, if a loader runs here.
	LoaderStats() (loader.Stats, bool)
}

// Options configure Metrics.
type Options struct {
	// Instance names this process (resource attribute service.instance.id,
	// a label of target_info).
	Instance string
	// Roles this process runs (resource attribute windrow.roles).
	Roles []string
	// Process supplies the roles' counters; nil: none.
	Process Process
	// Ready, if set, is read for the windrow_ready gauge at each scrape
	// (it should cache, as app/stack's does). It returns what is not
	// ready; empty means ready.
	Ready func(context.Context) []string
	// DiskFull, if set, is read for the windrow_disk_full gauge at each
	// scrape (it must be cheap): the disk-full condition of each store the
	// process writes.
	DiskFull func() []DiskFull
	// Now is the clock of the watermark lag. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Metrics holds a process's instruments, the OpenTelemetry meter provider
// they belong to and the Prometheus registry it exports to. Each Metrics has
// its own registry (never the global one), so several stacks can run in one
// process.
type Metrics struct {
	opts     Options
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider
	loadDur  metric.Float64Histogram
	cluster  atomic.Pointer[Cluster]
	handler  http.Handler
	shutdown sync.Once
}

// LoadDurationBuckets are the bucket bounds (seconds) of
// windrow_loader_load_duration_seconds: a load is a DuckDB transaction of
// one batch file, from milliseconds to minutes.
var LoadDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Attribute keys (Prometheus labels).
const (
	LabelPolicy = "policy"
	LabelStatus = "status"
	LabelStore  = "store"
)

// The stores of the windrow_disk_full gauge (its store label).
const (
	StoreObjects   = "objects"   // the object store (staging segments, batches)
	StoreWarehouse = "warehouse" // the loader's warehouse
)

// DiskFull is the disk-full condition of one store of a process: Full from
// the first write that found no space left until a write succeeds again.
type DiskFull struct {
	Store string // StoreObjects or StoreWarehouse
	Where string // the store for people: a directory, a DuckDB file
	Full  bool
	Since time.Time // the first failed write; zero unless Full
}

// Reason is what /readyz says of a full store.
func (d DiskFull) Reason() string {
	return fmt.Sprintf("disk full: %s since %s (%s): its writes are retried with backoff until space is freed",
		d.Store, d.Since.UTC().Format(time.RFC3339), d.Where)
}

// New builds the instruments and the registry; nothing is served until a
// Server serves Handler.
func New(opts Options) (*Metrics, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return nil, fmt.Errorf("metrics: prometheus exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "windrow"),
		attribute.String("service.instance.id", opts.Instance), attribute.String("windrow.roles", strings.Join(opts.Roles, ",")))
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	m := &Metrics{opts: opts, reg: reg, provider: provider}
	if err := m.instruments(provider.Meter("github.com/windrow/windrow/app/metrics")); err != nil {
		_ = provider.Shutdown(context.Background())
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m.handler = promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError, // one bad metric must not hide the others
		Registry:            reg,
		MaxRequestsInFlight: 4,
		Timeout:             20 * time.Second,
	}))
	return m, nil
}

// Handler serves the registry in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry is the Prometheus registry the metrics are exported to.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetCluster makes the cluster gauges (consumer lag, watermark lag, windows
// by status, SLA) read c's cached snapshot. Nil turns them off.
func (m *Metrics) SetCluster(c *Cluster) { m.cluster.Store(c) }

// ObserveLoad records one load attempt of the loader (loader.Config.OnLoad).
func (m *Metrics) ObserveLoad(policy, status string, d time.Duration, rows int64) {
	m.loadDur.Record(context.Background(), d.Seconds(),
		metric.WithAttributeSet(attribute.NewSet(attribute.String(LabelPolicy, policy), attribute.String(LabelStatus, status))))
}

// Shutdown stops the meter provider; scrapes after it export nothing from
// OpenTelemetry. It is idempotent.
func (m *Metrics) Shutdown(ctx context.Context) (err error) {
	m.shutdown.Do(func() { err = m.provider.Shutdown(ctx) })
	return err
}

// instruments creates every instrument and the callbacks that observe them.
func (m *Metrics) instruments(meter metric.Meter) error {
	var errs []error
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := meter.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	// The roles' counters, derived from the tags of their Stats fields.
	shared := map[string]metric.Int64ObservableCounter{}
	collectorCounters, err := statCounters(meter, reflect.TypeFor[collector.Stats](), shared)
	errs = append(errs, err)
	compactorCounters, err := statCounters(meter, reflect.TypeFor[compactor.Stats](), shared)
	errs = append(errs, err)
	loaderCounters, err := statCounters(meter, reflect.TypeFor[loader.Stats](), shared)
	errs = append(errs, err)
	// Cluster view (per policy), from NATS, cached.
	lag := gauge("windrow.collector.consumer.lag", "{message}", "Messages of the source stream the policy's collectors have not staged yet: pending plus delivered-unacked of the collector consumer.")
	expired := gauge("windrow.source.expired", "{event}", "Events the policy's source stream removed (its limits) before the collectors delivered them: lost upstream of windrow. "+
		"Counts messages of any subject when the stream holds other subjects than the policy's.")
	wmLag, err := meter.Float64ObservableGauge("windrow.watermark.lag", metric.WithUnit("s"),
		metric.WithDescription("Wall clock minus the policy's watermark (at least max_out_of_order); large during a backfill."))
	errs = append(errs, err)
	wmStalled, err := meter.Float64ObservableGauge("windrow.watermark.stalled", metric.WithUnit("s"),
		metric.WithDescription("Time since the policy's watermark last advanced: the pipeline is behind when it grows (a backfill far behind the wall clock keeps it near 0)."))
	errs = append(errs, err)
	windowsG := gauge("windrow.windows", "{window}", "Window states in the windows bucket, by status.")
	pastSLA := gauge("windrow.windows.past_sla", "{window}", "Windows not LOADED although window end + sla.deadline has passed.")
	slaMissed := gauge("windrow.windows.sla_missed", "{window}", "Windows in the bucket that missed sla.deadline: still unloaded past it, or loaded after it.")
	batches := gauge("windrow.batches.written", "{batch}", "Batch files the compactors wrote for the windows in the bucket.")
	batchesLoaded := gauge("windrow.batches.loaded", "{batch}", "Batches of the windows in the bucket whose load result was applied.")
	ready := gauge("windrow.ready", "", "1 when /readyz reports ready, else 0.")
	diskFull := gauge("windrow.disk_full", "", "1 while the store's writes find its disk full (no space left or quota exceeded; retried with backoff), else 0; by store: objects, warehouse.")
	m.loadDur, err = meter.Float64Histogram("windrow.loader.load.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of load attempts, by policy and status: loaded, duplicate, error (the attempt failed)."),
		metric.WithExplicitBucketBoundaries(LoadDurationBuckets...))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return err
	}

	pol := func(p string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String(LabelPolicy, p)))
	}
	polStatus := func(p, st string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String(LabelPolicy, p), attribute.String(LabelStatus, st)))
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		p := m.opts.Process
		if p == nil {
			return nil
		}
		for policy, st := range p.CollectorStats() {
			observeStats(o, collectorCounters, st, attribute.String(LabelPolicy, policy))
		}
		for policy, st := range p.CompactorStats() {
			observeStats(o, compactorCounters, st, attribute.String(LabelPolicy, policy))
		}
		if st, ok := p.LoaderStats(); ok {
			observeStats(o, loaderCounters, st)
		}
		return nil
	}, instrumentsOf(collectorCounters, compactorCounters, loaderCounters)...)
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		c := m.cluster.Load()
		if c == nil {
			return nil
		}
		snap := c.Snapshot()
		now := m.opts.Now()
		for _, name := range snap.policyNames() {
			ps := snap.Policies[name]
			a := pol(name)
			if ps.HasLag {
				o.ObserveInt64(lag, ps.Lag, a)
			}
			if ps.HasExpired {
				o.ObserveInt64(expired, ps.Expired, a)
			}
			if !ps.Watermark.IsZero() {
				o.ObserveFloat64(wmLag, max(now.Sub(ps.Watermark).Seconds(), 0), a)
				if !ps.WatermarkMoved.IsZero() {
					o.ObserveFloat64(wmStalled, max(now.Sub(ps.WatermarkMoved).Seconds(), 0), a)
				}
			}
			if !snap.WindowsSynced {
				continue
			}
			for _, st := range Statuses {
				o.ObserveInt64(windowsG, ps.Windows[st], polStatus(name, string(st)))
			}
			o.ObserveInt64(pastSLA, ps.PastSLA, a)
			o.ObserveInt64(slaMissed, ps.SLAMissed, a)
			o.ObserveInt64(batches, ps.Batches, a)
			o.ObserveInt64(batchesLoaded, ps.BatchesLoaded, a)
		}
		return nil
	}, lag, expired, wmLag, wmStalled, windowsG, pastSLA, slaMissed, batches, batchesLoaded)
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		if m.opts.Ready == nil {
			return nil
		}
		// The exporter's context has no deadline (client_golang gives its
		// collectors none): bound the check here.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		v := int64(1)
		if len(m.opts.Ready(ctx)) > 0 {
			v = 0
		}
		o.ObserveInt64(ready, v)
		return nil
	}, ready)
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		if m.opts.DiskFull == nil {
			return nil
		}
		for _, d := range m.opts.DiskFull() {
			v := int64(0)
			if d.Full {
				v = 1
			}
			o.ObserveInt64(diskFull, v, metric.WithAttributeSet(attribute.NewSet(attribute.String(LabelStore, d.Store))))
		}
		return nil
	}, diskFull)
	return err
}

// Statuses are the window statuses of the windrow_windows gauge, each
// exported for every policy (0 when none).
var Statuses = []messages.WindowStatus{messages.StatusOpen, messages.StatusSealed, messages.StatusCompacted, messages.StatusLoaded, messages.StatusFailed}

func (s Snapshot) policyNames() []string {
	names := make([]string, 0, len(s.Policies))
	for n := range s.Policies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
