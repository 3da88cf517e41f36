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
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/app/metrics"
	"github.com/windrow/windrow/pipeline/lifecycle"
	"github.com/windrow/windrow/services/collector"
	"github.com/windrow/windrow/services/compactor"
	"github.com/windrow/windrow/services/loader"
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
	// Created with mode 0700 if missing (an existing directory keeps its
	// mode); what windrow creates in it is 0700 (directories) or 0600
	// (files), umask permitting.
	DataDir string
	// Embedded runs an in-process NATS server (JetStream, file store under DataDir/nats).
	Embedded bool
	// NATSPort is the embedded server's port. Default 4222; when it is taken,
	// a free port is used and written to DataDir/nats.url. The embedded
	// server requires the NKey in DataDir/nats.nkey (see NKeyFile).
	NATSPort int
	// NATS is the connection to an existing server when not Embedded; its
	// URL may list several servers of a cluster, comma-separated.
	NATS natsx.ClientConfig
	// NATSReplicas is the replica count of every stream and KV bucket
	// windrow creates (nats.replicas): 1 for a single server, 3 for a
	// cluster. 0 means 1. Existing ones with fewer are scaled up, never
	// down (natsx.WithReplicas). The embedded server takes only 1.
	NATSReplicas int
	// Objects is the object store: a directory, file:///dir or
	// s3://BUCKET/PREFIX (see OpenObjects). Default DataDir/objects.
	Objects string
	// Warehouse is the warehouse the loader loads: a DuckDB file,
	// duckdb:///file or postgres://… (see OpenWarehouse). Default
	// DataDir/warehouse.duckdb.
	Warehouse string
	// Roles to run. Nil means all; empty means none (a client of the stack).
	Roles []string
	// Instance names this process in window leases, consumers' logs,
	// metrics and traces. Default lifecycle.DefaultInstance(): the host, the
	// PID and a random suffix, unique per process. A given name is kept as
	// it is (stable across restarts) and must be unique among the running
	// processes.
	Instance string
	// AckWait of the collectors' and the loader's consumers; 0 keeps each
	// service's default (2m). Lower values make redelivery after a crash
	// faster, at the price of redelivering slow work.
	AckWait time.Duration
	// LoaderWorkers is how many load commands the loader handles at once
	// (loader.Config.Workers: one window at a time, windows in parallel);
	// 0 keeps the loader's default (4).
	LoaderWorkers int
	Logger        *slog.Logger
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
	// Clock, if set, is the compactors' wall clock (the idle rule, leases,
	// load times, retirement after window.retain): tests move it forward.
	// Default time.Now.
	Clock func() time.Time
	// MetricsAddr, unless "" or "off", is where the process serves
	// /metrics, /healthz and /readyz (app/metrics), from Open until
	// Close. Port 0 picks a free port (see MetricsURL).
	MetricsAddr string
}

