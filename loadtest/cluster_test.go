package loadtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// clusterPolicy: hourly windows of sales on a replicated source stream.
// idle_timeout is long enough that no pause of a failover looks like the
// end of the input; the publisher's flush closes the last windows.
const clusterPolicy = `name: cluster_sales
source: {stream: CLUSTER, subjects: [events.sales.>]}
` + SalesSchemaYAML + `window: {size: 1h, max_out_of_order: 5m, allowed_lateness: 1m, late: dlq, idle_timeout: 2s}
segment: {max_rows: 500, max_age: 300ms}
load: {table: sales}
`

// TestClusterSurvivesNodeLoss is issue 13's "one node stopped for good"
// acceptance: the whole pipeline in process against a 3-node JetStream
// cluster with nats.replicas 3; mid-run the node that leads most of the
// source stream, the window states and the load commands is stopped and
// never comes back. The pipeline must finish on the
// other two: every window LOADED with exact rows and sums, no duplicates,
// reconciliation OK. With replicas 1 it fails (the stopped node held the
// only copy of its streams: "publish after the node loss: nats: no response
// from stream").
func TestClusterSurvivesNodeLoss(t *testing.T) {
	clusterNodeLoss(t, 3)
}

func clusterNodeLoss(t *testing.T, replicas int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	begin := time.Now()
	c := testnats.RunCluster(t, 3)
	t.Logf("cluster ready in %s", time.Since(begin).Round(time.Millisecond))
	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), NATS: natsx.ClientConfig{URL: c.URLs()}, NATSReplicas: replicas,
		Instance: "cluster", Logger: testLogger(t), ConnectWait: 10 * time.Second})
	if err != nil {
		t.Fatalf("open stack on %s: %v", c.URLs(), err)
	}
	defer s.Close()
	p, err := s.ApplyPolicy(ctx, "cluster.yaml", []byte(clusterPolicy))
	if err != nil {
		t.Fatalf("apply policy: %v", err)
	}
	for _, name := range []string{p.Source.Stream, messages.StreamSegments, messages.StreamLoad, "KV_" + messages.BucketWindows} {
		if info := streamInfo(t, ctx, s, name); info.Config.Replicas != replicas {
			t.Fatalf("stream %s has %d replicas, want %d", name, info.Config.Replicas, replicas)
		}
	}

	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	events := Sales{Seed: 13, Events: 4000, Start: day, Span: 5 * time.Hour, Jitter: 3 * time.Minute, MalformedEvery: 400}.Generate()
	assign, _ := windows.NewAssigner(p.Window)
	want := expectOf(events, assign)
	if len(want.rows) != 5 {
		t.Fatalf("test setup: %d windows, want 5", len(want.rows))
	}
	t.Logf("stack open and policy applied at %s", time.Since(begin).Round(time.Millisecond))
	stopRoles := runRoles(t, ctx, s)
	defer stopRoles()

	// The first two hours, then the first window loaded: the pipeline runs.
	half := 1600
	// Few publishes in flight: those that fail with the node are published
	// again after the ones behind them, and no more than 16 events (72s of
	// event time) plus the 3m jitter must stay within max_out_of_order (5m),
	// or the retried events are rightly late (dead-lettered, counted).
	pub := &Publisher{JS: s.JS, Window: 16}
	if err := pub.PublishEvents(ctx, events[:half], "cluster"); err != nil {
		t.Fatalf("publish: %v", err)
	}
	testnats.WaitForNil(t, time.Minute, func() error {
		return windowsLoaded(ctx, s, p.Name, 1)
	})

	t.Logf("first window loaded at %s", time.Since(begin).Round(time.Millisecond))
	// Stop for good the node the stack is connected to if it leads one of
	// the source stream, the window states, the load commands and the
	// segment registrations (the clients fail over while the leaders
	// change); else the node that leads most of them (the source stream's
	// leader on a tie).
	leads := map[string][]string{}
	victim := ""
	for _, name := range []string{p.Source.Stream, "KV_" + messages.BucketWindows, messages.StreamLoad, messages.StreamSegments} {
		info := streamInfo(t, ctx, s, name)
		if info.Cluster == nil || c.Index(info.Cluster.Leader) < 0 {
			t.Fatalf("stream %s: no leader among the nodes (%+v)", name, info.Cluster)
		}
		l := info.Cluster.Leader
		leads[l] = append(leads[l], name)
		if victim == "" || len(leads[l]) > len(leads[victim]) {
			victim = l
		}
	}
	connected := s.Conn.ConnectedServerName()
	if len(leads[connected]) > 0 {
		victim = connected
	}
	t.Logf("leaders: %v; stopping node %s; the stack is connected to %s", leads, victim, connected)
	stopped := time.Now()
	c.Stop(c.Index(victim))

	// The rest, published through the remaining nodes, and the end of input.
	pub.FlushAfter = []string{p.Name}
	if err := pub.PublishEvents(ctx, events[half:], "cluster-2"); err != nil {
		t.Fatalf("publish after the node loss: %v", err)
	}
	t.Logf("rest published %s after the node stopped; new source leader: %s", time.Since(stopped).Round(time.Millisecond),
		streamInfo(t, ctx, s, p.Source.Stream).Cluster.Leader)
	waitLoaded(t, ctx, s, p.Name, len(want.rows), 2*time.Minute)
	t.Logf("all %d windows LOADED %s after the node stopped", len(want.rows), time.Since(stopped).Round(time.Millisecond))
	waitDrained(t, ctx, s, p, time.Minute)

	checkTable(t, ctx, s, "sales", "quantity", "amount", want)
	dl, err := inspect.CountDeadLetters(ctx, s.JS, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	for reason, n := range want.dlq {
		if dl.ByReason[reason] != n {
			t.Errorf("%d dead letters with reason %s, want %d", dl.ByReason[reason], reason, n)
		}
	}
	if len(dl.LateByWindow) > 0 || dl.ByReason["late"] > 0 {
		t.Errorf("late events %v (dead-lettered as late: %d); want none", dl.LateByWindow, dl.ByReason["late"])
	}
	r, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Published != int64(len(events)) {
		t.Errorf("reconciliation %s; problems %v; published %d, want %d", r.Summary(), r.Problems, r.Published, len(events))
	}
	for _, w := range r.Windows {
		if len(w.Problems) > 0 || w.Warehouse != w.State.Rows {
			t.Errorf("window %s: %v (warehouse %d, rows %d)", w.State.ID(), w.Problems, w.Warehouse, w.State.Rows)
		}
	}
}

// windowsLoaded reports an error until at least n windows of policy are LOADED.
func windowsLoaded(ctx context.Context, s *stack.Stack, policy string, n int) error {
	ws, err := inspect.Windows(ctx, s.States, policy)
	if err != nil {
		return err
	}
	loaded := 0
	for _, w := range ws {
		if w.Status == messages.StatusLoaded {
			loaded++
		}
	}
	if loaded < n {
		return fmt.Errorf("%d of %d windows LOADED, want at least %d", loaded, len(ws), n)
	}
	return nil
}

// streamInfo is a stream's current info, asked again while the cluster
// cannot answer (a leader election).
func streamInfo(t *testing.T, ctx context.Context, s *stack.Stack, name string) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	testnats.WaitForNil(t, 30*time.Second, func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := s.JS.Stream(cctx, name)
		if err != nil {
			return err
		}
		info, err = st.Info(cctx)
		return err
	})
	return info
}
