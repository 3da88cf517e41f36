// Package stack wires windrow's services together in one process: NATS
// (embedded or external), the object store, the warehouse and any of the
// collector, compactor and loader roles. It is what `windrow up`, `windrow
// demo` and the single-role commands run; each role still talks to the
// others only through NATS, exactly as when they run as separate processes.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
	"github.com/windrow/windrow/app/metrics"
	"github.com/windrow/windrow/app/policyrun"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/services/collector"
	"github.com/windrow/windrow/services/compactor"
	"github.com/windrow/windrow/services/loader"
	"github.com/windrow/windrow/windows"
)

// Roles.
const (
	RoleCollector = "collector"
	RoleCompactor = "compactor"
	RoleLoader    = "loader"
)

// AllRoles is every role, the default of `windrow up`.
var AllRoles = []string{RoleCollector, RoleCompactor, RoleLoader}

// Config configures a stack.
type Config struct {
	// DataDir holds everything local: the embedded NATS store, the object
	// store and the DuckDB file, unless set apart. Default ./windrow-data.
	DataDir string
	// Embedded runs an in-process NATS server (JetStream, file store under DataDir/nats).
	Embedded bool
	// NATSPort is the embedded server's port. Default 4222; when it is taken,
	// a free port is used and written to DataDir/nats.url.
	NATSPort int
	// NATS is the connection to an existing server when not Embedded.
	NATS natsx.ClientConfig
	// ObjectDir is the object store directory. Default DataDir/objects.
	ObjectDir string
	// DuckDB is the warehouse file. Default DataDir/warehouse.duckdb.
	DuckDB string
	// Roles to run. Nil means all; empty means none (a client of the stack).
	Roles []string
	// Instance names this process in window leases and segment names; keep it
	// stable across restarts. Default the host name.
	Instance string
	// AckWait of the collectors' and the loader's consumers; 0 keeps each
	// service's default (2m). Lower values make redelivery after a crash
	// faster, at the price of redelivering slow work.
	AckWait time.Duration
	Logger  *slog.Logger
	// Tracing per role (RoleCollector…); a role missing from the map gets
	// telemetry.New for its service name, which follows the OTEL_*
	// environment (off without an OTLP endpoint). Close shuts them down.
	Tracing map[string]*telemetry.Tracing
	// ConnectWait is how long to keep trying to reach an external NATS
	// server that is not up yet (refused or dropped connections; never
	// authentication or TLS errors). 0: fail at the first attempt. The role
	// commands wait 2 minutes, so services can start in any order.
	ConnectWait time.Duration
	// WrapWarehouse, if set, wraps the warehouse the loader uses: fault
	// injection in tests (a warehouse that fails now and then).
	WrapWarehouse func(warehouse.Warehouse) warehouse.Warehouse
	// MetricsAddr, unless "" or "off", is where the process serves
	// /metrics, /healthz and /readyz (app/metrics), from Open until
	// Close. Port 0 picks a free port (see MetricsURL).
	MetricsAddr string
}

func (c *Config) setDefaults() {
	if c.DataDir == "" {
		c.DataDir = "windrow-data"
	}
	if c.ObjectDir == "" {
		c.ObjectDir = filepath.Join(c.DataDir, "objects")
	}
	if c.DuckDB == "" {
		c.DuckDB = filepath.Join(c.DataDir, "warehouse.duckdb")
	}
	if c.Roles == nil {
		c.Roles = AllRoles
	}
	if c.Instance == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "windrow"
		}
		c.Instance = host
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	for _, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			errs = append(errs, fmt.Errorf("role %q: want one of %v", r, AllRoles))
		}
	}
	if c.NATSPort < -1 || c.NATSPort > 65535 {
		errs = append(errs, fmt.Errorf("nats port %d: want 0..65535", c.NATSPort))
	}
	return errors.Join(errs...)
}

