//go:build chaos

package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
)

// -chaos.topology=cluster (issue 13) runs the same faults on the topology
// of several machines: a 3-node NATS JetStream cluster (separate
// nats-server processes routed on loopback, every stream and KV bucket R3),
// the S3 server, PostgreSQL, and -chaos.instances processes of each role,
// each with a data directory of its own (nothing local is shared). The
// monkey's NATS restarts stop one node at a time, in turn the leader of
// the source stream, of the window states' KV bucket and of the load
// commands' stream, and start it again on its store.
//
//	go test -tags chaos -run TestChaos -timeout 30m -v ./loadtest/ -args -chaos.topology=cluster \
//		-chaos.objects=s3 -chaos.warehouse=postgres -chaos.kills=30 -chaos.nats-restarts=3
var (
	chaosTopology  = flag.String("chaos.topology", "single", "single (one NATS server, one process of each role) or cluster (3 NATS nodes, R3, -chaos.instances processes of each role with data directories of their own; needs -chaos.objects=s3 -chaos.warehouse=postgres)")
	chaosInstances = flag.Int("chaos.instances", 2, "with -chaos.topology=cluster: processes of each role")
)

// clusterNodes is the size of the NATS cluster of -chaos.topology=cluster.
const clusterNodes = 3

// checkTopologyFlags refuses a cluster run that would share a local
// directory between the roles.
func checkTopologyFlags(t *testing.T) {
	t.Helper()
	switch *chaosTopology {
	case "single":
	case "cluster":
		if *chaosObjects != "s3" || *chaosWH != "postgres" {
			t.Fatalf("-chaos.topology cluster: the roles share nothing local, so it needs -chaos.objects=s3 -chaos.warehouse=postgres (have %s, %s)", *chaosObjects, *chaosWH)
		}
		if *chaosInstances < 1 {
			t.Fatalf("-chaos.instances %d: want at least 1", *chaosInstances)
		}
	default:
		t.Fatalf("-chaos.topology %q: want single or cluster", *chaosTopology)
	}
}

// roleInstances is how many processes of each role the run has.
func roleInstances() int {
	if *chaosTopology == "cluster" {
		return *chaosInstances
	}
	return 1
}

// natsReplicas is the replica count the roles and the CLI are given.
func natsReplicas() int {
	if *chaosTopology == "cluster" {
		return clusterNodes
	}
	return 1
}

// chaosNATS is the run's NATS: one server, or the nodes of a cluster, and
// the monkey's handle on it.
type chaosNATS struct {
	nodes  []*proc
	urls   []string // client URL of each node
	addrs  []string // host:port of each node, for the roles' proxies
	server *server
}

// URL is the client URL list of every node.
func (n *chaosNATS) URL() string { return strings.Join(n.urls, ",") }

