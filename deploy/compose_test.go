package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// loadCompose loads deploy/compose/compose.yaml as docker compose would,
// with env as the project's environment (interpolation of ${VAR:-default}).
func loadCompose(t *testing.T, env []string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose/compose.yaml"},
		cli.WithEnv(env), cli.WithName("windrow"), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load compose/compose.yaml: %v", err)
	}
	return p
}

// isWindrow reports whether the service runs the windrow image.
func isWindrow(s types.ServiceConfig) bool {
	return strings.HasPrefix(s.Image, "windrow:")
}

// envOf is the service's environment variable name (unset: "").
func envOf(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// TestComposeRunsRealCommands: deploy/compose/compose.yaml, as compose-go
// loads it, runs a 3-node NATS cluster with deploy/nats/cluster.conf, and
// two of each windrow role whose commands are windrow commands with flags
// those commands define (the built binary's -h), with their own data
// directories, --metrics-addr on the port their health check and
// Prometheus use, all three NATS servers and 3 replicas, the S3 server's
// endpoint and keys, PostgreSQL's user, database and password, and
// environment variables windrow reads; the health check is `windrow probe`
// and passes against windrow's real metrics server.
func TestComposeRunsRealCommands(t *testing.T) {
	p := loadCompose(t, nil)
	bin := buildWindrow(t)
	known := windrowEnv(t)
	srv := metricsServer(t)
	checkServed(t, srv, "/healthz")
	checkServed(t, srv, "/readyz")

	// NATS: three nodes of one cluster, each routing to all three.
	for _, name := range natsServers {
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("no NATS service %s", name)
			continue
		}
		if envOf(s, "NATS_NAME") != name {
			t.Errorf("%s: NATS_NAME %q, want its own name", name, envOf(s, "NATS_NAME"))
		}
		for i, peer := range natsServers {
			if got, want := envOf(s, "NATS_ROUTE_"+string(rune('1'+i))), "nats-route://"+peer+":6222"; got != want {
				t.Errorf("%s: NATS_ROUTE_%d %q, want %q", name, i+1, got, want)
			}
		}
		if !mounts(s, "nats/cluster.conf", "/etc/nats/cluster.conf") || !slices.Equal(s.Command, types.ShellCommand{"--config", "/etc/nats/cluster.conf"}) {
			t.Errorf("%s: not running deploy/nats/cluster.conf (command %q)", name, s.Command)
		}
	}
	s3 := p.Services["s3"]
	pg := p.Services["postgres"]
	s3Port := portOf(t, flagValue(s3.Command, "port"))

	// Prometheus scrapes every role.
	scraped := prometheusTargets(t, "compose/prometheus.yml")

	roles := map[string]int{}
	dataVolumes := map[string]string{}
	for name, s := range p.Services {
		if !isWindrow(s) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			cmd := []string(s.Command)
			if len(cmd) == 0 {
				t.Fatal("no command")
			}
			for k := range s.Environment {
				if !known[k] {
					t.Errorf("environment %s: not a variable windrow reads", k)
				}
			}
			checkNATSURL(t, envOf(s, "NATS_URL"), natsServers)
			if envOf(s, "WINDROW_NATS_REPLICAS") != "3" {
				t.Errorf("WINDROW_NATS_REPLICAS %q, want 3", envOf(s, "WINDROW_NATS_REPLICAS"))
			}
			if got, want := envOf(s, "AWS_ENDPOINT_URL_S3"), "http://s3:"+s3Port; got != want {
				t.Errorf("AWS_ENDPOINT_URL_S3 %q, want the S3 service, %q", got, want)
			}
			if envOf(s, "AWS_ACCESS_KEY_ID") != envOf(s3, "ROOT_ACCESS_KEY") || envOf(s, "AWS_SECRET_ACCESS_KEY") != envOf(s3, "ROOT_SECRET_KEY") {
				t.Error("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not the S3 server's root keys")
			}
			if envOf(s, "PGPASSWORD") != envOf(pg, "POSTGRES_PASSWORD") {
				t.Error("PGPASSWORD is not PostgreSQL's POSTGRES_PASSWORD")
			}

			if cmd[0] == "policy" {
				checkPolicyApply(t, bin, s, cmd)
				return
			}
			role := cmd[0]
			roles[role]++
			flags := commandFlags(t, bin, role)
			checkArgs(t, cmd[1:], flags)
			runHelp(t, bin, cmd)

			dir := flagValue(cmd, "data-dir")
			vol := volumeAt(s, dir)
			if vol == "" {
				t.Errorf("--data-dir %q: no volume mounted there", dir)
			} else if other, ok := dataVolumes[vol]; ok {
				t.Errorf("data volume %s shared with %s: each process needs its own", vol, other)
			}
			dataVolumes[vol] = name
			if got := flagValue(cmd, "instance"); got != name {
				t.Errorf("--instance %q, want the service name %q (stable across restarts, unique)", got, name)
			}
			if !strings.HasPrefix(flagValue(cmd, "objects"), "s3://") {
				t.Errorf("--objects %q, want the shared S3 bucket", flagValue(cmd, "objects"))
			}
			if role == "loader" {
				checkWarehouse(t, flagValue(cmd, "warehouse"), pg)
			}

			addr := flagValue(cmd, "metrics-addr")
			if host := strings.TrimSuffix(addr, ":"+metricsPort); host != "0.0.0.0" {
				t.Errorf("--metrics-addr %q, want 0.0.0.0:%s (reachable by Prometheus)", addr, metricsPort)
			}
			if !slices.Contains(scraped, name+":"+metricsPort) {
				t.Errorf("prometheus.yml does not scrape %s:%s", name, metricsPort)
			}
			checkHealthcheck(t, bin, s, srv.Addr())
		})
	}
	for _, role := range []string{"collector", "compactor", "loader"} {
		if roles[role] != 2 {
			t.Errorf("%d %s services, want 2", roles[role], role)
		}
	}
	if _, ok := p.Services["policy-apply"]; !ok {
		t.Error("no policy-apply service")
	}
}

