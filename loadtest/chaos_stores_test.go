//go:build chaos

package loadtest

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testpg"
	"github.com/windrow/windrow/internal/tests3"
)

var (
	chaosObjects  = flag.String("chaos.objects", "local", "where the roles keep segments, batches and manifests: local (a directory) or s3 (a versitygw server the run starts, and restarts -chaos.store-restarts times)")
	chaosWH       = flag.String("chaos.warehouse", "duckdb", "where the loader loads: duckdb (one file) or postgres (a private PostgreSQL server the run makes with initdb, and restarts -chaos.store-restarts times)")
	chaosStoreRst = flag.Int("chaos.store-restarts", 1, "restarts of the S3 server and of PostgreSQL, each, when the run uses them (a crash first, then a graceful stop, in turn)")
)

// chaosBucket is the bucket of -chaos.objects=s3; the roles create it.
const chaosBucket = "windrow-chaos"

// chaosWarehouse is what the checks need of a warehouse: SQL on its
// tables and the loaded rows per window (for windrow's reconciliation).
type chaosWarehouse interface {
	DB(ctx context.Context) (*sql.DB, func(), error)
	WindowCounts(ctx context.Context, table string) (map[string]int64, error)
	Close() error
}

// chaosStores are the object store and the warehouse of a run, and the
// servers behind them the monkey restarts.
type chaosStores struct {
	objects   string // URL for --objects; "" keeps the roles' --data-dir
	warehouse string // URL for --warehouse
	env       []string
	servers   []*server
	pg        *testpg.Cluster // with -chaos.warehouse=postgres
	wal       string          // DuckDB's write-ahead log, with -chaos.warehouse=duckdb
}

func (s *chaosStores) String() string {
	o, w := "objects in a local directory", "DuckDB warehouse"
	if s.objects != "" {
		o = "objects on S3 (versitygw " + tests3.Version + ")"
	}
	if s.pg != nil {
		w = "PostgreSQL warehouse"
	}
	return o + ", " + w
}

// checkStoreFlags validates -chaos.objects, -chaos.warehouse and
// -chaos.store-restarts.
func checkStoreFlags(t *testing.T) {
	t.Helper()
	if *chaosObjects != "local" && *chaosObjects != "s3" {
		t.Fatalf("-chaos.objects %q: want local or s3", *chaosObjects)
	}
	if *chaosWH != "duckdb" && *chaosWH != "postgres" {
		t.Fatalf("-chaos.warehouse %q: want duckdb or postgres", *chaosWH)
	}
	if *chaosStoreRst < 0 {
		t.Fatalf("-chaos.store-restarts %d: want 0 or more", *chaosStoreRst)
	}
}

// startStores starts what -chaos.objects and -chaos.warehouse ask for,
// each as a supervised process under root, and returns how the roles
// reach them.
func startStores(t *testing.T, ctx context.Context, root string, supervise func(*proc)) *chaosStores {
	t.Helper()
	s := &chaosStores{}
	logs := filepath.Join(root, "logs")
	if *chaosObjects == "s3" {
		bin, err := tests3.Binary()
		if err != nil {
			if tests3.Required() {
				t.Fatalf("-chaos.objects=s3: %v", err)
			}
			t.Skipf("-chaos.objects=s3: %v", err)
		}
		dir := filepath.Join(root, "s3")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		srv := &tests3.Server{Endpoint: "http://" + addr, Bucket: chaosBucket, Dir: dir}
		srv.AccessKey, srv.SecretKey = tests3.NewCredentials()
		args, env := tests3.Command(addr, dir, srv.AccessKey, srv.SecretKey)
		p := newProc("s3", bin, filepath.Join(logs, "s3.log"), args...)
		p.env = env
		supervise(p)
		ready := func(ctx context.Context) error { return pingUntil(ctx, time.Minute, srv.Ping) }
		if err := ready(ctx); err != nil {
			t.Fatalf("S3 server: %v", err)
		}
		s.servers = append(s.servers, &server{name: "s3", proc: p, nodes: []*proc{p}, restarts: *chaosStoreRst, modes: s3Stops,
			ready: ready, readyNote: "S3 answering again"})
		// Credentials come from the AWS environment, as in production.
		s.env = []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=" + tests3.Region}
		s.objects = "s3://" + chaosBucket + "/chaos?endpoint=" + url.QueryEscape(srv.Endpoint)
	}
	if *chaosWH == "postgres" {
		c, err := testpg.NewCluster(ctx, freePort(t))
		if err != nil {
			if testpg.Required() {
				t.Fatalf("-chaos.warehouse=postgres: %v", err)
			}
			t.Skipf("-chaos.warehouse=postgres: %v", err)
		}
		s.pg = c
		bin, args := c.Command()
		p := newProc("postgres", bin, filepath.Join(logs, "postgres.log"), args...)
		p.cred, p.finalSig = c.Cred, syscall.SIGINT
		t.Cleanup(func() {
			p.stopForGood(30 * time.Second)
			if !*chaosKeep {
				c.Remove()
			}
		})
		supervise(p)
		ready := func(ctx context.Context) error { return c.WaitReady(ctx, 2*time.Minute) }
		if err := ready(ctx); err != nil {
			t.Fatal(err)
		}
		s.servers = append(s.servers, &server{name: "postgres", proc: p, nodes: []*proc{p}, restarts: *chaosStoreRst, modes: pgStops,
			ready: ready, readyNote: "PostgreSQL accepting connections again"})
		s.warehouse = c.URL()
	} else {
		s.warehouse = filepath.Join(root, "data", "warehouse.duckdb")
		s.wal = s.warehouse + ".wal"
	}
	return s
}

