package stack

import (
	"os"
	"testing"

	"github.com/windrow/windrow/pipeline/lifecycle"
)

// TestInstanceDefault: without --instance a process is named uniquely
// (lifecycle.DefaultInstance), not by its host alone, which two processes
// on one host share; a given name is kept.
func TestInstanceDefault(t *testing.T) {
	var c Config
	c.setDefaults()
	if host, _ := os.Hostname(); c.Instance == host {
		t.Fatalf("default instance is the host name %q, which every process on the host shares", host)
	}
	if c.Instance != lifecycle.DefaultInstance() {
		t.Errorf("default instance %q, want lifecycle.DefaultInstance() %q", c.Instance, lifecycle.DefaultInstance())
	}
	given := Config{Instance: "compactor-a"}
	given.setDefaults()
	if given.Instance != "compactor-a" {
		t.Errorf("given instance became %q", given.Instance)
	}
}
