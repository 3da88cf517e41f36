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

// TestValidateReplicas: the replica count is 1..5 (0: the default), and the
// embedded server, a single server, takes only one.
func TestValidateReplicas(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantErr bool
	}{
		{Config{NATSReplicas: 0}, false},
		{Config{NATSReplicas: 3}, false},
		{Config{NATSReplicas: 6}, true},
		{Config{NATSReplicas: -1}, true},
		{Config{NATSReplicas: 1, Embedded: true}, false},
		{Config{NATSReplicas: 3, Embedded: true}, true},
	} {
		tc.cfg.setDefaults()
		if err := tc.cfg.Validate(); (err != nil) != tc.wantErr {
			t.Errorf("Validate(replicas %d, embedded %v) = %v, want error %v", tc.cfg.NATSReplicas, tc.cfg.Embedded, err, tc.wantErr)
		}
	}
}
