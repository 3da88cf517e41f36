package natsx_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testnats"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConnectRetryWaitsForTheServer: a role started before its NATS server
// connects once the server is up, instead of exiting.
func TestConnectRetryWaitsForTheServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	started := make(chan struct{})
	go func() {
		defer close(started)
		// The server comes up once the client has failed a few times.
		for !strings.Contains(logs.String(), "NATS not reachable yet") {
			time.Sleep(20 * time.Millisecond)
		}
		testnats.RunServer(t, func(o *server.Options) { o.Port = port })
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := natsx.ConnectRetry(ctx, natsx.ClientConfig{URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}, 20*time.Second, log)
	<-started
	if err != nil {
		t.Fatalf("ConnectRetry: %v\n%s", err, logs.String())
	}
	defer nc.Close()
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
	if !strings.Contains(logs.String(), "connected to NATS") {
		t.Errorf("no log of the connection after retries:\n%s", logs.String())
	}
}

// TestConnectRetryGivesUpOnAuthErrors: a wrong credential is not retried.
func TestConnectRetryGivesUpOnAuthErrors(t *testing.T) {
	srv := testnats.RunServer(t, func(o *server.Options) { o.Authorization = "s3cret" })
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := natsx.ConnectRetry(ctx, natsx.ClientConfig{URL: srv.ClientURL(), Token: "wrong"}, 20*time.Second, log)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("ConnectRetry with a wrong token: %v, want an authorization error", err)
	}
	if strings.Contains(logs.String(), "retrying") {
		t.Errorf("an authorization error was retried:\n%s", logs.String())
	}
	// wait 0: one attempt, no retry.
	_, err = natsx.ConnectRetry(ctx, natsx.ClientConfig{URL: "nats://127.0.0.1:1"}, 0, log)
	if err == nil {
		t.Fatal("connected to a closed port")
	}
}
