// Package testkit starts the real parts windrow's service tests need: an
// in-process NATS server with JetStream on a random loopback port, the
// provisioned streams and buckets, and a local object store.
package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/services/natsx"
	"github.com/windrow/windrow/services/objstore"
	"github.com/windrow/windrow/services/statestore"
	"github.com/windrow/windrow/windows"
)

// Env is one test's NATS server, connection and stores.
type Env struct {
	Server     *server.Server
	Conn       *nats.Conn
	JS         jetstream.JetStream
	Store      *objstore.Local
	States     *statestore.Store
	Watermarks *statestore.Watermarks
}

// New starts a JetStream server for t and provisions windrow's streams.
func New(t testing.TB) *Env {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := natsx.Provision(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	store, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Server: srv, Conn: nc, JS: js, Store: store, States: statestore.New(topo.Windows), Watermarks: statestore.NewWatermarks(topo.Watermarks)}
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

// WaitFor polls cond every 20ms until it holds or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
