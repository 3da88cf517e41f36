package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/app/stack"
)

// upConfig is the file of `windrow up --config`. Flags override it.
type upConfig struct {
	DataDir string `yaml:"data_dir"`
	NATS    struct {
		Embedded *bool  `yaml:"embedded"` // default: true unless url is set
		Port     int    `yaml:"port"`
		URL      string `yaml:"url"` // one server, or several of a cluster comma-separated
		// Replicas of the streams and KV buckets windrow creates: 1 (the
		// default) for a single server, 3 for a cluster.
		Replicas int    `yaml:"replicas"`
		User     string `yaml:"user"`
		Password string `yaml:"password"`
		Token    string `yaml:"token"`
		Creds    string `yaml:"creds"`
		NKey     string `yaml:"nkey"`
		CA       string `yaml:"ca"`
		Cert     string `yaml:"cert"`
		Key      string `yaml:"key"`
	} `yaml:"nats"`
	ObjectStore struct {
		URL string `yaml:"url"`
		Dir string `yaml:"dir"`
	} `yaml:"object_store"`
	Warehouse struct {
		URL    string `yaml:"url"`
		DuckDB string `yaml:"duckdb"`
	} `yaml:"warehouse"`
	Policies []string `yaml:"policies"`
	Roles    []string `yaml:"roles"`
	Instance string   `yaml:"instance"`
	Loader   struct {
		// Workers: load commands handled at once (default 4).
		Workers int `yaml:"workers"`
	} `yaml:"loader"`
	Metrics struct {
		// Addr of /metrics, /healthz and /readyz; "off" disables. Unset:
		// the command's default (see metricsDefaults).
		Addr *string `yaml:"addr"`
	} `yaml:"metrics"`
	Log struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
}

