package postgres_test

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/warehouse/postgres"
	"github.com/windrow/windrow/adapters/warehouse/warehousetest"
	"github.com/windrow/windrow/internal/testpg"
)

// TestConformance runs the warehouse conformance suite against the real
// server, each test in its own schema (dropped at the end). The warehouse
// connects through a proxy that Unavailable cuts: open connections are
// reset and new ones closed at once, as when the server restarts.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	type instance struct {
		dsn   string
		proxy *proxy
	}
	instances := map[warehouse.Warehouse]instance{}
	warehousetest.Run(t, warehousetest.Harness{
		Open: func(t *testing.T) warehousetest.Instance {
			schema, dsn := testpg.Schema(t)
			store, err := local.New(filepath.Join(t.TempDir(), "objects"))
			if err != nil {
				t.Fatal(err)
			}
			p := startProxy(t)
			w := openWarehouse(t, p.dsn(t, dsn), store)
			dropPostLoadRoles(t, schema)
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			mu.Lock()
			instances[w] = instance{dsn: dsn, proxy: p}
			mu.Unlock()
			return warehousetest.Instance{Warehouse: w, Objects: store,
				DB:            func(context.Context) (*sql.DB, func(), error) { return db, func() {}, nil },
				GrantPostLoad: w.GrantPostLoad}
		},
		Unavailable: func(t *testing.T, in warehousetest.Instance) func() {
			mu.Lock()
			defer mu.Unlock()
			return instances[in.Warehouse].proxy.cut()
		},
		Another: func(t *testing.T, in warehousetest.Instance) warehouse.Warehouse {
			mu.Lock()
			dsn := instances[in.Warehouse].dsn
			mu.Unlock()
			return openWarehouse(t, dsn, in.Objects)
		},
	})
}

// dropPostLoadRoles drops, when t ends, the post-load roles the warehouse
// made for tables of schema (roles belong to the whole server; their
// comment names the table).
func dropPostLoadRoles(t testing.TB, schema string) {
	admin := testpg.Connect(t)
	t.Cleanup(func() {
		ctx := context.Background()
		rows, err := admin.Query(ctx, `SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)
			AND shobj_description(oid, 'pg_authid') LIKE '%.' || $2 || '.%'`, postgres.PostLoadRolePrefix, schema)
		if err != nil {
			t.Errorf("post-load roles: %v", err)
			return
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Errorf("post-load roles: %v", err)
		}
		for _, name := range names {
			r := pgx.Identifier{name}.Sanitize()
			if _, err := admin.Exec(ctx, `DROP OWNED BY `+r); err != nil {
				t.Errorf("drop what %s owns: %v", name, err)
			}
			if _, err := admin.Exec(ctx, `DROP ROLE `+r); err != nil {
				t.Errorf("drop role %s: %v", name, err)
			}
		}
	})
}

// openWarehouse opens a warehouse closed when t ends.
func openWarehouse(t testing.TB, dsn string, store objstore.Store) *postgres.Warehouse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := postgres.Open(ctx, postgres.Config{URL: dsn, Objects: store, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return w
}

// proxy forwards TCP connections from a loopback port to the server until
// cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func startProxy(t testing.TB) *proxy {
	t.Helper()
	u, err := url.Parse(testpg.URL())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: u.Host, conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

// dsn is dsn with the proxy's address.
func (p *proxy) dsn(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			buf := make([]byte, 64<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(s, c) })
		p.wg.Go(func() { pipe(c, s) })
	}
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not a clean close
		}
		c.Close()
		delete(p.conns, c)
	}
}

// cut resets every open connection and refuses new ones until the
// returned func is called.
func (p *proxy) cut() func() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	p.closeAll()
	return func() {
		p.mu.Lock()
		p.down = false
		p.mu.Unlock()
	}
}