// Stack is a started set of services.
type Stack struct {
	cfg        Config
	Server     *natsx.Embedded // nil when connected to an external server
	Conn       *nats.Conn
	JS         jetstream.JetStream
	Store      objstore.Store
	States     *statestore.Store
	Watermarks *statestore.Watermarks
	Policies   *policystore.Store
	Warehouse  *duckdbwh.Warehouse // nil unless the loader role runs
	NATSURL    string
	Log        *slog.Logger

	tracing map[string]*telemetry.Tracing

	// Metrics are the process's instruments; nil without Config.MetricsAddr.
	Metrics       *metrics.Metrics
	metricsServer *metrics.Server
	stopCluster   context.CancelFunc
	clusterDone   chan struct{}

	opened  atomic.Bool // Open has finished
	running atomic.Bool // Run is running the roles

	mu         sync.Mutex
	collectors map[string]*collector.Service // running workers, by policy
	compactors map[string]*compactor.Service
	// collectorVersions is the policy version each running collector runs.
	collectorVersions map[string]uint64
	// Counters of this process's workers that stopped (a restart, a new
	// policy version), so that the counters of a policy never go back.
	collectorsDone map[string]collector.Stats
	compactorsDone map[string]compactor.Stats
	loader         *loader.Service
	loaderRunning  bool

	readyMu       sync.Mutex // one deep readiness check at a time
	readyAt       time.Time
	readyProblems []string
}

// Open connects (or starts NATS), provisions streams and buckets, and opens
// the object store and the warehouse. Run starts the roles.
func Open(ctx context.Context, cfg Config) (*Stack, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Stack{cfg: cfg, Log: cfg.Logger, collectors: map[string]*collector.Service{}, compactors: map[string]*compactor.Service{},
		collectorsDone: map[string]collector.Stats{}, compactorsDone: map[string]compactor.Stats{},
		tracing: map[string]*telemetry.Tracing{}}
	for _, role := range cfg.Roles {
		if t := cfg.Tracing[role]; t != nil {
			s.tracing[role] = t
			continue
		}
		t, err := telemetry.New(ctx, telemetry.Config{Service: "windrow-" + role, Instance: cfg.Instance + "/" + role,
			ServiceNameFromEnv: len(cfg.Roles) == 1})
		if err != nil {
			return nil, err
		}
		s.tracing[role] = t
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if !metrics.Disabled(cfg.MetricsAddr) {
		// First, so that a taken port fails before anything starts, and
		// /healthz answers while NATS starts (/readyz says "starting").
		if err := s.startMetrics(); err != nil {
			return nil, err
		}
	}
	if cfg.Embedded {
		srv, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: filepath.Join(cfg.DataDir, "nats"), Port: cfg.NATSPort, FallbackPort: true})
		if err != nil {
			return nil, err
		}
		s.Server = srv
		s.NATSURL = srv.ClientURL()
		if srv.FellBack {
			cfg.Logger.Warn(fmt.Sprintf("port %d is taken (another NATS server runs there?); the embedded NATS server listens on %s instead", max(cfg.NATSPort, 4222), s.NATSURL))
		}
		if err := os.WriteFile(URLFile(cfg.DataDir), []byte(s.NATSURL+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", URLFile(cfg.DataDir), err)
		}
		nc, err := natsx.Connect(natsx.ClientConfig{Name: "windrow " + cfg.Instance}, srv.Server())
		if err != nil {
			return nil, err
		}
		s.Conn = nc
	} else {
		c := cfg.NATS
		if c.Name == "" {
			c.Name = "windrow " + cfg.Instance
		}
		nc, err := natsx.ConnectRetry(ctx, c, cfg.ConnectWait, s.Log)
		if err != nil {
			return nil, err
		}
		s.Conn = nc
		s.NATSURL = natsx.ConnectedURL(nc) // hides a token too, not only a password
	}
	js, err := jetstream.New(s.Conn, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return nil, err
	}
	s.JS = js
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := natsx.WaitJetStream(wctx, js); err != nil {
		return nil, err
	}
	topo, err := natsx.Provision(wctx, js)
	if err != nil {
		return nil, err
	}
	s.States = statestore.New(topo.Windows)
	s.Watermarks = statestore.NewWatermarks(topo.Watermarks)
	s.Policies = policystore.New(topo.Policies)
	s.Policies.SetShapeFloor(s.shapeFloor)
	if s.Metrics != nil && slices.Contains(cfg.Roles, RoleCompactor) {
		if err := s.startCluster(topo.Windows); err != nil {
			return nil, err
		}
	}
	if s.Store, err = local.New(cfg.ObjectDir); err != nil {
		return nil, err
	}
	if slices.Contains(cfg.Roles, RoleLoader) {
		if s.Warehouse, err = duckdbwh.Open(duckdbwh.Config{Path: cfg.DuckDB, Objects: s.Store}); err != nil {
			return nil, err
		}
	}
	ok = true
	s.opened.Store(true)
	return s, nil
}

// URLFile is where an embedded server's client URL is written, so that other
// windrow commands on the same data directory find it.
func URLFile(dataDir string) string { return filepath.Join(dataDir, "nats.url") }

