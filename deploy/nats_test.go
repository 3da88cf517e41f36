package deploy_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestNATSClusterConfigLoads: deploy/nats/cluster.conf loads in the NATS
// server windrow is tested with, as a JetStream cluster node of three
// routes, with its name, store and peers taken from the environment.
func TestNATSClusterConfigLoads(t *testing.T) {
	store := t.TempDir()
	t.Setenv("NATS_NAME", "nats-2")
	t.Setenv("NATS_STORE", store)
	for i := 1; i <= 3; i++ {
		t.Setenv(fmt.Sprintf("NATS_ROUTE_%d", i), fmt.Sprintf("nats-route://10.0.0.%d:6222", i))
	}
	opts, err := server.ProcessConfigFile("nats/cluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	if opts.ServerName != "nats-2" || !opts.JetStream || opts.StoreDir != store {
		t.Errorf("server %q, jetstream %v, store %q; want nats-2, true, %q", opts.ServerName, opts.JetStream, opts.StoreDir, store)
	}
	if opts.Port != 4222 || opts.HTTPPort != 8222 || opts.Cluster.Port != 6222 || opts.Cluster.Name != "windrow" {
		t.Errorf("ports %d/%d/%d, cluster %q", opts.Port, opts.HTTPPort, opts.Cluster.Port, opts.Cluster.Name)
	}
	if len(opts.Routes) != 3 {
		t.Fatalf("%d routes, want 3", len(opts.Routes))
	}
	for i, r := range opts.Routes {
		if want := fmt.Sprintf("10.0.0.%d", i+1); r.Hostname() != want || r.Port() != "6222" {
			t.Errorf("route %d: %s, want %s:6222", i, r, want)
		}
	}
	if opts.MaxPayload != 1<<20 {
		t.Errorf("max_payload %d, want 1 MiB", opts.MaxPayload)
	}
	// The options make a server (it is not started: no network here).
	if _, err := server.NewServer(opts); err != nil {
		t.Fatalf("new server from the config: %v", err)
	}
}
