package testbin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var tool = Tool{Name: "thing", Version: "v1.2.3", EnvBin: "WINDROW_THING_BIN", EnvRequire: "WINDROW_REQUIRE_THING",
	Hint: "build it with tools/thing/build.sh"}

// TestBinary covers how a tool's binary is found.
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(tool.EnvBin, "")
	t.Setenv("WINDROW_TOOLS_CACHE", dir)
	want := filepath.Join(dir, "thing-v1.2.3", "thing")
	if p, err := tool.CachePath(); err != nil || p != want {
		t.Fatalf("CachePath = %q, %v; want %q", p, err, want)
	}
	if _, err := tool.Binary(); err == nil || !strings.Contains(err.Error(), tool.Hint) {
		t.Fatalf("Binary with nothing built: err = %v, want the build hint", err)
	}
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := tool.Binary(); err != nil || p != want {
		t.Fatalf("Binary = %q, %v; want the cached %q", p, err, want)
	}
	other := filepath.Join(dir, "other")
	t.Setenv(tool.EnvBin, other)
	if _, err := tool.Binary(); err == nil {
		t.Fatalf("Binary with %s naming a missing file: no error", tool.EnvBin)
	}
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tool.Binary(); err == nil {
		t.Fatalf("Binary with %s naming a file that is not executable: no error", tool.EnvBin)
	}
	if err := os.Chmod(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := tool.Binary(); err != nil || p != other {
		t.Fatalf("Binary = %q, %v; want %s %q", p, err, tool.EnvBin, other)
	}
	t.Setenv("WINDROW_TOOLS_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", dir)
	if p, _ := tool.CachePath(); p != filepath.Join(dir, "windrow", "thing-v1.2.3", "thing") {
		t.Errorf("CachePath under XDG_CACHE_HOME = %q", p)
	}
}

func TestRequired(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv(tool.EnvRequire, "")
	if tool.Required() {
		t.Error("Required without CI or the variable")
	}
	t.Setenv(tool.EnvRequire, "1")
	if !tool.Required() {
		t.Errorf("not Required with %s=1", tool.EnvRequire)
	}
	t.Setenv(tool.EnvRequire, "")
	t.Setenv("CI", "true")
	if !tool.Required() {
		t.Error("not Required under CI")
	}
}