// Run runs the configured roles until ctx is done, or until one fails (then
// it stops the others and returns that error). Each role stops gracefully
// (see supervise).
func (s *Stack) Run(ctx context.Context) error {
	var l *loader.Service
	if slices.Contains(s.cfg.Roles, RoleLoader) {
		var err error
		if l, err = s.newLoader(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // one role failing stops the others
	s.running.Store(true)
	defer s.running.Store(false)
	var wg sync.WaitGroup
	errs := make(chan error, len(s.cfg.Roles))
	run := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	for _, role := range s.cfg.Roles {
		switch role {
		case RoleCollector:
			run(role, func(ctx context.Context) error {
				return policyrun.Run(ctx, s.Policies, s.Log, s.runCollector)
			})
		case RoleCompactor:
			run(role, func(ctx context.Context) error {
				return policyrun.Run(ctx, s.Policies, s.Log, s.runCompactor)
			})
		case RoleLoader:
			run(role, func(ctx context.Context) error {
				s.setLoaderRunning(true)
				defer s.setLoaderRunning(false)
				return supervise(ctx, RoleLoader, l, s.Log)
			})
		}
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
		cancel()
	}
	wg.Wait()
	return err
}

// newLoader builds the loader role's service over the stack's warehouse.
func (s *Stack) newLoader() (*loader.Service, error) {
	var wh warehouse.Warehouse = s.Warehouse
	if s.cfg.WrapWarehouse != nil {
		wh = s.cfg.WrapWarehouse(wh)
	}
	lcfg := loader.Config{Tracing: s.tracing[RoleLoader], JS: s.JS, Warehouse: wh, Objects: s.Store, Instance: s.cfg.Instance + "/loader", Logger: s.Log, AckWait: s.cfg.AckWait}
	if s.Metrics != nil {
		lcfg.OnLoad = s.Metrics.ObserveLoad
	}
	l, err := loader.New(lcfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.loader = l
	s.mu.Unlock()
	return l, nil
}

func (s *Stack) runCollector(ctx context.Context, p *windows.Policy) error {
	c, err := collector.New(collector.Config{Tracing: s.tracing[RoleCollector], JS: s.JS, Store: s.Store, States: s.States, Watermarks: s.Watermarks, Policy: p, Instance: s.cfg.Instance + "/collector", Logger: s.Log, AckWait: s.cfg.AckWait})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.collectors[p.Name] = c
	if s.collectorVersions == nil {
		s.collectorVersions = map[string]uint64{}
	}
	s.collectorVersions[p.Name] = p.Version
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.collectors[p.Name] == c {
			delete(s.collectors, p.Name)
			delete(s.collectorVersions, p.Name)
		}
		s.collectorsDone[p.Name] = addStats(s.collectorsDone[p.Name], c.Stats())
	}()
	return supervise(ctx, RoleCollector+" "+p.Name, c, s.Log)
}

func (s *Stack) runCompactor(ctx context.Context, p *windows.Policy) error {
	c, err := compactor.New(compactor.Config{Tracing: s.tracing[RoleCompactor], JS: s.JS, Store: s.Store, States: s.States, Watermarks: s.Watermarks, Policy: p, Instance: s.cfg.Instance + "/compactor", Logger: s.Log})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.compactors[p.Name] = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.compactors[p.Name] == c {
			delete(s.compactors, p.Name)
		}
		s.compactorsDone[p.Name] = addStats(s.compactorsDone[p.Name], c.Stats())
	}()
	return supervise(ctx, RoleCompactor+" "+p.Name, c, s.Log)
}

// CollectorStats returns the counters of this process's collectors of a
// policy since Open, its restarted workers' included; false if no collector
// of the policy ran.
func (s *Stack) CollectorStats(policy string) (collector.Stats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, done := s.collectorsDone[policy]
	c, ok := s.collectors[policy]
	if ok {
		st = addStats(st, c.Stats())
	}
	return st, ok || done
}

// CollectorVersion returns the policy version this process's collector of a
// policy runs; false when none runs.
func (s *Stack) CollectorVersion(policy string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.collectorVersions[policy]
	return v, ok
}

// ApplyPolicy validates and stores one policy file and makes sure its source
// stream exists, so that producers can publish right away.
func (s *Stack) ApplyPolicy(ctx context.Context, filename string, data []byte) (*windows.Policy, error) {
	p, err := s.Policies.Apply(ctx, filename, data)
	if err != nil {
		return nil, err
	}
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		return nil, fmt.Errorf("policy %s: %w", p.Name, err)
	}
	return p, nil
}

