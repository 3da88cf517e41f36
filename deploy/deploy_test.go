package deploy_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/app/metrics"
)

// What the compose file and the Helm chart must agree on with the image
// and the code. The Helm chart's tests live in the tools module
// tools/helmcheck (Helm's engine stays out of this module's go.mod), with
// copies of these constants and of the helpers they share.
const (
	// imageBinary is where deploy/build/image.sh (tools/image) and
	// deploy/docker/Dockerfile put windrow, and the entrypoint.
	imageBinary = "/usr/local/bin/windrow"
	// dataDir is the image's working and data directory.
	dataDir = "/var/lib/windrow"
	// metricsPort is the port every role's --metrics-addr listens on.
	metricsPort = "9464"
)

// natsServers are the NATS services of the compose file.
var natsServers = []string{"nats-1", "nats-2", "nats-3"}

// envPattern finds environment variable names in Go source: quoted
// literals of the families windrow and its libraries read.
var envPattern = regexp.MustCompile(`"((?:NATS|WINDROW|OTEL|AWS|PG)_?[A-Z0-9_]*)"`)

// windrowEnv is the set of environment variables windrow reads: the names
// quoted in its own code (cmd, app, adapters: NATS_*, WINDROW_*, OTEL_*),
// in the AWS SDK's config loading (AWS_*, which the S3 store takes from
// the environment) and in pgx's connection settings (PGPASSWORD, …, which
// the PostgreSQL warehouse takes through pgxpool.ParseConfig).
func windrowEnv(t *testing.T) map[string]bool {
	t.Helper()
	dirs := []string{"../cmd", "../app", "../adapters"}
	for _, mod := range []struct{ path, dir string }{
		{"github.com/aws/aws-sdk-go-v2/config", "."},
		{"github.com/jackc/pgx/v5", "pgconn"},
	} {
		out, err := exec.CommandContext(t.Context(), "go", "list", "-mod=readonly", "-m", "-f", "{{.Dir}}", mod.path).Output()
		if err != nil {
			t.Fatalf("go list -m %s: %v", mod.path, err)
		}
		dirs = append(dirs, filepath.Join(strings.TrimSpace(string(out)), mod.dir))
	}
	env := map[string]bool{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range envPattern.FindAllStringSubmatch(string(data), -1) {
				env[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The SDK builds a service's endpoint variable as AWS_ENDPOINT_URL_
	// and the service ID (config/env_config.go).
	if env["AWS_ENDPOINT_URL"] {
		env["AWS_ENDPOINT_URL_S3"] = true
	}
	for _, must := range []string{"NATS_URL", "WINDROW_NATS_REPLICAS", "AWS_ACCESS_KEY_ID", "PGPASSWORD", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if !env[must] {
			t.Fatalf("%s not found in windrow's sources: the scan is broken", must)
		}
	}
	return env
}

// metricsServer starts windrow's own /metrics, /healthz and /readyz
// server (app/metrics, as every role runs it) on a free loopback port.
func metricsServer(t *testing.T) *metrics.Server {
	t.Helper()
	srv, err := metrics.Listen(metrics.ServerConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

// checkServed GETs path on windrow's metrics server and wants a 200: a
// probe path the code does not serve fails.
func checkServed(t *testing.T, srv *metrics.Server, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s on windrow's metrics server: %s, want 200", path, resp.Status)
	}
}

// checkNATSURL wants the comma-separated servers of the three NATS nodes
// given by hosts, on the client port 4222.
func checkNATSURL(t *testing.T, got string, hosts []string) {
	t.Helper()
	urls := strings.Split(got, ",")
	if len(urls) != len(hosts) {
		t.Errorf("NATS URL %q: %d servers, want %d (%v)", got, len(urls), len(hosts), hosts)
		return
	}
	for i, u := range urls {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.Scheme != "nats" || p.Hostname() != hosts[i] || p.Port() != "4222" {
			t.Errorf("NATS URL %q: server %d is %q, want nats://%s:4222", got, i+1, u, hosts[i])
		}
	}
}

// portOf is the port of a host:port address.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("address %q: %v", addr, err)
	}
	return port
}

// runHelp runs `windrow ARGS... -h`: the flags parse with their values
// (the command stops at -h, before it connects anywhere).
func runHelp(t *testing.T, bin string, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(args, "-h")...).CombinedOutput()
	if err != nil {
		t.Errorf("windrow %s -h: %v\n%s", strings.Join(args, " "), err, out)
	}
}