// TestComposeSecretsFromEnvironment: the keys and password given in the
// environment reach both the server and every windrow role.
func TestComposeSecretsFromEnvironment(t *testing.T) {
	p := loadCompose(t, []string{"S3_ACCESS_KEY=k1", "S3_SECRET_KEY=s1", "POSTGRES_PASSWORD=p1", "WINDROW_IMAGE=windrow:v9"})
	if envOf(p.Services["s3"], "ROOT_ACCESS_KEY") != "k1" || envOf(p.Services["postgres"], "POSTGRES_PASSWORD") != "p1" {
		t.Error("the servers do not take the keys from the environment")
	}
	n := 0
	for name, s := range p.Services {
		if !isWindrow(s) {
			continue
		}
		n++
		if s.Image != "windrow:v9" || envOf(s, "AWS_ACCESS_KEY_ID") != "k1" || envOf(s, "AWS_SECRET_ACCESS_KEY") != "s1" || envOf(s, "PGPASSWORD") != "p1" {
			t.Errorf("%s: image %q, keys and password not the environment's", name, s.Image)
		}
	}
	if n != 7 {
		t.Errorf("%d windrow services, want 7 (2 of each role and policy-apply)", n)
	}
}

// checkPolicyApply: `windrow policy apply FILES|DIRS` with flags of that
// command, its paths in a read-only mount of deploy/policies, which
// `windrow policy validate` accepts.
func checkPolicyApply(t *testing.T, bin string, s types.ServiceConfig, cmd []string) {
	t.Helper()
	if len(cmd) < 3 || cmd[1] != "apply" {
		t.Fatalf("command %q, want policy apply PATH...", cmd)
	}
	flags := helpFlags(t, bin, []string{"policy", "apply"}, "usage: windrow policy apply")
	var paths, rest []string
	for _, a := range cmd[2:] {
		if strings.HasPrefix(a, "-") || len(rest) > 0 && flags[strings.TrimLeft(rest[len(rest)-1], "-")] {
			rest = append(rest, a)
			continue
		}
		paths = append(paths, a)
	}
	checkArgs(t, rest, flags)
	for _, path := range paths {
		src := hostPath(s, path)
		if src == "" {
			t.Errorf("%s: not in a mounted volume", path)
			continue
		}
		out, err := exec.CommandContext(t.Context(), bin, "policy", "validate", src).CombinedOutput()
		if err != nil {
			t.Errorf("windrow policy validate %s (mounted at %s): %v\n%s", src, path, err, out)
		}
	}
}