// ApplyPolicyFiles validates and stores policy files; a directory applies
// every *.yaml and *.yml file in it. Every invalid file is reported.
func (s *Stack) ApplyPolicyFiles(ctx context.Context, paths []string) ([]*windows.Policy, error) {
	files, err := PolicyFiles(paths)
	if err != nil {
		return nil, err
	}
	var out []*windows.Policy
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := s.ApplyPolicy(ctx, f, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// PolicyFiles expands directories into their YAML files.
func PolicyFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("policy path: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(p, pat))
			files = append(files, m...)
		}
	}
	return files, nil
}

// Close releases everything Open acquired: the metrics server, the
// warehouse, the connection (drained, so pending acks and publishes go out)
// and the embedded server.
func (s *Stack) Close() error {
	var errs []error
	errs = append(errs, s.stopMetrics())
	for _, t := range s.tracing {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := t.Shutdown(ctx); err != nil {
			s.Log.Warn("flush spans", "err", err)
		}
		cancel()
	}
	if s.Warehouse != nil {
		errs = append(errs, s.Warehouse.Close())
	}
	if s.Conn != nil {
		// Drain flushes pending acks and publishes, then closes; wait for
		// the close (bounded: the client's drain timeout is 30s).
		closed := make(chan struct{})
		s.Conn.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := s.Conn.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, err)
		}
		if !s.Conn.IsClosed() {
			select {
			case <-closed:
			case <-time.After(35 * time.Second):
				errs = append(errs, errors.New("nats connection: still draining after 35s"))
			}
		}
	}
	if s.Server != nil {
		s.Server.Shutdown()
	}
	return errors.Join(errs...)
}

// MetricsURL is the base URL of the metrics server (http://host:port), or
// "" when it is off.
func (s *Stack) MetricsURL() string {
	if s.metricsServer == nil {
		return ""
	}
	return s.metricsServer.URL()
}

// startMetrics builds the instruments and starts the metrics server.
func (s *Stack) startMetrics() error {
	m, err := metrics.New(metrics.Options{Instance: s.cfg.Instance, Roles: s.cfg.Roles, Process: stackProcess{s}, Ready: s.Ready, Logger: s.Log})
	if err != nil {
		return err
	}
	s.Metrics = m
	srv, err := metrics.Listen(metrics.ServerConfig{Addr: s.cfg.MetricsAddr, Metrics: m.Handler(), Ready: s.Ready, Logger: s.Log})
	if err != nil {
		return err
	}
	s.metricsServer = srv
	return nil
}

