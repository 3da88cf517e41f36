package archtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path"
	"strings"
	"testing"
)

const module = "github.com/windrow/windrow"

// layer is a rank (lower is more basic) and the area a package belongs to:
// the folder whose packages may import each other within the rank.
type layer struct {
	rank int
	area string
}

// layerOf places a package path (relative to the module) in the layout.
func layerOf(rel string) (layer, error) {
	top, rest, _ := strings.Cut(rel, "/")
	switch top {
	case "messages", "windows", "deploy":
		return layer{0, rel}, nil
	case "adapters":
		if isSuite(rel) {
			// A conformance suite writes the data its implementations are
			// tested on with the pipeline's own code (Parquet batches).
			return layer{3, "suites"}, nil
		}
		return layer{1, top}, nil
	case "pipeline":
		return layer{2, top}, nil
	case "services":
		// Each service is an area of its own: services never import each
		// other.
		svc, _, _ := strings.Cut(rest, "/")
		return layer{3, "services/" + svc}, nil
	case "ops":
		return layer{3, top}, nil
	case "app":
		return layer{4, top}, nil
	case "loadtest":
		return layer{5, top}, nil
	case "cmd", "tools":
		return layer{6, rel}, nil
	case "internal":
		return layer{7, top}, nil // test helpers and this test: anything below
	}
	return layer{}, fmt.Errorf("package %s is in no known layer: add its folder to docs/architecture.md and to layerOf", rel)
}

// isSuite reports whether rel is a conformance suite beside a seam's
// interface (adapters/objstore/objstoretest, adapters/warehouse/warehousetest).
func isSuite(rel string) bool {
	return strings.HasPrefix(rel, "adapters/") && strings.HasSuffix(path.Base(rel), "test")
}

// isTestHelper reports whether rel is test support: imported by tests only.
func isTestHelper(rel string) bool { return strings.HasPrefix(rel, "internal/test") || isSuite(rel) }

// checkImport returns why pkg may not import dep ("" if it may); both are
// relative to the module.
func checkImport(pkg, dep string) string {
	from, err := layerOf(pkg)
	if err != nil {
		return err.Error()
	}
	to, err := layerOf(dep)
	if err != nil {
		return err.Error()
	}
	switch {
	case isTestHelper(dep) && !isTestHelper(pkg):
		return "imports a test helper"
	case from.rank == 0:
		return "is a leaf (messages, windows, deploy) and imports nothing of windrow's"
	case to.rank > from.rank:
		return "imports a higher layer"
	case to.rank == from.rank && to.area != from.area:
		if from.rank == 3 {
			return "imports another service or operator feature (services and ops import only adapters, pipeline and leaves)"
		}
		return "imports a package of another area of its layer"
	}
	return ""
}

func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg, ok := strings.CutPrefix(fields[0], module+"/")
		if !ok {
			continue
		}
		pkgs++
		if _, err := layerOf(pkg); err != nil {
			t.Error(err)
			continue
		}
		for _, imp := range fields[1:] {
			dep, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if why := checkImport(pkg, dep); why != "" {
				t.Errorf("%s imports %s: %s", pkg, dep, why)
			}
		}
	}
	if pkgs < 20 {
		t.Fatalf("go list found %d packages of %s; want the whole module", pkgs, module)
	}
}

// TestCheckImport shows the rules on examples, allowed and refused, so that
// a rule dropped from checkImport fails here even while the code obeys it.
func TestCheckImport(t *testing.T) {
	tests := []struct {
		pkg, dep string
		ok       bool
	}{
		{"services/collector", "adapters/natsx", true},
		{"services/collector", "pipeline/staging", true},
		{"services/collector", "messages", true},
		{"services/collector", "services/compactor", false},
		{"services/loader", "ops/inspect", false},
		{"ops/replay", "services/compactor", false},
		{"ops/replay", "pipeline/loads", true},
		{"ops/dlq", "ops/inspect", true},
		{"adapters/natsx", "adapters/telemetry", true},
		{"adapters/warehouse/duckdbwh", "services/loader", false},
		{"adapters/objstore/local", "pipeline/records", false},
		{"pipeline/staging", "adapters/objstore", true},
		{"pipeline/records", "services/collector", false},
		{"windows", "messages", false},
		{"messages", "windows", false},
		{"app/stack", "services/loader", true},
		{"app/stack", "cmd/windrow", false},
		{"app/stack", "internal/testkit", false},
		{"internal/testkit", "internal/testnats", true},
		{"adapters/warehouse/warehousetest", "pipeline/records", true},
		{"adapters/warehouse/warehousetest", "services/loader", false},
		{"adapters/warehouse/duckdbwh", "adapters/warehouse/warehousetest", false},
		{"services/loader", "adapters/objstore/objstoretest", false},
		{"loadtest", "app/stack", true},
		{"cmd/windrow", "loadtest", true},
		{"misc/util", "messages", false},
	}
	for _, tt := range tests {
		why := checkImport(tt.pkg, tt.dep)
		if (why == "") != tt.ok {
			t.Errorf("%s → %s: allowed %v (%q), want %v", tt.pkg, tt.dep, why == "", why, tt.ok)
		}
	}
}
