package helmcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
)

// manifest is what the tests read of a rendered Kubernetes object.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Port int `yaml:"port"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type podSpec struct {
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string         `yaml:"name"`
		Value     string         `yaml:"value"`
		ValueFrom map[string]any `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// env is the container's variable name (unset: "", false).
func (c container) env(name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// chartDir is the chart under test, deploy/helm/windrow of the repository.
func chartDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "deploy", "helm", "windrow")
}

// renderChart renders deploy/helm/windrow with Helm's own engine and its
// default values, as `helm template prod deploy/helm/windrow` would (the
// nats dependency left out: it cannot be downloaded here), and decodes
// every object.
func renderChart(t *testing.T) []manifest {
	t.Helper()
	ch, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	if err := ch.Validate(); err != nil {
		t.Fatalf("the chart: %v", err)
	}
	vals, err := util.ToRenderValues(ch, map[string]any{}, common.ReleaseOptions{Name: "prod", Namespace: "windrow", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatalf("render the chart: %v", err)
	}
	var out []manifest
	for name, text := range files {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		dec := yaml.NewDecoder(strings.NewReader(text))
		for {
			var m manifest
			if err := dec.Decode(&m); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v\n%s", name, err, text)
			}
			if m.Kind != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

// TestHelmChartDeclaresNATS: Chart.yaml depends on the nats-io chart from
// its repository, switched by nats.enabled, and values.yaml's default
// natsURL names the three servers of that chart's StatefulSet.
func TestHelmChartDeclaresNATS(t *testing.T) {
	ch, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, d := range ch.Metadata.Dependencies {
		if d.Name == "nats" {
			found = true
			if d.Repository != "https://nats-io.github.io/k8s/helm/charts/" || d.Condition != "nats.enabled" || d.Version == "" {
				t.Errorf("dependency nats: repository %q, condition %q, version %q", d.Repository, d.Condition, d.Version)
			}
		}
	}
	if !found {
		t.Fatal("Chart.yaml has no dependency nats")
	}
	nats, _ := ch.Values["nats"].(map[string]any)
	prefix, _ := nats["fullnameOverride"].(string)
	var hosts []string
	for i := range 3 {
		hosts = append(hosts, prefix+"-"+strconv.Itoa(i)+"."+prefix+"-headless")
	}
	checkNATSURL(t, ch.Values["natsURL"].(string), hosts)
}

// TestHelmChartRunsRealCommands: the rendered chart has a Deployment per
// role with replicas, whose args are that windrow command with flags it
// defines (the built binary's -h), --metrics-addr on the container port
// the liveness (/healthz) and readiness (/readyz) probes use, which
// windrow's metrics server serves (a running `windrow up` of the binary); the environment is variables windrow
// reads, with the cluster's three servers, 3 replicas and S3/PostgreSQL
// secrets from Secrets; a policy ConfigMap holding deploy/policies' file,
// which `windrow policy validate` accepts, applied by a hook Job running
// `windrow policy apply` on it; and a metrics Service with scrape
// annotations.
func TestHelmChartRunsRealCommands(t *testing.T) {
	objs := renderChart(t)
	bin := windrowBin(t)
	known := windrowEnv(t)
	srv := metricsServer(t, bin)

	byKind := map[string][]manifest{}
	for _, m := range objs {
		byKind[m.Kind] = append(byKind[m.Kind], m)
	}
	checkEnv := func(t *testing.T, c container) {
		for _, e := range c.Env {
			if e.Name != "POD_NAME" && !known[e.Name] {
				t.Errorf("env %s: not a variable windrow reads", e.Name)
			}
		}
		url, _ := c.env("NATS_URL")
		if !strings.Contains(url, ",") || len(strings.Split(url, ",")) != 3 {
			t.Errorf("NATS_URL %q: want the cluster's three servers", url)
		}
		if r, _ := c.env("WINDROW_NATS_REPLICAS"); r != "3" {
			t.Errorf("WINDROW_NATS_REPLICAS %q, want 3", r)
		}
		for _, secret := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD"} {
			found := false
			for _, e := range c.Env {
				if e.Name == secret {
					found = true
					if e.Value != "" || e.ValueFrom["secretKeyRef"] == nil {
						t.Errorf("env %s: want it from a Secret (secretKeyRef), not a value", secret)
					}
				}
			}
			if !found {
				t.Errorf("env %s: not set", secret)
			}
		}
	}

	roles := map[string]bool{}
	for _, d := range byKind["Deployment"] {
		t.Run(d.Metadata.Name, func(t *testing.T) {
			cs := d.Spec.Template.Spec.Containers
			if len(cs) != 1 {
				t.Fatalf("%d containers, want 1", len(cs))
			}
			c := cs[0]
			if len(c.Args) == 0 {
				t.Fatal("no args")
			}
			role := c.Args[0]
			roles[role] = true
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas %v, want values.yaml's 2", d.Spec.Replicas)
			}
			args := slices.Clone(c.Args)
			for i := range args {
				// Kubernetes expands $(VAR) from the container's env.
				if args[i] == "$(POD_NAME)" {
					args[i] = "prod-windrow-" + role + "-0"
				}
			}
			if flagValue(c.Args, "instance") == "$(POD_NAME)" {
				if _, ok := c.env("POD_NAME"); !ok {
					t.Error("--instance $(POD_NAME) without a POD_NAME variable")
				}
			}
			checkArgs(t, args[1:], commandFlags(t, bin, role))
			runHelp(t, bin, args)
			checkEnv(t, c)
			if flagValue(c.Args, "data-dir") != dataDir || !slices.ContainsFunc(c.VolumeMounts, func(m struct {
				Name      string `yaml:"name"`
				MountPath string `yaml:"mountPath"`
			}) bool {
				return m.MountPath == dataDir
			}) {
				t.Errorf("--data-dir %q: want %s with a volume of the pod's own there", flagValue(c.Args, "data-dir"), dataDir)
			}
			if role == "loader" && !strings.HasPrefix(flagValue(c.Args, "warehouse"), "postgres://") {
				t.Errorf("--warehouse %q, want PostgreSQL", flagValue(c.Args, "warehouse"))
			}

			addr := flagValue(c.Args, "metrics-addr")
			if host := strings.TrimSuffix(addr, ":"+metricsPort); host != "0.0.0.0" {
				t.Errorf("--metrics-addr %q, want 0.0.0.0:%s", addr, metricsPort)
			}
			if len(c.Ports) != 1 || strconv.Itoa(c.Ports[0].ContainerPort) != portOf(t, addr) {
				t.Fatalf("container ports %+v, want the --metrics-addr port %s", c.Ports, portOf(t, addr))
			}
			for _, p := range []struct {
				what string
				p    *probe
				path string
			}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
				if p.p == nil || p.p.HTTPGet == nil {
					t.Errorf("no %s probe", p.what)
					continue
				}
				if p.p.HTTPGet.Path != p.path || (p.p.HTTPGet.Port != c.Ports[0].Name && p.p.HTTPGet.Port != c.Ports[0].ContainerPort) {
					t.Errorf("%s probe GET %s on port %v, want %s on %s", p.what, p.p.HTTPGet.Path, p.p.HTTPGet.Port, p.path, c.Ports[0].Name)
				}
				checkServed(t, srv, p.p.HTTPGet.Path)
			}
			ann := d.Spec.Template.Metadata.Annotations
			if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != metricsPort || ann["prometheus.io/path"] != "/metrics" {
				t.Errorf("pod annotations %v, want Prometheus scrape ones for :%s/metrics", ann, metricsPort)
			}
		})
	}
	for _, role := range []string{"collector", "compactor", "loader"} {
		if !roles[role] {
			t.Errorf("no Deployment of %s", role)
		}
	}

	t.Run("policies", func(t *testing.T) {
		if len(byKind["ConfigMap"]) != 1 || len(byKind["Job"]) != 1 {
			t.Fatalf("%d ConfigMaps, %d Jobs, want 1 each", len(byKind["ConfigMap"]), len(byKind["Job"]))
		}
		cm, job := byKind["ConfigMap"][0], byKind["Job"][0]
		want, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "policies", "daily_store_sales.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if got := cm.Data["daily_store_sales.yaml"]; strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
			t.Errorf("ConfigMap daily_store_sales.yaml differs from deploy/policies/daily_store_sales.yaml:\n%s", got)
		}
		dir := t.TempDir()
		for file, text := range cm.Data {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := exec.CommandContext(t.Context(), bin, "policy", "validate", dir).CombinedOutput(); err != nil {
			t.Errorf("windrow policy validate of the ConfigMap: %v\n%s", err, out)
		}
		if !strings.Contains(job.Metadata.Annotations["helm.sh/hook"], "post-install") {
			t.Errorf("Job annotations %v, want a post-install hook", job.Metadata.Annotations)
		}
		c := job.Spec.Template.Spec.Containers[0]
		if len(c.Args) < 3 || c.Args[0] != "policy" || c.Args[1] != "apply" {
			t.Fatalf("Job args %q, want policy apply FILE...", c.Args)
		}
		flags := helpFlags(t, bin, []string{"policy", "apply"}, "usage: windrow policy apply")
		var files, rest []string
		for _, a := range c.Args[2:] {
			if strings.HasPrefix(a, "-") || len(rest) > 0 && flags[strings.TrimLeft(rest[len(rest)-1], "-")] {
				rest = append(rest, a)
				continue
			}
			files = append(files, a)
		}
		checkArgs(t, rest, flags)
		if len(files) == 0 {
			t.Error("Job applies no files")
		}
		for _, path := range files {
			if filepath.Dir(path) != "/etc/windrow/policies" || cm.Data[filepath.Base(path)] == "" {
				t.Errorf("Job applies %s: not a file of the ConfigMap mounted at /etc/windrow/policies", path)
			}
		}
		// The root file system is read-only: the data directory a client
		// still makes must be a volume.
		mounted := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounted[m.MountPath] = m.Name
		}
		if d := flagValue(c.Args, "data-dir"); d == "" || mounted[d] == "" {
			t.Errorf("Job --data-dir %q: want a mounted volume there (mounts %v)", d, mounted)
		}
		var cmVolume bool
		for _, v := range job.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name && mounted["/etc/windrow/policies"] == v.Name {
				cmVolume = true
			}
		}
		if !cmVolume {
			t.Errorf("Job volumes %+v: the ConfigMap %s is not mounted at /etc/windrow/policies", job.Spec.Template.Spec.Volumes, cm.Metadata.Name)
		}
		checkEnv(t, c)
	})

	t.Run("service", func(t *testing.T) {
		if len(byKind["Service"]) != 1 {
			t.Fatalf("%d Services, want 1", len(byKind["Service"]))
		}
		s := byKind["Service"][0]
		if len(s.Spec.Ports) != 1 || strconv.Itoa(s.Spec.Ports[0].Port) != metricsPort || s.Metadata.Annotations["prometheus.io/scrape"] != "true" {
			t.Errorf("Service %s: ports %+v, annotations %v", s.Metadata.Name, s.Spec.Ports, s.Metadata.Annotations)
		}
	})
}
