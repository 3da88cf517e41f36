package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestNATSReplicasPrecedence: nats.replicas comes from --nats-replicas,
// else $WINDROW_NATS_REPLICAS, else the config file, else 0 (one replica);
// a bad environment value is an error naming the variable.
func TestNATSReplicasPrecedence(t *testing.T) {
	parse := func(args ...string) *connFlags {
		t.Helper()
		var c connFlags
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	for _, tc := range []struct {
		name string
		args []string
		env  string
		file int
		want int
	}{
		{name: "default", want: 0},
		{name: "file", file: 3, want: 3},
		{name: "env over file", env: "5", file: 3, want: 5},
		{name: "flag over env", args: []string{"--nats-replicas", "3"}, env: "1", file: 1, want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envReplicas, tc.env)
			got, err := parse(tc.args...).natsReplicas(tc.file)
			if err != nil || got != tc.want {
				t.Errorf("natsReplicas = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	t.Setenv(envReplicas, "three")
	if _, err := parse().natsReplicas(0); err == nil {
		t.Error("natsReplicas with $WINDROW_NATS_REPLICAS=three: no error")
	}
}

// TestUpConfigReplicas: nats.replicas is a key of the config file, and the
// example file documents it.
func TestUpConfigReplicas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "windrow.yaml")
	if err := os.WriteFile(path, []byte("nats:\n  url: nats://a:4222,nats://b:4222\n  replicas: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadUpConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.Replicas != 3 || cfg.NATS.URL != "nats://a:4222,nats://b:4222" {
		t.Errorf("nats: replicas %d, url %q", cfg.NATS.Replicas, cfg.NATS.URL)
	}
	if _, err := loadUpConfig("../../deploy/windrow.yaml"); err != nil {
		t.Errorf("deploy/windrow.yaml: %v", err)
	}
}
