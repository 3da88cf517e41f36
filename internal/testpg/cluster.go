//go:build unix

package testpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a private PostgreSQL server for a test that must stop, crash
// and restart the server while windrow uses it (the chaos run): its own
// data directory, made by initdb, and a loopback port. The test runs the
// server itself (Command), under its own supervision; the project's
// shared server at 5432 is never touched.
type Cluster struct {
	// BinDir holds initdb and postgres.
	BinDir string
	// DataDir is the cluster's data directory.
	DataDir string
	// Port is the TCP port on 127.0.0.1 the server listens on.
	Port int
	// Cred is the user the server runs as when the test runs as root
	// (PostgreSQL refuses to run as root): the "postgres" user. Nil
	// otherwise.
	Cred *syscall.Credential
}

// BinDir finds PostgreSQL's server programs: $WINDROW_PG_BINDIR, else
// `pg_config --bindir` if it holds initdb, else the newest
// /usr/lib/postgresql/*/bin (Debian's layout).
func BinDir() (string, error) {
	has := func(dir string) bool {
		st, err := os.Stat(filepath.Join(dir, "initdb"))
		return err == nil && !st.IsDir()
	}
	if d := os.Getenv("WINDROW_PG_BINDIR"); d != "" {
		if !has(d) {
			return "", fmt.Errorf("WINDROW_PG_BINDIR=%s holds no initdb", d)
		}
		return d, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if has(dirs[i]) {
			return dirs[i], nil
		}
	}
	return "", errors.New("no PostgreSQL server programs (initdb, postgres) found: install postgresql, or set WINDROW_PG_BINDIR")
}

// version is the major version in /usr/lib/postgresql/N/bin, 0 if none.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// NewCluster makes a cluster with initdb in a new directory under the
// system's temporary directory (superuser postgres, trust authentication
// on loopback), to listen on port. Remove deletes it.
func NewCluster(ctx context.Context, port int) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "windrow-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{BinDir: bin, DataDir: filepath.Join(dir, "data"), Port: port}
	fail := func(err error) (*Cluster, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Mkdir(c.DataDir, 0o700); err != nil {
		return fail(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running as root, PostgreSQL must run as another user: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.Cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, d := range []string{dir, c.DataDir} {
			if err := os.Chown(d, uid, gid); err != nil {
				return fail(err)
			}
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "--pgdata", c.DataDir, "--username", "postgres",
		"--auth", "trust", "--encoding", "UTF8", "--no-sync", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.Cred}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	return c, nil
}

// Command is the server's program and arguments: listening on 127.0.0.1
// only, no Unix socket, fsync off (a test survives the server's crash,
// not the machine's). Run it as Cred. Stop it with SIGINT (fast shutdown:
// clients are disconnected, transactions in flight roll back) or SIGQUIT
// (immediate shutdown: like a crash, recovery runs at the next start);
// SIGTERM waits for every client to leave.
func (c *Cluster) Command() (bin string, args []string) {
	return filepath.Join(c.BinDir, "postgres"), []string{"-D", c.DataDir, "-p", strconv.Itoa(c.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off",
		"-c", "max_connections=200", "-c", "logging_collector=off"}
}

// URL is the server's database postgres, as its superuser.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
}

// Ping connects to the server and runs a query.
func (c *Cluster) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// WaitReady pings the server until it answers or timeout passes.
func (c *Cluster) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := c.Ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL on 127.0.0.1:%d not ready after %s: %v", c.Port, timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Remove deletes the cluster's directory; the server must be stopped.
func (c *Cluster) Remove() error { return os.RemoveAll(filepath.Dir(c.DataDir)) }
