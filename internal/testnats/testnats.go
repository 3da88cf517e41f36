// Package testnats runs the in-process NATS server that windrow's tests talk
// to (STYLE.md rule 12): one JetStream server per test on a random loopback
// port, a client connection to it, and polling waits instead of sleeps.
//
// It imports nothing from windrow, so every package's tests can use it,
// internal tests of natsx and statestore included. Helpers that need
// windrow's streams and buckets live in internal/testkit.
package testnats

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pollInterval is how often WaitFor and WaitForNil check their condition.
const pollInterval = 20 * time.Millisecond

// RunServer starts a NATS server with JetStream on a random 127.0.0.1 port,
// storing in t.TempDir(), without logging or signal handlers. Each opt may
// change the options before the server starts, for example to add
// credentials or to turn JetStream off. The server is shut down, and waited
// for, when the test ends.
func RunServer(t testing.TB, opts ...func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true,
	}
	for _, opt := range opts {
		opt(o)
	}
	srv, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// Connect opens a client connection to srv and a JetStream context on it.
// The connection is closed when the test ends.
func Connect(t testing.TB, srv *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// WaitFor polls cond every 20ms until it holds; if it does not within
// timeout, the test fails, naming what it waited for.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// WaitForNil polls cond every 20ms until it returns nil; if it does not
// within timeout, the test fails with the last error cond returned.
func WaitForNil(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	var err error
	if !poll(timeout, func() bool { err = cond(); return err == nil }) {
		t.Fatalf("condition not met after %s: %v", timeout, err)
	}
}

// ConsumerSettled returns a condition for WaitForNil: it reports an error
// until the durable consumer on stream has no messages pending delivery or
// awaiting acknowledgement.
func ConsumerSettled(js jetstream.JetStream, stream, durable string) func() error {
	return func() error {
		c, err := js.Consumer(context.Background(), stream, durable)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Errorf("ack pending %d, pending %d", info.NumAckPending, info.NumPending)
		}
		return nil
	}
}

// poll calls cond every pollInterval until it holds, and reports whether it
// did before timeout passed.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}
