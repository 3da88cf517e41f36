package natsx

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
)

// connectCluster connects to every node of c (a comma-separated URL list).
func connectCluster(t *testing.T, c *testnats.Cluster) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to %s: %v", c.URLs(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// replicasOf returns the replica count of each stream windrow provisions,
// the buckets' included, and of the source stream src if given.
func replicasOf(t *testing.T, ctx context.Context, js jetstream.JetStream, extra ...string) map[string]int {
	t.Helper()
	names := []string{messages.StreamSegments, messages.StreamLoad, messages.StreamResults, messages.StreamDLQ, messages.StreamEvents,
		kvStream(messages.BucketWindows), kvStream(messages.BucketPolicies), kvStream(messages.BucketWatermarks)}
	out := map[string]int{}
	for _, name := range append(names, extra...) {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		out[name] = s.CachedInfo().Config.Replicas
	}
	return out
}

// TestProvisionReplicasOnCluster: nats.replicas sets the replicas of every
// stream and bucket, an existing R1 topology (and a windrow-made source
// stream) is scaled up to it, and a later run with a lower count (a client
// command with the default) never scales them down.
func TestProvisionReplicasOnCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testnats.RunCluster(t, 3)
	js := connectCluster(t, c)

	if _, err := Provision(ctx, js); err != nil {
		t.Fatalf("Provision R1: %v", err)
	}
	if _, err := EnsureSourceStream(ctx, js, "EVENTS", []string{"events.>"}); err != nil {
		t.Fatalf("EnsureSourceStream R1: %v", err)
	}
	for name, n := range replicasOf(t, ctx, js, "EVENTS") {
		if n != 1 {
			t.Errorf("default: %s has %d replicas, want 1", name, n)
		}
	}
	if _, err := Provision(ctx, js, WithReplicas(3)); err != nil {
		t.Fatalf("Provision R3: %v", err)
	}
	if _, err := EnsureSourceStream(ctx, js, "EVENTS", []string{"events.>"}, WithReplicas(3)); err != nil {
		t.Fatalf("EnsureSourceStream R3: %v", err)
	}
	for name, n := range replicasOf(t, ctx, js, "EVENTS") {
		if n != 3 {
			t.Errorf("after WithReplicas(3): %s has %d replicas, want 3", name, n)
		}
	}
	if _, err := Provision(ctx, js, WithReplicas(1)); err != nil {
		t.Fatalf("Provision R1 again: %v", err)
	}
	if _, err := EnsureSourceStream(ctx, js, "EVENTS", []string{"events.>"}); err != nil {
		t.Fatalf("EnsureSourceStream R1 again: %v", err)
	}
	for name, n := range replicasOf(t, ctx, js, "EVENTS") {
		if n != 3 {
			t.Errorf("after WithReplicas(1) on R3: %s has %d replicas, want 3 (never scaled down)", name, n)
		}
	}
}

// TestProvisionReplicasOnSingleServer: more than one replica on a single
// server is refused at once with ErrReplicas and what to do.
func TestProvisionReplicasOnSingleServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, js := testnats.Connect(t, testnats.RunServer(t))
	start := time.Now()
	_, err := Provision(ctx, js, WithReplicas(3))
	if !errors.Is(err, ErrReplicas) {
		t.Fatalf("Provision R3 on a single server: %v, want ErrReplicas", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("refused after %s; want at once (the error does not pass by itself)", time.Since(start))
	}
	t.Log(err)
}

// TestProvisionWaitsForMetaLeader: provisioning while the cluster has no
// meta leader (two of three nodes down) neither fails nor hangs on its
// first request: it retries with short per-call timeouts and succeeds once
// a quorum is back; with no quorum at all it ends at its deadline with an
// error that says what it waited for.
func TestProvisionWaitsForMetaLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testnats.RunCluster(t, 3)
	js := connectCluster(t, c)
	c.Stop(1)
	c.Stop(2)

	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	_, err := Provision(short, js, WithReplicas(3), WithCallTimeout(500*time.Millisecond))
	cancelShort()
	if err == nil {
		t.Fatal("Provision without a meta leader succeeded")
	}
	t.Logf("without quorum: %v", err)

	done := make(chan error, 1)
	go func() {
		_, err := Provision(ctx, js, WithReplicas(3), WithCallTimeout(500*time.Millisecond))
		done <- err
	}()
	time.Sleep(time.Second) // the first calls go unanswered
	c.Restart(1)
	c.Restart(2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Provision once the quorum is back: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Provision did not finish after the cluster came back")
	}
	for name, n := range replicasOf(t, ctx, js) {
		if n != 3 {
			t.Errorf("%s has %d replicas, want 3", name, n)
		}
	}
}