// startNATS starts one NATS server, or with cluster the nodes of a
// cluster, with their stores and logs under root, and waits until
// JetStream answers on each; the monkey restarts it restarts times.
func startNATS(t *testing.T, ctx context.Context, bin, root string, supervise func(*proc), cluster bool, restarts int) *chaosNATS {
	t.Helper()
	n := &chaosNATS{}
	if !cluster {
		port := freePort(t)
		n.addrs = []string{fmt.Sprintf("127.0.0.1:%d", port)}
		n.urls = []string{"nats://" + n.addrs[0]}
		p := newProc("nats", bin, filepath.Join(root, "logs", "nats.log"),
			"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", filepath.Join(root, "nats"), "-n", "windrow-chaos")
		n.nodes = []*proc{p}
		supervise(p)
		url := n.urls[0]
		n.server = &server{name: "nats", proc: p, nodes: n.nodes, restarts: restarts, modes: natsStops,
			ready: func(ctx context.Context) error { return waitNATS(ctx, url, 2*time.Minute) }, readyNote: "JetStream answering again"}
	} else {
		ports, routes := make([]int, clusterNodes), make([]string, clusterNodes)
		for i := range clusterNodes {
			ports[i] = freePort(t)
			routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
		}
		for i := range clusterNodes {
			name := fmt.Sprintf("nats-%d", i+1)
			n.addrs = append(n.addrs, fmt.Sprintf("127.0.0.1:%d", ports[i]))
			n.urls = append(n.urls, "nats://"+n.addrs[i])
			store := filepath.Join(root, "nats", name)
			if err := os.MkdirAll(store, 0o755); err != nil {
				t.Fatal(err)
			}
			// --no_advertise: clients know only the URLs they were given,
			// so the roles keep going through their proxies.
			p := newProc(name, bin, filepath.Join(root, "logs", name+".log"),
				"-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-js", "-sd", store, "-n", name,
				"--cluster_name", "windrow-chaos", "--cluster", routes[i], "--routes", strings.Join(routes, ","), "--no_advertise")
			n.nodes = append(n.nodes, p)
			supervise(p)
		}
		n.server = &server{name: "nats", nodes: n.nodes, restarts: restarts, modes: clusterStops, pick: n.pickLeader}
	}
	for _, url := range n.urls {
		if err := waitNATS(ctx, url, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// clusterStops are the ways a cluster node is stopped: a crash first.
var clusterStops = []serverStop{{"nats-sigkill", syscall.SIGKILL}, {"nats-sigterm", syscall.SIGTERM}}

// leaderTargets are the streams whose leader the cluster's restarts aim
// at, in turn: the source stream (filled in by the run), the window
// states' KV bucket and the load commands.
var leaderTargets = []string{"", "KV_" + messages.BucketWindows, messages.StreamLoad}

// replicatedStreams are the streams a restarted node must have caught up
// on before the restart counts as done (with the source stream).
var replicatedStreams = []string{"KV_" + messages.BucketWindows, "KV_" + messages.BucketWatermarks, messages.StreamSegments, messages.StreamLoad, messages.StreamResults}

// pickLeader chooses the node the k-th restart stops: the leader of a
// stream, the source stream first (a random node if the leader cannot be
// read). It returns the node, how to tell it is back, and a note.
func (n *chaosNATS) pickLeader(ctx context.Context, m *monkey, k int) (*proc, func(context.Context) error, string) {
	stream := leaderTargets[k%len(leaderTargets)]
	if stream == "" {
		stream = m.stream
	}
	target, note := -1, ""
	leader, err := n.leader(ctx, stream)
	for i, p := range n.nodes {
		if p.name == leader {
			target, note = i, "leader of "+stream
		}
	}
	if target < 0 {
		target = m.rng.IntN(len(n.nodes))
		note = fmt.Sprintf("no leader of %s known (%v): a random node", stream, err)
	}
	url := n.urls[target]
	streams := append([]string{m.stream}, replicatedStreams...)
	ready := func(ctx context.Context) error {
		if err := waitNATS(ctx, url, 2*time.Minute); err != nil {
			return err
		}
		return n.waitCurrent(ctx, streams, 2*time.Minute)
	}
	return n.nodes[target], ready, note
}

// leader is the name of the node leading a stream.
func (n *chaosNATS) leader(ctx context.Context, stream string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(n.URL(), nats.Timeout(time.Second))
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	for {
		s, err := js.Stream(ctx, stream)
		if err == nil {
			info, ierr := s.Info(ctx)
			if ierr == nil && info.Cluster != nil && info.Cluster.Leader != "" {
				return info.Cluster.Leader, nil
			}
			err = ierr
		}
		select {
		case <-ctx.Done():
			return "", errors.Join(ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitCurrent waits until each stream has a leader and every other
// replica is current: the cluster is whole again, so that the next
// node's loss keeps a quorum.
func (n *chaosNATS) waitCurrent(ctx context.Context, streams []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := nats.Connect(n.URL(), nats.Timeout(time.Second), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var last string
	for {
		last = ""
		for _, name := range streams {
			if why := replicaLag(ctx, js, name); why != "" {
				last += "; " + why
			}
		}
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster is not whole within %s%s", timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// replicaLag says why a stream is not fully replicated ("" if it is).
func replicaLag(ctx context.Context, js jetstream.JetStream, name string) string {
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(actx, name)
	if err != nil {
		return name + ": " + err.Error()
	}
	info, err := s.Info(actx)
	if err != nil {
		return name + ": " + err.Error()
	}
	c := info.Cluster
	if c == nil || c.Leader == "" {
		return name + ": no leader"
	}
	if len(c.Replicas) < info.Config.Replicas-1 {
		return fmt.Sprintf("%s: %d replicas besides the leader, want %d", name, len(c.Replicas), info.Config.Replicas-1)
	}
	for _, r := range c.Replicas {
		if !r.Current || r.Offline {
			return fmt.Sprintf("%s: replica %s not current (lag %d)", name, r.Name, r.Lag)
		}
	}
	return ""
}
