package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/app/metrics"
	"github.com/windrow/windrow/app/stack"
)

// connFlags are the NATS connection flags shared by every command that talks
// to an existing server. Secrets can come from the environment so that they
// stay out of process listings.
type connFlags struct {
	dataDir string
	nats    natsx.ClientConfig
	objects string // the object store, for commands that read it (registerObjects)
	// replicas is --nats-replicas; 0: not given (see natsReplicas).
	replicas int
}

// registerObjects adds --objects, for commands that read the object store.
func (c *connFlags) registerObjects(fs *flag.FlagSet) {
	fs.StringVar(&c.objects, "objects", "", "object store: a directory, file:///DIR or s3://BUCKET/PREFIX (default DATA_DIR/objects)")
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", "windrow-data", "directory for local state (embedded NATS store, objects, DuckDB file)")
	fs.StringVar(&c.nats.URL, "nats-url", os.Getenv("NATS_URL"), "NATS server URL (default: the embedded server of --data-dir, else nats://127.0.0.1:4222)")
	fs.StringVar(&c.nats.User, "nats-user", os.Getenv("NATS_USER"), "NATS user")
	fs.StringVar(&c.nats.Password, "nats-password", "", "NATS password (or $NATS_PASSWORD)")
	fs.StringVar(&c.nats.Token, "nats-token", "", "NATS token (or $NATS_TOKEN)")
	fs.StringVar(&c.nats.Creds, "nats-creds", os.Getenv("NATS_CREDS"), "NATS credentials file (JWT + NKey)")
	fs.StringVar(&c.nats.NKeySeed, "nats-nkey", os.Getenv("NATS_NKEY"), "NATS NKey seed file (default: the embedded server's DATA_DIR/nats.nkey when the URL comes from --data-dir and no other credentials are given)")
	fs.StringVar(&c.nats.CAFile, "nats-ca", os.Getenv("NATS_CA"), "CA bundle for TLS to NATS")
	fs.StringVar(&c.nats.CertFile, "nats-cert", os.Getenv("NATS_CERT"), "client certificate for mutual TLS")
	fs.StringVar(&c.nats.KeyFile, "nats-key", os.Getenv("NATS_KEY"), "client key for mutual TLS")
	fs.IntVar(&c.replicas, "nats-replicas", 0, "replicas of the streams and KV buckets windrow creates: 1 for a single server, 3 for a cluster; existing ones are scaled up, never down (or $"+envReplicas+"; default 1)")
}

// envReplicas is the environment variable of --nats-replicas.
const envReplicas = "WINDROW_NATS_REPLICAS"

// natsReplicas is the replica count of windrow's streams and buckets:
// --nats-replicas, else $WINDROW_NATS_REPLICAS, else fileVal (nats.replicas
// of the config file), else 0 (one replica).
func (c *connFlags) natsReplicas(fileVal int) (int, error) {
	if c.replicas != 0 {
		return c.replicas, nil
	}
	if v := os.Getenv(envReplicas); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("$%s=%q: want a replica count, 1 to 5", envReplicas, v)
		}
		return n, nil
	}
	return fileVal, nil
}

// metricsDefaults are the default --metrics-addr of the commands that run
// roles: loopback only, and a port per command, so that `windrow collector`,
// `compactor` and `loader` on one host do not collide.
var metricsDefaults = map[string]string{
	"up":        metrics.DefaultAddr, // 127.0.0.1:9464
	"collector": "127.0.0.1:9465",
	"compactor": "127.0.0.1:9466",
	"loader":    "127.0.0.1:9467",
}

// metricsAddrError names the flag when the metrics server cannot listen.
func metricsAddrError(err error) error {
	var le *metrics.ListenError
	if errors.As(err, &le) {
		return fmt.Errorf("--metrics-addr %s: cannot listen: %w (is another windrow running there? pick another address with --metrics-addr, or turn it off with --metrics-addr off)", le.Addr, le.Err)
	}
	return err
}

