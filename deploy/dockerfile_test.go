package deploy_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestDockerfileMatchesStaticBuild: deploy/docker/Dockerfile builds the
// binary with deploy/build/static.sh, copies that output to the path the
// image writer (tools/image), the compose file and the chart use, runs it
// as the entrypoint as a non-root user, and exposes the metrics port.
func TestDockerfileMatchesStaticBuild(t *testing.T) {
	data, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var built string
	var copied, entrypoint []string
	var user, expose, workdir string
	stages := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			stages++
		case "RUN":
			for i, w := range f {
				if w == "deploy/build/static.sh" && i+1 < len(f) {
					built = f[i+1]
				}
			}
		case "COPY":
			if stages == 2 {
				copied = append(copied, strings.Join(f[1:], " "))
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, f[0]))), &entrypoint); err != nil {
				t.Errorf("ENTRYPOINT not in exec form: %v", err)
			}
		case "USER":
			user = f[1]
		case "EXPOSE":
			expose = f[1]
		case "WORKDIR":
			workdir = f[1]
		}
	}
	if built == "" {
		t.Fatal("no RUN deploy/build/static.sh OUT in the builder stage")
	}
	if !slices.Contains(copied, "--from=build "+built+" "+imageBinary) {
		t.Errorf("COPY lines %q: none copies the static build %s to %s", copied, built, imageBinary)
	}
	if !slices.Equal(entrypoint, []string{imageBinary}) {
		t.Errorf("ENTRYPOINT %q, want [%s]", entrypoint, imageBinary)
	}
	if user != "65532:65532" || expose != metricsPort || workdir != dataDir {
		t.Errorf("USER %q, EXPOSE %q, WORKDIR %q; want 65532:65532, %s, %s", user, expose, workdir, metricsPort, dataDir)
	}
	script, err := os.ReadFile("build/static.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=1", "-tags netgo,osusergo", `-extldflags "-static"`, "./cmd/windrow"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("build/static.sh does not build with %s", want)
		}
	}
}
