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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/services/collector"
	"github.com/windrow/windrow/services/compactor"
	"github.com/windrow/windrow/services/duckdbwh"
	"github.com/windrow/windrow/services/loader"
	"github.com/windrow/windrow/services/natsx"
	"github.com/windrow/windrow/services/objstore"
	"github.com/windrow/windrow/services/policyrun"
	"github.com/windrow/windrow/services/policystore"
	"github.com/windrow/windrow/services/statestore"
	"github.com/windrow/windrow/services/telemetry"
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
	// WrapWarehouse, if set, wraps the warehouse the loader uses: fault
	// injection in tests (a warehouse that fails now and then).
	WrapWarehouse func(loader.Warehouse) loader.Warehouse
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
	Store      *objstore.Local
	States     *statestore.Store
	Watermarks *statestore.Watermarks
	Policies   *policystore.Store
	Warehouse  *duckdbwh.Warehouse // nil unless the loader role runs
	NATSURL    string
	Log        *slog.Logger

	tracing map[string]*telemetry.Tracing

	mu         sync.Mutex
	collectors map[string]*collector.Service
	compactors map[string]*compactor.Service
	loader     *loader.Service
}

// Open connects (or starts NATS), provisions streams and buckets, and opens
// the object store and the warehouse. Run starts the roles.
func Open(ctx context.Context, cfg Config) (*Stack, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Stack{cfg: cfg, Log: cfg.Logger, collectors: map[string]*collector.Service{}, compactors: map[string]*compactor.Service{},
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
		nc, err := natsx.Connect(c, nil)
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
	if s.Store, err = objstore.NewLocal(cfg.ObjectDir); err != nil {
		return nil, err
	}
	if slices.Contains(cfg.Roles, RoleLoader) {
		if s.Warehouse, err = duckdbwh.Open(duckdbwh.Config{Path: cfg.DuckDB}); err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

// URLFile is where an embedded server's client URL is written, so that other
// windrow commands on the same data directory find it.
func URLFile(dataDir string) string { return filepath.Join(dataDir, "nats.url") }

// Run runs the configured roles until ctx is done.
func (s *Stack) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // one role failing stops the others
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
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
			var wh loader.Warehouse = s.Warehouse
			if s.cfg.WrapWarehouse != nil {
				wh = s.cfg.WrapWarehouse(wh)
			}
			l, err := loader.New(loader.Config{Tracing: s.tracing[RoleLoader], JS: s.JS, Warehouse: wh, Files: s.Store, Instance: s.cfg.Instance + "/loader", Logger: s.Log, AckWait: s.cfg.AckWait})
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.loader = l
			s.mu.Unlock()
			// The loader stops gracefully: the command in flight finishes
			// (load, result, ack) before Run returns.
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				if err := l.Shutdown(sctx); err != nil {
					s.Log.Warn("loader shutdown", "err", err)
				}
			}()
			run(role, func(ctx context.Context) error { return l.Run(context.WithoutCancel(ctx)) })
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

func (s *Stack) runCollector(ctx context.Context, p *windows.Policy) error {
	c, err := collector.New(collector.Config{Tracing: s.tracing[RoleCollector], JS: s.JS, Store: s.Store, States: s.States, Watermarks: s.Watermarks, Policy: p, Instance: s.cfg.Instance + "/collector", Logger: s.Log, AckWait: s.cfg.AckWait})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.collectors[p.Name] = c
	s.mu.Unlock()
	return c.Run(ctx)
}

func (s *Stack) runCompactor(ctx context.Context, p *windows.Policy) error {
	c, err := compactor.New(compactor.Config{Tracing: s.tracing[RoleCompactor], JS: s.JS, Store: s.Store, States: s.States, Watermarks: s.Watermarks, Policy: p, Instance: s.cfg.Instance + "/compactor", Logger: s.Log})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.compactors[p.Name] = c
	s.mu.Unlock()
	return c.Run(ctx)
}

// CollectorStats returns the counters of this process's collector of a policy.
func (s *Stack) CollectorStats(policy string) (collector.Stats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.collectors[policy]
	if !ok {
		return collector.Stats{}, false
	}
	return c.Stats(), true
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

// Close releases everything Open acquired: the warehouse, the connection
// (drained, so pending acks and publishes go out) and the embedded server.
func (s *Stack) Close() error {
	var errs []error
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
		if err := s.Conn.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, err)
		}
		for i := 0; i < 100 && !s.Conn.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if s.Server != nil {
		s.Server.Shutdown()
	}
	return errors.Join(errs...)
}