func (c *Config) setDefaults() {
	if c.DataDir == "" {
		c.DataDir = "windrow-data"
	}
	if c.Objects == "" {
		c.Objects = filepath.Join(c.DataDir, "objects")
	}
	if c.Warehouse == "" {
		c.Warehouse = filepath.Join(c.DataDir, "warehouse.duckdb")
	}
	if c.Roles == nil {
		c.Roles = AllRoles
	}
	if c.Instance == "" {
		c.Instance = lifecycle.DefaultInstance()
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
	if c.NATSReplicas < 0 || c.NATSReplicas > 5 {
		errs = append(errs, fmt.Errorf("nats replicas %d: want 1..5 (JetStream's limit), or 0 for 1", c.NATSReplicas))
	}
	if c.Embedded && c.NATSReplicas > 1 {
		errs = append(errs, fmt.Errorf("nats replicas %d: the embedded NATS server is a single server and holds 1 replica; connect to a cluster (--nats-url) for more", c.NATSReplicas))
	}
	if c.LoaderWorkers < 0 {
		errs = append(errs, fmt.Errorf("loader workers %d: want >= 1, or 0 for the default", c.LoaderWorkers))
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
	Warehouse  Warehouse // nil unless the loader role runs
	NATSURL    string
	Log        *slog.Logger
	lock       *dirLock // the data directory's, with an embedded server

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
	// warehouseFull is when a load first found the warehouse's disk full
	// (Unix nanoseconds), 0 after a load succeeded (see DiskFull).
	warehouseFull atomic.Int64

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
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
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
	topo, err := s.connect(ctx)
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
	if s.Store, err = OpenObjects(ctx, cfg.Objects); err != nil {
		return nil, err
	}
	if slices.Contains(cfg.Roles, RoleLoader) {
		if s.Warehouse, err = OpenWarehouse(ctx, cfg.Warehouse, s.Store); err != nil {
			return nil, err
		}
	}
	ok = true
	s.opened.Store(true)
	return s, nil
}

// connect starts the embedded NATS server or connects to the configured
// one, waits for JetStream and provisions windrow's streams and buckets.
func (s *Stack) connect(ctx context.Context) (*natsx.Topology, error) {
	cfg := s.cfg
	if cfg.Embedded {
		// The embedded server owns the JetStream store under the data
		// directory: one process at a time.
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		s.lock = lock
		srv, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: filepath.Join(cfg.DataDir, "nats"), Port: cfg.NATSPort, FallbackPort: true,
			NKeyFile: NKeyFile(cfg.DataDir)})
		if err != nil {
			return nil, err
		}
		s.Server = srv
		s.NATSURL = srv.ClientURL()
		if srv.FellBack {
			cfg.Logger.Warn(fmt.Sprintf("port %d is taken (another NATS server runs there?); the embedded NATS server listens on %s instead", max(cfg.NATSPort, 4222), s.NATSURL))
		}
		if err := writeURLFile(cfg.DataDir, s.NATSURL); err != nil {
			return nil, err
		}
		c := srv.ClientConfig()
		c.Name = "windrow " + cfg.Instance
		nc, err := natsx.Connect(c, srv.Server())
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
	// A cluster that is starting elects its meta leader first: calls are
	// bounded one by one and retried until this deadline.
	wctx, cancel := context.WithTimeout(ctx, max(provisionWait, cfg.ConnectWait))
	defer cancel()
	if err := natsx.WaitJetStream(wctx, js); err != nil {
		return nil, err
	}
	return natsx.Provision(wctx, js, s.NATSOptions()...)
}

// provisionWait bounds waiting for JetStream and provisioning at start.
const provisionWait = time.Minute

// NATSReplicas is Config.NATSReplicas, at least 1.
func (s *Stack) NATSReplicas() int { return max(s.cfg.NATSReplicas, 1) }

// NATSOptions are the options of windrow's streams and buckets
// (Config.NATSReplicas), for natsx.EnsureSourceStream.
func (s *Stack) NATSOptions() []natsx.Option {
	return []natsx.Option{natsx.WithReplicas(s.cfg.NATSReplicas)}
}

// URLFile is where an embedded server's client URL is written, so that other
// windrow commands on the same data directory find it.
func URLFile(dataDir string) string { return filepath.Join(dataDir, "nats.url") }

// NKeyFile is the NKey seed file an embedded server requires of its
// clients: created with the data directory's first embedded server, mode
// 0600, and kept across restarts. The other windrow commands on the same
// data directory read it with nats.url; the nats CLI takes it as --nkey.
func NKeyFile(dataDir string) string { return filepath.Join(dataDir, "nats.nkey") }

// writeURLFile writes url to URLFile: a new file, mode 0600, renamed over
// the old one, so that a reader never sees half a URL and a file an earlier
// version wrote 0644 is replaced.
func writeURLFile(dataDir, url string) error {
	name := URLFile(dataDir)
	f, err := os.CreateTemp(dataDir, ".nats.url-*") // mode 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.WriteString(url + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
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
	errs = append(errs, s.lock.release())
	return errors.Join(errs...)
}