// checkWarehouse: the loaders' --warehouse is the PostgreSQL service's
// database, as its user, without a password (PGPASSWORD has it).
func checkWarehouse(t *testing.T, warehouse string, pg types.ServiceConfig) {
	t.Helper()
	want := "postgres://" + envOf(pg, "POSTGRES_USER") + "@postgres:5432/" + envOf(pg, "POSTGRES_DB") + "?"
	if !strings.HasPrefix(warehouse, want) {
		t.Errorf("--warehouse %q, want %s…", warehouse, want)
	}
}

// checkHealthcheck: the service's health check runs `windrow probe` on
// its own --metrics-addr port for /readyz, with flags probe defines, and
// that command passes against windrow's metrics server at addr.
func checkHealthcheck(t *testing.T, bin string, s types.ServiceConfig, addr string) {
	t.Helper()
	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != imageBinary || hc.Test[2] != "probe" {
		t.Errorf("healthcheck %+v, want [CMD %s probe ...]", hc, imageBinary)
		return
	}
	args := []string(hc.Test[3:])
	if n := len(args); n == 0 || (args[n-1] != "readyz" && args[n-1] != "healthz") {
		t.Errorf("healthcheck %q: probes neither readyz nor healthz", hc.Test)
		return
	}
	flags := helpFlags(t, bin, []string{"probe"}, "Usage of probe:")
	checkArgs(t, args[:len(args)-1], flags)
	if got, want := portOf(t, flagValue(args, "addr")), portOf(t, flagValue([]string(s.Command), "metrics-addr")); got != want {
		t.Errorf("healthcheck probes port %s, the service listens on %s", got, want)
	}
	real := slices.Clone(args)
	for i := range real {
		if real[i] == flagValue(args, "addr") {
			real[i] = addr
		}
	}
	out, err := exec.CommandContext(t.Context(), bin, append([]string{"probe"}, real...)...).CombinedOutput()
	if err != nil {
		t.Errorf("windrow probe %s against windrow's metrics server: %v\n%s", strings.Join(real, " "), err, out)
	}
}

// mounts reports whether s bind-mounts the file of the repository's deploy/
// directory rel at target.
func mounts(s types.ServiceConfig, rel, target string) bool {
	abs, _ := filepath.Abs(rel)
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == abs && v.Target == target {
			return true
		}
	}
	return false
}

// volumeAt is the named volume mounted at target ("" if none).
func volumeAt(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			return v.Source
		}
	}
	return ""
}

// hostPath maps a path in the container to the host file of a bind mount
// ("" if no bind mount holds it or the file is missing).
func hostPath(s types.ServiceConfig, path string) string {
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		rel, err := filepath.Rel(v.Target, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		host := filepath.Join(v.Source, rel)
		if _, err := os.Stat(host); err == nil {
			return host
		}
	}
	return ""
}

// prometheusTargets are the static targets of every scrape job of a
// Prometheus config whose job name starts with "windrow" (alerts.yml's
// WindrowDown keys on that).
func prometheusTargets(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !slices.Contains(cfg.RuleFiles, "/etc/prometheus/alerts.yml") {
		t.Errorf("%s: rule_files %q, want /etc/prometheus/alerts.yml", path, cfg.RuleFiles)
	}
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		if !strings.HasPrefix(sc.JobName, "windrow") {
			continue
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	return targets
}
