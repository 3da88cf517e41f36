package helmcheck

import (
	"bufio"
	"context"
	"encoding/json"
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
)

// What the chart must agree on with the image and the code (the same as
// the constants of deploy/deploy_test.go in the main module).
const (
	// dataDir is the image's working and data directory.
	dataDir = "/var/lib/windrow"
	// metricsPort is the port every role's --metrics-addr listens on.
	metricsPort = "9464"
)

// repoRoot is the windrow repository: $WINDROW_REPO, or ../.. (this
// module is tools/helmcheck).
func repoRoot(t *testing.T) string {
	t.Helper()
	root := os.Getenv("WINDROW_REPO")
	if root == "" {
		root = filepath.Join("..", "..")
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "helm", "windrow", "Chart.yaml")); err != nil {
		t.Fatalf("%s is not the windrow repository (no deploy/helm/windrow/Chart.yaml): run from tools/helmcheck or set WINDROW_REPO", root)
	}
	return root
}

// windrowBin is the windrow binary under test, $WINDROW_BIN: the tests
// fail without it rather than check nothing.
func windrowBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("WINDROW_BIN")
	if bin == "" {
		t.Fatal("WINDROW_BIN is not set: build windrow (go build -o /tmp/windrow ./cmd/windrow in the repository) and run WINDROW_BIN=/tmp/windrow go test ./...")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("WINDROW_BIN=%s: not an executable file (%v)", bin, err)
	}
	return abs
}

// envPattern finds environment variable names in Go source: quoted
// literals of the families windrow and its libraries read.
var envPattern = regexp.MustCompile(`"((?:NATS|WINDROW|OTEL|AWS|PG)_?[A-Z0-9_]*)"`)

// windrowEnv is the set of environment variables windrow reads: the names
// quoted in its own code (cmd, app, adapters: NATS_*, WINDROW_*, OTEL_*),
// in the AWS SDK's config loading (AWS_*, which the S3 store takes from
// the environment) and in pgx's connection settings (PGPASSWORD, …, which
// the PostgreSQL warehouse takes through pgxpool.ParseConfig). The
// libraries' sources are the versions of windrow's go.mod, found by
// `go list -m` in the repository (already in the module cache once windrow
// is built).
func windrowEnv(t *testing.T) map[string]bool {
	t.Helper()
	root := repoRoot(t)
	dirs := []string{filepath.Join(root, "cmd"), filepath.Join(root, "app"), filepath.Join(root, "adapters")}
	for _, mod := range []struct{ path, dir string }{
		{"github.com/aws/aws-sdk-go-v2/config", "."},
		{"github.com/jackc/pgx/v5", "pgconn"},
	} {
		cmd := exec.CommandContext(t.Context(), "go", "list", "-mod=readonly", "-m", "-f", "{{.Dir}}", mod.path)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOWORK=off")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -m %s in %s: %v", mod.path, root, err)
		}
		dir := strings.TrimSpace(string(out))
		if dir == "" {
			t.Fatalf("go list -m %s: not in the module cache (run go mod download in the repository)", mod.path)
		}
		dirs = append(dirs, filepath.Join(dir, mod.dir))
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

// metricsServer runs the windrow binary as `windrow up` with the
// collector role alone, an embedded NATS server on a free port and a
// temporary data directory, its metrics server (/metrics, /healthz,
// /readyz, as every role runs it) on a free loopback port, and returns
// that server's base URL once it listens. The process is stopped at the
// end of the test.
func metricsServer(t *testing.T, bin string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "up", "--data-dir", t.TempDir(), "--nats-port", "-1", "--roles", "collector",
		"--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "info")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("windrow up: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	var logged strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent {
				logged.WriteString(line + "\n")
				var rec struct{ Msg, Addr string }
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "metrics server listening" && rec.Addr != "" {
					found <- "http://" + rec.Addr
					sent = true
				}
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatalf("windrow up exited before its metrics server listened:\n%s", logged.String())
		}
		return u
	case <-time.After(60 * time.Second):
		t.Fatal("windrow up: its metrics server did not listen within 60s")
	}
	return ""
}

// checkServed GETs path on windrow's metrics server and wants a 200: a
// probe path the code does not serve fails. Readiness may take a moment
// after start: a 503 (not ready yet) is retried for up to 30s.
func checkServed(t *testing.T, base, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s on windrow's metrics server: %s, want 200", path, resp.Status)
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("GET %s on windrow's metrics server: %s, want 200", path, resp.Status)
			return
		case <-time.After(200 * time.Millisecond):
		}
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

// checkArgs reports every word of args that is not a flag of flags (name →
// whether it takes a value) or that flag's value: a misspelt flag, or a
// positional argument, which the role commands ignore.
func checkArgs(t *testing.T, args []string, flags map[string]bool) {
	t.Helper()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%q: not a flag (the command ignores positional arguments)", a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, ok := flags[name]
		if !ok {
			t.Errorf("flag %s: not defined by the command", a)
			if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++ // its value, likely
			}
			continue
		}
		if takesValue && !hasValue {
			if i+1 == len(args) {
				t.Errorf("flag %s: no value", a)
			}
			i++
		}
	}
}

// flagValue is the value of --name in args ("" if absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// commandFlags runs `windrow role -h` and returns the flags it lists, each
// with whether it takes a value ("  -name type" does, "  -name" does not).
// It fails the test if the command does not exist.
func commandFlags(t *testing.T, bin, role string) map[string]bool {
	t.Helper()
	return helpFlags(t, bin, []string{role}, "Usage of "+role+":")
}

// helpFlags runs `windrow WORDS... -h`, checks that its output starts with
// usage (the command exists) and returns the flags it lists, as
// commandFlags does.
func helpFlags(t *testing.T, bin string, words []string, usage string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(words, "-h")...).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), usage) {
		t.Fatalf("windrow %s -h: not a command (%v):\n%s", strings.Join(words, " "), err, out)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		// Flag lines are indented by two spaces, their usage by a tab.
		rest, ok := strings.CutPrefix(line, "  -")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		flags[f[0]] = len(f) > 1
	}
	if len(flags) == 0 {
		t.Fatalf("windrow %s -h lists no flags:\n%s", strings.Join(words, " "), out)
	}
	return flags
}