// roleArgs are the flags that point a role at the stores.
func (s *chaosStores) roleArgs() []string {
	args := []string{"--warehouse", s.warehouse}
	if s.objects != "" {
		args = append(args, "--objects", s.objects)
	}
	return args
}

// setEnv gives the test process the stores' environment (the roles get it
// through their proc).
func (s *chaosStores) setEnv(t *testing.T) {
	for _, kv := range s.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// openWarehouse opens the warehouse for the checks.
func (s *chaosStores) openWarehouse(ctx context.Context) (chaosWarehouse, error) {
	w, err := stack.OpenWarehouse(ctx, s.warehouse, nil)
	if err != nil {
		return nil, err
	}
	cw, ok := w.(chaosWarehouse)
	if !ok {
		w.Close()
		return nil, fmt.Errorf("warehouse %s has no SQL access for the checks", w)
	}
	return cw, nil
}

// commitProbe waits until the warehouse is seen writing a load.
func (s *chaosStores) commitProbe() func(ctx context.Context, limit <-chan time.Time) (string, bool) {
	if s.pg == nil {
		return walGrowth(s.wal)
	}
	return copyRunning(s.pg.URL())
}

// copyRunning is PostgreSQL's commit probe: it polls pg_stat_activity until
// a COPY (a batch's rows streaming in, in the load's transaction) runs.
func copyRunning(dsn string) func(ctx context.Context, limit <-chan time.Time) (string, bool) {
	return func(ctx context.Context, limit <-chan time.Time) (string, bool) {
		var conn *pgx.Conn
		defer func() {
			if conn != nil {
				conn.Close(context.Background())
			}
		}()
		for {
			select {
			case <-limit:
				return "", false
			case <-ctx.Done():
				return "", false
			default:
			}
			if conn == nil || conn.IsClosed() {
				var err error
				if conn, err = pgx.Connect(ctx, dsn); err != nil {
					conn = nil
					time.Sleep(100 * time.Millisecond)
					continue
				}
			}
			var n int
			err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query ILIKE 'copy %'`).Scan(&n)
			if err == nil && n > 0 {
				return fmt.Sprintf("%d COPY running", n), true
			}
			if err != nil {
				conn.Close(context.Background())
				conn = nil
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// checkObjects reads back every object of an S3 store under its final
// name: each Parquet file must open with a valid footer and each JSON
// manifest must parse (checkFiles does this for a local directory). S3
// never shows a half-written object: a multipart upload a kill cut short
// is not an object.
func checkObjects(ctx context.Context, store objstore.Store) (problems []string, parquetFiles, manifests int) {
	var keys []string
	for _, prefix := range []string{"staging", "batches"} {
		k, err := store.List(ctx, prefix)
		if err != nil {
			return []string{fmt.Sprintf("list %s in %s: %v", prefix, store, err)}, 0, 0
		}
		keys = append(keys, k...)
	}
	for _, key := range keys {
		switch {
		case strings.HasSuffix(key, ".parquet"):
			parquetFiles++
			r, err := store.Open(ctx, key)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", key, err))
				continue
			}
			if _, err := parquet.OpenFile(r, r.Size()); err != nil {
				problems = append(problems, fmt.Sprintf("%s: not a complete Parquet object under its final name: %v", key, err))
			}
			r.Close()
		case strings.HasSuffix(key, ".json"):
			manifests++
			r, err := store.Open(ctx, key)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", key, err))
				continue
			}
			data, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
			r.Close()
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", key, err))
			} else if !json.Valid(data) {
				problems = append(problems, fmt.Sprintf("%s: not complete JSON under its final name (%d bytes)", key, len(data)))
			}
		}
	}
	return problems, parquetFiles, manifests
}

// pingUntil calls ping until it returns nil or timeout passes.
func pingUntil(ctx context.Context, timeout time.Duration, ping func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not answering after %s: %v", timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
