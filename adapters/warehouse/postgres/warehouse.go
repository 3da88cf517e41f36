package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/warehouse"
)

// Defaults of Config.
const (
	DefaultMaxConns       = 4
	DefaultConnectTimeout = 10 * time.Second
)

// Config configures a Warehouse.
type Config struct {
	// URL of the database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB?sslmode=…
	// (any libpq connection string pgx takes; options such as
	// search_path=… are sent as run-time parameters). Unqualified tables and
	// the ledger go to the first schema of the search path. Required. The
	// password never appears in errors or logs (Redact).
	URL string
	// Objects is the object store that holds the batches' Parquet objects:
	// the store the loader reads. Required for Load; a warehouse opened only
	// to read (windrow query, reconcile) needs none. Objects are streamed
	// from the store (ranged reads), never copied whole.
	Objects objstore.Store
	// MaxConns is the most connections the pool opens; one load uses one.
	// Default 4.
	MaxConns int32
	// ConnectTimeout bounds each connection attempt. Default 10s.
	ConnectTimeout time.Duration
	// ReadOnly makes every transaction read only
	// (default_transaction_read_only=on on every connection), and drops a
	// role that may read or write the server's files or run programs there
	// (a superuser, or a member of pg_read_server_files,
	// pg_write_server_files or pg_execute_server_program) to
	// pg_read_all_data with SET ROLE, so that COPY … TO a file,
	// pg_read_file and the like are refused too; a connection whose role
	// cannot drop so (PostgreSQL before 14) fails. Load returns
	// warehouse.ErrReadOnly. For windrow query and reconcile. It guards
	// against mistakes, not against someone who holds the URL (RESET ROLE
	// undoes the drop): for untrusted SQL, connect as a role that may only
	// SELECT.
	ReadOnly bool
}

func (c *Config) setDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("URL: required"))
	case !strings.HasPrefix(c.URL, "postgres://") && !strings.HasPrefix(c.URL, "postgresql://"):
		errs = append(errs, fmt.Errorf("URL: %q, want postgres://USER@HOST:PORT/DB?…", Redact(c.URL)))
	default:
		if _, err := pgxpool.ParseConfig(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("URL: %s: %s", Redact(c.URL), redactErr(c.URL, err)))
		}
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("MaxConns: %d, want > 0", c.MaxConns))
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("ConnectTimeout: %s, want > 0", c.ConnectTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("postgres warehouse config: %w", err)
	}
	return nil
}

// Redact returns a connection URL without its password, for errors and
// logs: postgres://user:xxxxx@host/db. A string that does not parse as a URL
// is replaced as a whole.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "postgres://(unparsable URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// redactErr is err's text without the URL's password (pgx quotes parts of
// the connection string in its parse errors).
func redactErr(dsn string, err error) string {
	msg := err.Error()
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return strings.ReplaceAll(msg, dsn, Redact(dsn))
}

// Warehouse is a PostgreSQL database that loads batches. It is safe for
// concurrent use: every Load runs on its own pooled connection.
type Warehouse struct {
	cfg  Config
	pool *pgxpool.Pool
	name string // the redacted URL

	mu          sync.RWMutex // Load holds it shared, Close exclusively
	closed      bool
	ledgerReady atomic.Bool // the ledger was created or found
	roles       sync.Map    // table (tableName.String()) → postLoadRole, made and granted

	dbOnce sync.Once
	db     *sql.DB
}

var _ warehouse.Warehouse = (*Warehouse)(nil)

// Open checks cfg and returns a Warehouse with a connection pool; it
// connects once to fail early (an unreachable server wraps
// warehouse.ErrTransient).
func Open(ctx context.Context, cfg Config) (*Warehouse, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres warehouse %s: %s", Redact(cfg.URL), redactErr(cfg.URL, err))
	}
	pc.MaxConns = cfg.MaxConns
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	if cfg.ReadOnly {
		pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	pc.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		registerNumeric(conn.TypeMap())
		if cfg.ReadOnly {
			return dropServerFileRights(ctx, conn)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres warehouse %s: %s", Redact(cfg.URL), redactErr(cfg.URL, err))
	}
	w := &Warehouse{cfg: cfg, pool: pool, name: Redact(cfg.URL)}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres warehouse %s: %w", w.name, classify(err))
	}
	return w, nil
}

