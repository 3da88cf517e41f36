package stack

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/objstore/s3"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
	"github.com/windrow/windrow/adapters/warehouse/postgres"
)

// Warehouse is what the stack and the commands use of a warehouse: loads,
// and SQL reads (readiness, windrow query and reconcile, which open it with
// OpenWarehouseReadOnly). Both implementations have it.
type Warehouse interface {
	warehouse.Warehouse
	// DB returns a database handle for reads and a release function.
	DB(ctx context.Context) (*sql.DB, func(), error)
	// WindowCounts returns the rows of a table per window id (reconcile).
	WindowCounts(ctx context.Context, table string) (map[string]int64, error)
	// String names the warehouse for people, without a password.
	String() string
}

var (
	_ Warehouse = (*duckdbwh.Warehouse)(nil)
	_ Warehouse = (*postgres.Warehouse)(nil)
)

// OpenObjects opens the object store a URL names:
//
//	file:///abs/dir, file:rel/dir or a plain directory   a local directory
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true&profile=P]
//
// For s3, what the query leaves out comes from the standard AWS chain
// (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, profiles); path_style defaults to true when an
// endpoint is given (self-hosted servers), else false. The bucket is created
// if missing.
func OpenObjects(ctx context.Context, raw string) (objstore.Store, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || len(u.Scheme) == 1 { // a plain path (or a Windows drive letter)
		return store(local.New(raw))
	}
	switch u.Scheme {
	case "file":
		p := u.Path
		if p == "" {
			p = u.Opaque
		}
		if p == "" {
			return nil, fmt.Errorf("object store %q: file URL without a path: want file:///abs/dir", raw)
		}
		return store(local.New(filepath.FromSlash(p)))
	case "s3":
		q := u.Query()
		cfg := s3.Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Endpoint: q.Get("endpoint"),
			Region: q.Get("region"), Profile: q.Get("profile"), PathStyle: q.Get("endpoint") != ""}
		if v := q.Get("path_style"); v != "" {
			if cfg.PathStyle, err = strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("object store %s: path_style=%q: want true or false", redactURL(u), v)
			}
		}
		for k := range q {
			switch k {
			case "endpoint", "region", "profile", "path_style":
			default:
				return nil, fmt.Errorf("object store %s: unknown option %q: want endpoint, region, profile or path_style", redactURL(u), k)
			}
		}
		return store(s3.Open(ctx, cfg))
	}
	return nil, fmt.Errorf("object store %s: scheme %q: want file://, s3:// or a directory", redactURL(u), u.Scheme)
}

// OpenWarehouse opens the warehouse a URL names, reading batch objects from
// objects (the loader's store):
//
//	duckdb:///abs/file.duckdb, duckdb:rel/file.duckdb or a plain path   DuckDB
//	postgres://USER[:PASSWORD]@HOST:PORT/DB?sslmode=…                 PostgreSQL
func OpenWarehouse(ctx context.Context, raw string, objects objstore.Store) (Warehouse, error) {
	return openWarehouse(ctx, raw, objects, false)
}

// OpenWarehouseReadOnly opens the warehouse a URL names (as OpenWarehouse)
// only to read it, for windrow query and reconcile: a DuckDB file, which
// must exist, read-only and without access to other files; PostgreSQL in
// read-only transactions, without rights on the server's files (see the
// ReadOnly fields of duckdbwh.Config and postgres.Config). Statements that
// would write fail; Load returns warehouse.ErrReadOnly.
func OpenWarehouseReadOnly(ctx context.Context, raw string) (Warehouse, error) {
	return openWarehouse(ctx, raw, nil, true)
}

func openWarehouse(ctx context.Context, raw string, objects objstore.Store, readOnly bool) (Warehouse, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || len(u.Scheme) == 1 {
		return wh(duckdbwh.Open(duckdbwh.Config{Path: raw, Objects: objects, ReadOnly: readOnly}))
	}
	switch u.Scheme {
	case "duckdb":
		p := u.Path
		if p == "" {
			p = u.Opaque
		}
		if p == "" {
			return nil, fmt.Errorf("warehouse %q: duckdb URL without a path: want duckdb:///abs/file.duckdb", raw)
		}
		return wh(duckdbwh.Open(duckdbwh.Config{Path: filepath.FromSlash(p), Objects: objects, ReadOnly: readOnly}))
	case "postgres", "postgresql":
		return wh(postgres.Open(ctx, postgres.Config{URL: raw, Objects: objects, ReadOnly: readOnly}))
	}
	return nil, fmt.Errorf("warehouse %s: scheme %q: want duckdb://, postgres:// or a DuckDB file", redactURL(u), u.Scheme)
}

// redactURL is u without a password.
func redactURL(u *url.URL) string {
	return u.Redacted()
}

// store and wh return an opened implementation as its interface, and a nil
// interface (not a nil pointer in one) with an error.
func store[T objstore.Store](s T, err error) (objstore.Store, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}

func wh[T Warehouse](w T, err error) (Warehouse, error) {
	if err != nil {
		return nil, err
	}
	return w, nil
}