// startCluster keeps the cluster gauges (lag, watermark, windows, SLA) of
// every policy. Only processes running the compactor role export them, so
// that a deployment of many collectors does not multiply the NATS reads.
func (s *Stack) startCluster(windowsKV jetstream.KeyValue) error {
	c, err := metrics.NewCluster(metrics.ClusterConfig{JS: s.JS, Policies: s.Policies, Watermarks: s.Watermarks, Windows: windowsKV, Logger: s.Log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopCluster, s.clusterDone = cancel, make(chan struct{})
	go func() {
		defer close(s.clusterDone)
		c.Run(ctx)
	}()
	s.Metrics.SetCluster(c)
	return nil
}

// stopMetrics shuts the metrics server down (requests in flight finish,
// within 5s), then the cluster view and the meter provider.
func (s *Stack) stopMetrics() error {
	var errs []error
	if s.metricsServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.metricsServer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics server: %w", err))
		}
		cancel()
		s.metricsServer = nil
	}
	if s.stopCluster != nil {
		s.stopCluster()
		<-s.clusterDone
		s.stopCluster = nil
	}
	if s.Metrics != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Metrics.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

func (s *Stack) setLoaderRunning(v bool) {
	s.mu.Lock()
	s.loaderRunning = v
	s.mu.Unlock()
}

// readyCache is how long a deep readiness check (consumers, warehouse) is
// reused.
const readyCache = 2 * time.Second

// Ready returns what keeps this process from doing its work, empty when
// nothing does: NATS must be connected, Run must be running, and each role
// must be running with its consumers bound: the collector and compactor of
// every stored policy (consumers windrow_collector_<policy> and
// windrow_results_<policy>), the loader (consumer windrow_loader) with its
// warehouse answering SELECT 1. The NATS and Run checks are live; the rest
// is read at most every 2s (readyCache), bounded by ctx and 2s.
func (s *Stack) Ready(ctx context.Context) []string {
	if !s.opened.Load() {
		return []string{"starting: NATS connection and provisioning not done"}
	}
	var out []string
	if !s.Conn.IsConnected() {
		out = append(out, "nats: not connected ("+strings.ToLower(s.Conn.Status().String())+")")
	}
	if !s.running.Load() {
		out = append(out, "roles: not running")
	}
	if len(out) > 0 || len(s.cfg.Roles) == 0 {
		return out
	}
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if time.Since(s.readyAt) >= readyCache {
		s.readyProblems = s.checkRoles(ctx)
		s.readyAt = time.Now()
	}
	return slices.Clone(s.readyProblems)
}

// checkRoles is the deep part of Ready.
func (s *Stack) checkRoles(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out []string
	var policies []*windows.Policy
	if slices.Contains(s.cfg.Roles, RoleCollector) || slices.Contains(s.cfg.Roles, RoleCompactor) {
		var err error
		if policies, err = s.Policies.List(ctx); err != nil {
			return []string{fmt.Sprintf("policies: %v", err)}
		}
	}
	consumer := func(what, stream, name string) {
		if _, err := s.JS.Consumer(ctx, stream, name); err != nil {
			out = append(out, fmt.Sprintf("%s: consumer %s on %s: %v", what, name, stream, err))
		}
	}
	for _, role := range s.cfg.Roles {
		switch role {
		case RoleCollector:
			for _, p := range policies {
				s.mu.Lock()
				_, running := s.collectors[p.Name]
				s.mu.Unlock()
				what := "collector " + p.Name
				if !running {
					out = append(out, what+": not running")
					continue
				}
				consumer(what, p.Source.Stream, messages.CollectorConsumer(p.Name))
			}
		case RoleCompactor:
			for _, p := range policies {
				s.mu.Lock()
				_, running := s.compactors[p.Name]
				s.mu.Unlock()
				what := "compactor " + p.Name
				if !running {
					out = append(out, what+": not running")
					continue
				}
				consumer(what, messages.StreamResults, messages.ResultsConsumer(p.Name))
			}
		case RoleLoader:
			s.mu.Lock()
			running := s.loaderRunning
			s.mu.Unlock()
			if !running {
				out = append(out, "loader: not running")
				continue
			}
			consumer("loader", messages.StreamLoad, loader.DurablePrefix)
			if err := s.pingWarehouse(ctx); err != nil {
				out = append(out, fmt.Sprintf("loader: warehouse %s: %v", s.Warehouse.Path(), err))
			}
		}
	}
	return out
}

// pingWarehouse runs SELECT 1 on the warehouse. The file stays open for the
// warehouse's idle close (2s) after it, as after a load.
func (s *Stack) pingWarehouse(ctx context.Context) error {
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		return err
	}
	defer release()
	var one int
	return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// stackProcess gives the metrics the counters of the stack's roles.
type stackProcess struct{ s *Stack }

func (p stackProcess) CollectorStats() map[string]collector.Stats {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]collector.Stats, len(s.collectorsDone)+len(s.collectors))
	maps.Copy(out, s.collectorsDone)
	for name, c := range s.collectors {
		out[name] = addStats(out[name], c.Stats())
	}
	return out
}

func (p stackProcess) CompactorStats() map[string]compactor.Stats {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]compactor.Stats, len(s.compactorsDone)+len(s.compactors))
	maps.Copy(out, s.compactorsDone)
	for name, c := range s.compactors {
		out[name] = addStats(out[name], c.Stats())
	}
	return out
}

func (p stackProcess) LoaderStats() (loader.Stats, bool) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loader == nil {
		return loader.Stats{}, false
	}
	return s.loader.Stats(), true
}

// shapeFloor gathers what windows.Policy.ShapeFloor needs of a policy: its
// watermark and the ends of its stored windows.
func (s *Stack) shapeFloor(ctx context.Context, cur *windows.Policy) (time.Time, error) {
	wm, ok, err := s.Watermarks.Get(ctx, cur.Name)
	if err != nil {
		return time.Time{}, fmt.Errorf("watermark of %s: %w", cur.Name, err)
	}
	var watermark time.Time
	if ok {
		watermark = wm.Watermark
	}
	states, err := s.States.List(ctx, cur.Name)
	if err != nil {
		return time.Time{}, fmt.Errorf("windows of %s: %w", cur.Name, err)
	}
	ends := make([]time.Time, len(states))
	for i, st := range states {
		ends[i] = st.WindowEnd
	}
	return cur.ShapeFloor(time.Now(), watermark, ends)
}
