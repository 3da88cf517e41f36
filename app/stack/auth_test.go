package stack_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/messages"
)

// openEmbedded opens a client-only stack (no roles) with the embedded NATS
// server on a free port, as `windrow up` starts it, over dir.
func openEmbedded(t *testing.T, dir string) *stack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := stack.Open(ctx, stack.Config{DataDir: dir, Embedded: true, NATSPort: -1, Roles: []string{},
		Instance: "t", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MetricsAddr: "off"})
	if err != nil {
		t.Fatalf("open embedded stack: %v", err)
	}
	return s
}

// readURLFile is the client URL another process finds in dir.
func readURLFile(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(stack.URLFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// TestEmbeddedServerRefusesUnauthenticatedClients guards issue 12 item 15:
// the embedded server of `windrow up` takes no connection without the
// credentials in its data directory, so another local process cannot
// publish a forged load command; with them, a client publishes into the
// LOAD stream.
func TestEmbeddedServerRefusesUnauthenticatedClients(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openEmbedded(t, dir)
	defer s.Close()
	url := readURLFile(t, dir)

	nc, err := nats.Connect(url, nats.MaxReconnects(0), nats.Timeout(5*time.Second))
	if err == nil {
		nc.Close()
		t.Fatalf("a client without credentials connected to the embedded server at %s", url)
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("unauthenticated connect: %v, want %v", err, nats.ErrAuthorization)
	}

	nc, err = natsx.Connect(natsx.ClientConfig{URL: url, NKeySeed: filepath.Join(dir, "nats.nkey")}, nil)
	if err != nil {
		t.Fatalf("connect with the data directory's credentials: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, messages.LoadSubject("auth-test"), []byte("{}"))
	if err != nil {
		t.Fatalf("publish with the data directory's credentials: %v", err)
	}
	if ack.Stream != messages.StreamLoad {
		t.Errorf("published into stream %s, want %s", ack.Stream, messages.StreamLoad)
	}
}

// TestEmbeddedCredentialsArePrivateAndStable guards the credentials file:
// mode 0600, and the same key after a restart over the same data directory,
// so that processes started against the first run still authenticate.
func TestEmbeddedCredentialsArePrivateAndStable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	keyFile := filepath.Join(dir, "nats.nkey")
	s := openEmbedded(t, dir)
	st, err := os.Stat(keyFile)
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s: mode %v, want 0600", filepath.Base(keyFile), perm)
	}
	first, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openEmbedded(t, dir)
	defer s.Close()
	again, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) {
		t.Error("the credentials changed across a restart over the same data directory")
	}
	// The restarted server takes the key a process read before the restart.
	nc, err := natsx.Connect(natsx.ClientConfig{URL: readURLFile(t, dir), NKeySeed: keyFile}, nil)
	if err != nil {
		t.Fatalf("connect after restart with the first run's credentials: %v", err)
	}
	nc.Close()
}
