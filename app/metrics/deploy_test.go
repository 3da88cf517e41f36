package metrics_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/windrow/windrow/app/metrics"
)

// labels are the labels each exported metric carries (besides the ones
// Prometheus adds: job, instance).
var labels = map[string][]string{
	"windrow_collector_events_received_total":      {"policy"},
	"windrow_collector_events_staged_total":        {"policy"},
	"windrow_collector_events_dead_lettered_total": {"policy"},
	"windrow_collector_events_late_dropped_total":  {"policy"},
	"windrow_collector_events_redelivered_total":   {"policy"},
	"windrow_collector_segments_written_total":     {"policy"},
	"windrow_collector_segment_bytes_total":        {"policy"},
	"windrow_collector_flushes_total":              {"policy"},
	"windrow_compactor_windows_sealed_total":       {"policy"},
	"windrow_compactor_windows_compacted_total":    {"policy"},
	"windrow_compactor_results_applied_total":      {"policy"},
	"windrow_compactor_results_terminated_total":   {"policy"},
	"windrow_loader_commands_total":                {"status"},
	"windrow_loader_rows_total":                    {},
	"windrow_loader_load_duration_seconds":         {"policy", "status"},
	"windrow_collector_consumer_lag":               {"policy"},
	"windrow_source_expired":                       {"policy"},
	"windrow_watermark_lag_seconds":                {"policy"},
	"windrow_watermark_stalled_seconds":            {"policy"},
	"windrow_windows":                              {"policy", "status"},
	"windrow_windows_past_sla":                     {"policy"},
	"windrow_windows_sla_missed":                   {"policy"},
	"windrow_batches_written":                      {"policy"},
	"windrow_batches_loaded":                       {"policy"},
	"windrow_ready":                                {},
	"windrow_disk_full":                            {"store"},
}

// builtin are series Prometheus makes itself.
var builtin = map[string][]string{"up": {"job"}}

var (
	selectorRE = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"`)
)

// checkExpr reports names in expr that look like windrow metrics but are not
// exported (histogram series may add _bucket, _sum, _count), label matchers
// a metric does not carry, and an expression that uses no metric at all.
func checkExpr(expr string) error {
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
		return fmt.Errorf("unbalanced brackets")
	}
	var errs []string
	used := 0
	for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
		name, sel := m[1], m[2]
		var allowed []string
		switch {
		case strings.HasPrefix(name, "windrow_"):
			base := name
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suf); ok && strings.HasSuffix(b, "_seconds") {
					base = b
					if suf == "_bucket" {
						allowed = append(allowed, "le")
					}
				}
			}
			if !slices.Contains(metrics.Names, base) {
				errs = append(errs, fmt.Sprintf("%s is not exported", name))
				continue
			}
			allowed = append(allowed, labels[base]...)
		case builtin[name] != nil:
			allowed = builtin[name]
		default:
			continue // a function, an aggregation, a label name in by (…)
		}
		used++
		for _, lm := range matcherRE.FindAllStringSubmatch(sel, -1) {
			if !slices.Contains(allowed, lm[1]) && lm[1] != "job" && lm[1] != "instance" {
				errs = append(errs, fmt.Sprintf("%s has no label %q", name, lm[1]))
			}
		}
	}
	if used == 0 {
		errs = append(errs, "uses no windrow metric")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func TestLabelsCoverNames(t *testing.T) {
	for _, n := range metrics.Names {
		if _, ok := labels[n]; !ok {
			t.Errorf("%s: labels unknown to this test", n)
		}
	}
	if len(labels) != len(metrics.Names) {
		t.Errorf("%d metrics with labels, %d names", len(labels), len(metrics.Names))
	}
}

// TestAlertRules decodes deploy/prometheus/alerts.yml strictly and checks
// each rule: a name, an expression over exported metrics and their labels,
// a duration, a severity and a summary; the alerts the runbook promises are
// there.
func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range file.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: empty", g.Name)
		}
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			if r.Alert == "" || r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("rule %q: want alert, for, labels.severity, annotations summary and description", r.Alert)
			}
			if err := checkExpr(r.Expr); err != nil {
				t.Errorf("rule %s: %v\n%s", r.Alert, err, r.Expr)
			}
		}
	}
	for _, want := range []string{"WindrowCollectorLagGrowing", "WindrowSourceExpired", "WindrowWatermarkStalled", "WindrowWindowsPastSLA",
		"WindrowWindowsFailed", "WindrowDeadLetterSpike", "WindrowNotReady", "WindrowDiskFull"} {
		if !slices.Contains(names, want) {
			t.Errorf("alert %s missing", want)
		}
	}
}

// TestDashboard decodes deploy/grafana/windrow-dashboard.json and checks
// it is importable as is (uid, title, a Prometheus data source variable
// that every panel uses, unique panel ids) and that every query uses
// exported metrics and labels only.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/windrow-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr       string `json:"expr"`
		RefID      string `json:"refId"`
		Datasource struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
	}
	var d struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Templating    struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int      `json:"id"`
			Type    string   `json:"type"`
			Title   string   `json:"title"`
			Targets []target `json:"targets"`
			GridPos struct {
				H, W, X, Y int
			} `json:"gridPos"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want all set", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["policy"] != "query" {
		t.Errorf("template variables %v: want datasource (datasource) and policy (query)", vars)
	}
	ids := map[int]bool{}
	var exprs []string
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: grid position %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource.Type != "prometheus" || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: data source %+v, want the $datasource variable", p.Title, tg.Datasource)
			}
			exprs = append(exprs, tg.Expr)
			if err := checkExpr(tg.Expr); err != nil {
				t.Errorf("panel %q: %v\n%s", p.Title, err, tg.Expr)
			}
		}
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{"windrow_collector_events_received_total", "windrow_collector_events_dead_lettered_total",
		"windrow_collector_events_late_dropped_total", "windrow_collector_consumer_lag", "windrow_watermark_lag_seconds",
		"windrow_windows{", "windrow_windows_past_sla", "histogram_quantile(0.5", "histogram_quantile(0.95", "windrow_ready"} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel queries %s", want)
		}
	}
}

// TestCheckExpr: the checker itself catches what it should.
func TestCheckExpr(t *testing.T) {
	for expr, ok := range map[string]bool{
		`max by (policy) (windrow_windows{status="FAILED"}) > 0`:                                                true,
		`histogram_quantile(0.95, sum by (le) (rate(windrow_loader_load_duration_seconds_bucket{le!=""}[5m])))`: true,
		`up{job=~"windrow.*"} == 0`:               true,
		`windrow_windows_total > 0`:               false, // not exported
		`windrow_ready{policy="x"} == 0`:          false, // no such label
		`sum(rate(windrow_loader_rows_total[5m])`: false, // unbalanced
		`vector(1)`: false, // no metric
		`windrow_collector_consumer_lag_bucket > 0`:  false,
		`windrow_loader_load_duration_seconds_count`: true,
	} {
		if err := checkExpr(expr); (err == nil) != ok {
			t.Errorf("checkExpr(%s) = %v, want ok %v", expr, err, ok)
		}
	}
}