// resolve fills secrets from the environment and, when no URL is given,
// the URL and the credentials of the data directory's embedded server
// (nats.url and nats.nkey). Credentials given by flag or environment win
// over the data directory's; a given URL takes none from it.
func (c *connFlags) resolve() natsx.ClientConfig {
	cfg := c.nats
	if cfg.Password == "" {
		cfg.Password = os.Getenv("NATS_PASSWORD")
	}
	if cfg.Token == "" {
		cfg.Token = os.Getenv("NATS_TOKEN")
	}
	if cfg.URL == "" {
		if data, err := os.ReadFile(stack.URLFile(c.dataDir)); err == nil {
			cfg.URL = strings.TrimSpace(string(data))
			given := cfg.User != "" || cfg.Token != "" || cfg.Creds != "" || cfg.NKeySeed != ""
			// A data directory from before the embedded server required
			// credentials has no nats.nkey.
			if _, err := os.Stat(stack.NKeyFile(c.dataDir)); err == nil && !given {
				cfg.NKeySeed = stack.NKeyFile(c.dataDir)
			}
		}
	}
	if cfg.URL == "" {
		cfg.URL = "nats://127.0.0.1:4222"
	}
	return cfg
}

// connect opens a client stack (no roles) against an existing server.
func (c *connFlags) connect(ctx context.Context) (*stack.Stack, error) {
	cfg := c.resolve()
	log := newLogger("text", "warn")
	replicas, err := c.natsReplicas(0)
	if err != nil {
		return nil, err
	}
	s, err := stack.Open(ctx, stack.Config{DataDir: c.dataDir, NATS: cfg, NATSReplicas: replicas, Roles: []string{}, Logger: log, Objects: c.objects})
	if err == nil {
		return s, nil
	}
	// Nothing runs, but the data directory holds an embedded server's store
	// (after `windrow demo`, or a stopped `windrow up`): open it here.
	if c.nats.URL == "" && os.Getenv("NATS_URL") == "" {
		if _, serr := os.Stat(filepath.Join(c.dataDir, "nats", "jetstream")); serr == nil {
			s, eerr := stack.Open(ctx, stack.Config{DataDir: c.dataDir, Embedded: true, NATSPort: -1, Roles: []string{}, Logger: log, Objects: c.objects})
			if eerr == nil {
				return s, nil
			}
			err = errors.Join(err, eerr)
		}
	}
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, fmt.Errorf("%w\n(%s)", err, authHint(cfg, c.dataDir))
	}
	return nil, fmt.Errorf("%w\n(is windrow running? start it with `windrow up`, or pass --nats-url)", err)
}

// authHint says what to do when the server refused the credentials of cfg.
func authHint(cfg natsx.ClientConfig, dataDir string) string {
	key := stack.NKeyFile(dataDir)
	if _, err := os.Stat(key); err == nil && cfg.NKeySeed == "" {
		return fmt.Sprintf("the NATS server refused the credentials; if it is the embedded server of %s, pass --nats-nkey %s", dataDir, key)
	}
	return "the NATS server refused the credentials; check --nats-user/--nats-password, --nats-token, --nats-creds or --nats-nkey"
}

func newLogger(format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(os.Stderr, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(os.Stderr, opts)))
}

// progress prints a single self-updating line on a terminal, or a line every
// few seconds otherwise.
type progress struct {
	w    io.Writer
	tty  bool
	last time.Time
}

func newProgress() *progress { return newProgressTo(os.Stderr) }

// newProgressTo prints to w; as on a terminal only when w is one.
func newProgressTo(w io.Writer) *progress {
	p := &progress{w: w, last: time.Now()}
	if f, ok := w.(*os.File); ok {
		st, err := f.Stat()
		p.tty = err == nil && st.Mode()&os.ModeCharDevice != 0
	}
	return p
}

func (p *progress) update(format string, args ...any) {
	now := time.Now()
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.print(format, args...)
}

func (p *progress) print(format string, args ...any) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K"+format, args...)
	} else {
		fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func (p *progress) done(format string, args ...any) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K"+format+"\n", args...)
	} else {
		fmt.Fprintf(p.w, format+"\n", args...)
	}
}