func loadUpConfig(path string) (*upConfig, error) {
	var c upConfig
	if path == "" {
		return &c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func runUp(ctx context.Context, args []string) error {
	return runRoles(ctx, "up", args, nil)
}

func roleCmd(role string) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error { return runRoles(ctx, role, args, []string{role}) }
}

// runRoles is `windrow up` (all roles by default, embedded NATS unless a URL
// is given) and the single-role commands (external NATS).
func runRoles(ctx context.Context, name string, args []string, roles []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	configPath := fs.String("config", "", "YAML config file (see deploy/windrow.yaml)")
	rolesFlag := fs.String("roles", "", "comma-separated roles to run: collector,compactor,loader (up only)")
	port := fs.Int("nats-port", 0, "port of the embedded NATS server (up only; default 4222, a free one if taken)")
	duck := fs.String("duckdb", "", "DuckDB warehouse file (default DATA_DIR/warehouse.duckdb); same as --warehouse FILE")
	whURL := fs.String("warehouse", "", "warehouse: a DuckDB file, duckdb:///FILE or postgres://USER@HOST:5432/DB?sslmode=disable (default DATA_DIR/warehouse.duckdb)")
	objects := fs.String("objects", "", "object store: a directory, file:///DIR or s3://BUCKET/PREFIX (endpoint, region and credentials from the AWS environment; ?endpoint=URL&path_style=true for self-hosted servers) (default DATA_DIR/objects)")
	instance := fs.String("instance", "", "instance name in leases, logs, metrics and traces; give one to keep it across restarts, unique among running processes (default host-PID-random, new for every process)")
	ackWait := fs.Duration("ack-wait", 0, "ack wait of the collector and loader consumers (default 2m; at least 10s)")
	loaderWorkers := fs.Int("loader-workers", 0, "load commands the loader handles at once, one window at a time, windows in parallel (default 4)")
	connectWait := fs.Duration("connect-wait", 2*time.Minute, "how long to keep trying to reach an external NATS server that is not up yet (0: fail at once)")
	var policies stringList
	fs.Var(&policies, "policy", "policy file or directory to apply at start (repeatable); a file older than the stored version it differs from is kept back (see --force-policies)")
	forcePolicies := fs.Bool("force-policies", false, "apply the --policy files even where the stored version is newer (reverts live changes)")
	logFormat := fs.String("log-format", "", "log format: text or json")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error")
	metricsAddr := fs.String("metrics-addr", metricsDefaults[name],
		`address of the /metrics, /healthz and /readyz HTTP server; "off" or "" disables it (see docs/metrics.md)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadUpConfig(*configPath)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	pick := func(flagName, flagVal, fileVal string) string {
		if set[flagName] || fileVal == "" {
			return flagVal
		}
		return fileVal
	}
	dataDir := pick("data-dir", conn.dataDir, cfg.DataDir)
	conn.dataDir = dataDir
	nc := conn.resolve()
	if !set["nats-url"] && cfg.NATS.URL != "" {
		nc = natsx.ClientConfig{URL: cfg.NATS.URL, User: cfg.NATS.User, Password: cfg.NATS.Password, Token: cfg.NATS.Token,
			Creds: cfg.NATS.Creds, NKeySeed: cfg.NATS.NKey, CAFile: cfg.NATS.CA, CertFile: cfg.NATS.Cert, KeyFile: cfg.NATS.Key}
	}
	embedded := false
	if roles == nil { // up
		embedded = !set["nats-url"] && os.Getenv("NATS_URL") == "" && cfg.NATS.URL == ""
		if cfg.NATS.Embedded != nil && !set["nats-url"] && os.Getenv("NATS_URL") == "" {
			embedded = *cfg.NATS.Embedded
		}
		roles = cfg.Roles
		if *rolesFlag != "" {
			roles = strings.Split(*rolesFlag, ",")
		}
	}
	natsPort := cfg.NATS.Port
	if set["nats-port"] {
		natsPort = *port
	}
	log := newLogger(pick("log-format", *logFormat, cfg.Log.Format), pick("log-level", *logLevel, cfg.Log.Level))
	maddr := *metricsAddr
	if !set["metrics-addr"] && cfg.Metrics.Addr != nil {
		maddr = *cfg.Metrics.Addr
	}
	replicas, err := conn.natsReplicas(cfg.NATS.Replicas)
	if err != nil {
		return err
	}
	workers := cfg.Loader.Workers
	if set["loader-workers"] {
		workers = *loaderWorkers
	}
	s, err := stack.Open(ctx, stack.Config{
		DataDir: dataDir, Embedded: embedded, NATSPort: natsPort, NATS: nc, NATSReplicas: replicas,
		Objects:   pick("objects", *objects, firstOf(cfg.ObjectStore.URL, cfg.ObjectStore.Dir)),
		Warehouse: pick("warehouse", *whURL, pick("duckdb", *duck, firstOf(cfg.Warehouse.URL, cfg.Warehouse.DuckDB))),
		Roles:     roles, Instance: pick("instance", *instance, cfg.Instance), AckWait: *ackWait, ConnectWait: *connectWait, Logger: log,
		MetricsAddr: maddr, LoaderWorkers: workers,
	})
	if err != nil {
		return metricsAddrError(err)
	}
	defer s.Close()
	paths := append([]string(nil), cfg.Policies...)
	if len(policies) > 0 {
		paths = policies
	}
	if len(paths) > 0 {
		ps, kept, err := s.ApplyPolicyFilesAtStart(ctx, paths, *forcePolicies)
		if err != nil {
			return err
		}
		for _, p := range ps {
			log.Info("policy applied", "policy", p.Name, "version", p.Version)
		}
		for _, k := range kept {
			log.Warn(k.String(), "policy", k.Name, "version", k.Version, "file", k.File)
		}
	}
	log.Info("windrow running", "roles", roles, "nats", s.NATSURL, "data_dir", dataDir, "metrics", s.MetricsURL())
	if embedded {
		fmt.Fprintf(os.Stderr, "windrow up: embedded NATS at %s; publish with `windrow publish --data-dir %s --subject ...`, or any NATS client with the NKey seed file %s (nats CLI: --nkey). Ctrl-C stops.\n",
			s.NATSURL, dataDir, stack.NKeyFile(dataDir))
	}
	err = s.Run(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// firstOf returns the first of vals that is not empty.
func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
