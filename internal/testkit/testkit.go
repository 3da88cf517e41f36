// Package testkit starts the real parts windrow's service tests need: an
// in-process NATS server with JetStream on a random loopback port, the
// provisioned streams and buckets, and a local object store. The server and
// connection come from testnats, which tests that cannot import testkit (natsx
// and statestore internal tests) use directly.
package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/windows"
)

// Env is one test's NATS server, connection and stores.
type Env struct {
	Server     *server.Server
	Conn       *nats.Conn
	JS         jetstream.JetStream
	Topology   *natsx.Topology
	Store      *local.Store
	States     *statestore.Store
	Watermarks *statestore.Watermarks
}

// New starts a JetStream server for t and provisions windrow's streams.
func New(t testing.TB) *Env {
	t.Helper()
	srv := testnats.RunServer(t)
	nc, js := testnats.Connect(t, srv)
	topo := provision(t, js)
	store, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Server: srv, Conn: nc, JS: js, Topology: topo, Store: store, States: statestore.New(topo.Windows), Watermarks: statestore.NewWatermarks(topo.Watermarks)}
}

// provision creates windrow's streams and buckets through js, failing the
// test if it cannot within 10 seconds.
func provision(t testing.TB, js jetstream.JetStream) *natsx.Topology {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := natsx.Provision(ctx, js)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	return topo
}

// Policy parses a policy for a test.
func Policy(t testing.TB, src string) *windows.Policy {
	t.Helper()
	p, err := windows.ParsePolicy("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p.Version = 1
	return p
}

// WaitFor polls cond every 20ms until it holds or timeout passes; it is
// testnats.WaitFor.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testnats.WaitFor(t, timeout, what, cond)
}

// OrdersPolicy is the policy of the full-stack tests: hourly windows on
// ORDERS (subjects orders.>) that close by event time only (idle_timeout
// 1h: the idle rule would close them all at once), late events
// dead-lettered, segments flushed every 100ms, loaded into table orders.
// Events: {"id": string, "n": int64, "at": timestamp}. Tests add sections
// by appending lines (e.g. "sla: {deadline: 1h}\n").
const OrdersPolicy = `name: orders
source: {stream: ORDERS, subjects: [orders.>]}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: n, type: int64, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h, max_out_of_order: 1m, allowed_lateness: 0s, late: dlq, idle_timeout: 1h}
segment: {max_rows: 1000, max_age: 100ms}
load: {table: orders}
`
