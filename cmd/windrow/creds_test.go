package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/app/stack"
)

// clearNATSEnv keeps the connection variables of the environment the tests
// run in out of the connection flags.
func clearNATSEnv(t *testing.T) {
	for _, v := range []string{"NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS", "NATS_NKEY"} {
		t.Setenv(v, "")
	}
}

// TestResolveTakesEmbeddedCredentials: a command that finds the embedded
// server through --data-dir takes its NKey too, unless it was given a URL
// or credentials of its own.
func TestResolveTakesEmbeddedCredentials(t *testing.T) {
	clearNATSEnv(t)
	dir := t.TempDir()
	const url = "nats://127.0.0.1:14222"
	if err := os.WriteFile(stack.URLFile(dir), []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stack.NKeyFile(dir), []byte("SU...\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	legacy := t.TempDir() // an older version's data directory: nats.url only
	if err := os.WriteFile(stack.URLFile(legacy), []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dataDir string
		given   natsx.ClientConfig
		env     map[string]string
		want    natsx.ClientConfig
	}{
		{name: "data dir", dataDir: dir,
			want: natsx.ClientConfig{URL: url, NKeySeed: stack.NKeyFile(dir)}},
		{name: "data dir without nats.nkey", dataDir: legacy,
			want: natsx.ClientConfig{URL: url}},
		{name: "url given", dataDir: dir, given: natsx.ClientConfig{URL: "nats://other:4222"},
			want: natsx.ClientConfig{URL: "nats://other:4222"}},
		{name: "user given", dataDir: dir, given: natsx.ClientConfig{User: "alice", Password: "pw"},
			want: natsx.ClientConfig{URL: url, User: "alice", Password: "pw"}},
		{name: "token from the environment", dataDir: dir, env: map[string]string{"NATS_TOKEN": "tok"},
			want: natsx.ClientConfig{URL: url, Token: "tok"}},
		{name: "creds given", dataDir: dir, given: natsx.ClientConfig{Creds: "/x.creds"},
			want: natsx.ClientConfig{URL: url, Creds: "/x.creds"}},
		{name: "nkey given", dataDir: dir, given: natsx.ClientConfig{NKeySeed: "/x.nkey"},
			want: natsx.ClientConfig{URL: url, NKeySeed: "/x.nkey"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := connFlags{dataDir: tt.dataDir, nats: tt.given}
			if got := c.resolve(); got != tt.want {
				t.Errorf("resolve() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPublishToRunningEmbeddedServer runs `windrow publish --data-dir D`
// while a stack with the embedded server, as `windrow up` starts it, runs
// over D: publish finds the server and its credentials in D (it cannot
// start one of its own there, the data directory is locked), and its
// output shows no seed. Given the URL and no key, a command is refused and
// told which flag to pass.
func TestPublishToRunningEmbeddedServer(t *testing.T) {
	clearNATSEnv(t)
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	up, err := stack.Open(ctx, stack.Config{DataDir: dir, Embedded: true, NATSPort: -1, Roles: []string{},
		Instance: "up", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MetricsAddr: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	stream, err := natsx.EnsureSourceStream(ctx, up.JS, "SALES", []string{"events.sales.>"})
	if err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(stack.NKeyFile(dir))
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err = publish(ctx, strings.NewReader(salesLines(3)), &out,
		[]string{"--data-dir", dir, "--subject", "events.sales.store-001", "--input-id", "creds-test"})
	t.Logf("windrow publish: %v\n%s", err, out.String())
	if err != nil {
		t.Fatalf("publish --data-dir %s: %v", dir, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages, want 3", info.State.Msgs)
	}
	if s := strings.TrimSpace(string(seed)); strings.Contains(out.String(), s) {
		t.Error("publish printed the seed")
	}

	withURL := connFlags{dataDir: dir, nats: natsx.ClientConfig{URL: up.NATSURL}}
	s, err := withURL.connect(ctx)
	if err == nil {
		s.Close()
		t.Fatal("connected to the embedded server with its URL and no credentials")
	}
	if want := "--nats-nkey " + stack.NKeyFile(dir); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
