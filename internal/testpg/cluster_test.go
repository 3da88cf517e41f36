//go:build unix

package testpg

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/windrow/windrow/internal/testbin"
)

// TestCluster makes a private cluster, runs it, writes a row, crashes it
// (SIGQUIT: immediate shutdown) and restarts it: the committed row is
// there after recovery.
func TestCluster(t *testing.T) {
	if _, err := BinDir(); err != nil {
		if Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ports, err := testbin.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(ctx, ports[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove()
	logPath := filepath.Join(t.TempDir(), "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres log:\n%s", testbin.Tail(logPath, 16<<10))
		}
	})
	start := func() *exec.Cmd {
		bin, args := c.Command()
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.Cred, Pdeathsig: syscall.SIGKILL}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(ctx, time.Minute); err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
		return cmd
	}
	cmd := start()
	exec1 := func(sql string) {
		t.Helper()
		conn := connect(t, ctx, c.URL())
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec1("CREATE TABLE t (n int); INSERT INTO t VALUES (41), (1)")
	if err := cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	cmd = start()
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}()
	conn := connect(t, ctx, c.URL())
	defer conn.Close(ctx)
	var sum int
	if err := conn.QueryRow(ctx, "SELECT sum(n) FROM t").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != 42 {
		t.Fatalf("after a crash and a restart, sum = %d, want 42", sum)
	}
}

func connect(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}
