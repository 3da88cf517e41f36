package testnats

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a JetStream cluster of in-process NATS servers, with routes on
// 127.0.0.1, each node storing in its own t.TempDir(). Nodes are named
// n1, n2, …; index i is node n<i+1>.
type Cluster struct {
	t     testing.TB
	mu    sync.Mutex
	opts  []*server.Options
	nodes []*server.Server // nil while a node is stopped
}

// clusterName is the name of every test cluster.
const clusterName = "windrow-test"

// RunCluster starts an n-node JetStream cluster, waits until every node is
// routed to every other and JetStream has elected a meta leader, and shuts
// every node down when the test ends. Each opt may change a node's options
// before it first starts.
func RunCluster(t testing.TB, n int, opts ...func(*server.Options)) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	t.Cleanup(c.shutdown) // after the directories', so it runs before their removal
	// A clustered JetStream server does not start without routes: the
	// route ports are picked first (free now, very likely still free a
	// moment later), and every node routes to all of them (a route to
	// itself is ignored). Each node keeps its ports, so that a restarted
	// node is found again at the same addresses.
	var routes []*url.URL
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
		routes = append(routes, server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))...)
	}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: dirs[i],
			Cluster: server.ClusterOpts{Name: clusterName, Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
			NoLog:   true, NoSigs: true,
		}
		for _, opt := range opts {
			opt(o)
		}
		srv := c.start(o)
		o.Port = srv.Addr().(*net.TCPAddr).Port
		c.opts = append(c.opts, o)
		c.nodes = append(c.nodes, srv)
	}
	c.WaitReady(30 * time.Second)
	return c
}

// freePort is a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) start(o *server.Options) *server.Server {
	c.t.Helper()
	srv, err := server.NewServer(o)
	if err != nil {
		c.t.Fatalf("new server %s: %v", o.ServerName, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		c.t.Fatalf("nats server %s not ready", o.ServerName)
	}
	return srv
}

// URLs is the client URLs of every node, comma-separated, as nats.Connect
// and windrow's --nats-url take them.
func (c *Cluster) URLs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(urls, ",")
}

// Server is node i, nil while it is stopped.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Index is the index of the node named name (as stream and consumer infos
// name their leaders), -1 if there is none.
func (c *Cluster) Index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// Stop shuts node i down and waits for it. Its store stays, for Restart.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	srv := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts a stopped node i again on its ports and its store, and
// waits until the cluster is ready again.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.mu.Lock()
	if c.nodes[i] != nil {
		c.mu.Unlock()
		c.t.Fatalf("restart node %d: it is running", i)
	}
	o := c.opts[i].Clone()
	c.mu.Unlock()
	srv := c.start(o)
	c.mu.Lock()
	c.nodes[i] = srv
	c.mu.Unlock()
	c.WaitReady(30 * time.Second)
}

// WaitReady waits until every running node is routed to every other
// running node, one of them is the JetStream meta leader, and every
// running node is current with it. JetStream API requests made before
// that may go unanswered.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	var last string
	if poll(timeout, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		var running []*server.Server
		for _, s := range c.nodes {
			if s != nil {
				running = append(running, s)
			}
		}
		leaders := 0
		for _, s := range running {
			if s.NumRoutes() < len(running)-1 {
				last = fmt.Sprintf("%s has %d routes, want %d", s.Name(), s.NumRoutes(), len(running)-1)
				return false
			}
			if s.JetStreamIsLeader() {
				leaders++
			}
		}
		if leaders != 1 {
			last = fmt.Sprintf("%d meta leaders among %d running nodes", leaders, len(running))
			return false
		}
		for _, s := range running {
			if !s.JetStreamIsCurrent() {
				last = s.Name() + " is not current with the meta leader"
				return false
			}
		}
		return true
	}) {
		return
	}
	c.t.Fatalf("nats cluster not ready after %s: %s", timeout, last)
}

func (c *Cluster) shutdown() {
	for i := range c.nodes {
		c.Stop(i)
	}
}