// serverFileRightsSQL is true when the connection's role may read or write
// the server's files or run programs there: a superuser, or a role with the
// privileges of one of the predefined roles that allow it.
const serverFileRightsSQL = `SELECT current_setting('is_superuser') = 'on' OR coalesce(bool_or(pg_has_role(oid, 'USAGE')), false)
	FROM pg_roles WHERE rolname IN ('pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program')`

// dropServerFileRights sets the role of a read-only connection whose role
// may touch the server's files to pg_read_all_data, which may read every
// table and nothing else (Config.ReadOnly).
func dropServerFileRights(ctx context.Context, conn *pgx.Conn) error {
	var rights bool
	if err := conn.QueryRow(ctx, serverFileRightsSQL).Scan(&rights); err != nil {
		return fmt.Errorf("read-only connection: check the role's rights: %w", err)
	}
	if !rights {
		return nil
	}
	if _, err := conn.Exec(ctx, "SET ROLE pg_read_all_data"); err != nil {
		return fmt.Errorf("read-only connection as %s: the role may read or write the server's files, and cannot drop to pg_read_all_data "+
			"(PostgreSQL 14 or later; a role that is not a superuser must be a member): connect as a role without those rights: %w",
			conn.Config().User, err)
	}
	return nil
}

// String names the warehouse without its password.
func (w *Warehouse) String() string { return w.name }

// Close closes the pool. It waits for loads in progress; later calls of
// Load and DB return ErrClosed. Close is idempotent.
func (w *Warehouse) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if w.db != nil {
		err = w.db.Close()
	}
	w.pool.Close()
	return err
}

// DB lends a database/sql handle on the warehouse's pool to readers in this
// process (the windrow CLI, tests). release must be called exactly once; the
// caller must not close the *sql.DB.
func (w *Warehouse) DB(ctx context.Context) (*sql.DB, func(), error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil, nil, warehouse.ErrClosed
	}
	w.dbOnce.Do(func() { w.db = stdlib.OpenDBFromPool(w.pool) })
	return w.db, func() {}, nil
}

// WindowCounts returns the table's row count per window id (the window start
// in UTC, "20060102T150405Z"); a missing table counts nothing.
func (w *Warehouse) WindowCounts(ctx context.Context, table string) (map[string]int64, error) {
	t, err := parseTable(table)
	if err != nil {
		return nil, err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil, warehouse.ErrClosed
	}
	var exists bool
	if err := w.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t.sql()).Scan(&exists); err != nil {
		return nil, fmt.Errorf("count rows of %s: %w", t, classify(err))
	}
	out := map[string]int64{}
	if !exists {
		return out, nil
	}
	rows, err := w.pool.Query(ctx, `SELECT to_char(_window_start AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"'), count(*) FROM `+t.sql()+` GROUP BY 1`)
	if err != nil {
		return nil, fmt.Errorf("count rows of %s: %w", t, classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", t, classify(err))
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count rows of %s: %w", t, classify(err))
	}
	return out, nil
}

// querier is what schema lookups need of a connection or transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// transientCodes are the SQLSTATEs of failures that may go away on their
// own: the statement or the connection is worth retrying.
var transientCodes = map[string]bool{
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
	"55P03": true, // lock_not_available
	"57P01": true, // admin_shutdown
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now
	"53000": true, // insufficient_resources
	"53100": true, // disk_full
	"53200": true, // out_of_memory
	"53300": true, // too_many_connections
	"58000": true, // system_error
	"58030": true, // io_error
}

// classify wraps err with warehouse.ErrTransient when it may go away on its
// own: a lost or refused connection, a serialization failure, a deadlock,
// a server shutting down. A canceled context is not transient.
func classify(err error) error {
	if err == nil || errors.Is(err, warehouse.ErrTransient) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code == "53100" { // disk_full: retried with backoff, and said so
			return fmt.Errorf("%w: %w", warehouse.ErrDiskFull, err)
		}
		if transientCodes[pgErr.Code] || strings.HasPrefix(pgErr.Code, "08") {
			return fmt.Errorf("%w: %w", warehouse.ErrTransient, err)
		}
		return err
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr), pgconn.SafeToRetry(err), pgconn.Timeout(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("%w: %w", warehouse.ErrTransient, err)
	}
	if strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "connection reset") {
		return fmt.Errorf("%w: %w", warehouse.ErrTransient, err)
	}
	return err
}
