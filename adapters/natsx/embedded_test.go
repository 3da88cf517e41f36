package natsx

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// takePort listens on a free loopback port for the rest of the test.
func takePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func startEmbedded(t *testing.T, cfg EmbeddedConfig) *Embedded {
	t.Helper()
	e, err := StartEmbedded(cfg)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

func embeddedPort(t *testing.T, e *Embedded) (net.IP, int) {
	t.Helper()
	addr, ok := e.Server().Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("server address %v is not TCP", e.Server().Addr())
	}
	return addr.IP, addr.Port
}

// checkJetStream connects over TCP to the client URL and asks JetStream.
func checkJetStream(t *testing.T, url string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitJetStream(ctx, js); err != nil {
		t.Fatalf("WaitJetStream via %s: %v", url, err)
	}
}

func TestStartEmbeddedBindsLoopbackByDefault(t *testing.T) {
	e := startEmbedded(t, EmbeddedConfig{StoreDir: t.TempDir(), Port: -1})
	ip, port := embeddedPort(t, e)
	if !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("listening on %v, want 127.0.0.1", ip)
	}
	if e.FellBack {
		t.Error("FellBack = true for a random port")
	}
	if want := "nats://127.0.0.1:" + strconv.Itoa(port); e.ClientURL() != want {
		t.Errorf("ClientURL = %q, want %q", e.ClientURL(), want)
	}
	checkJetStream(t, e.ClientURL())
}

func TestStartEmbeddedFallsBackWhenPortTaken(t *testing.T) {
	taken := takePort(t)
	e := startEmbedded(t, EmbeddedConfig{StoreDir: t.TempDir(), Port: taken, FallbackPort: true})
	if !e.FellBack {
		t.Error("FellBack = false, want true: the port was taken")
	}
	_, port := embeddedPort(t, e)
	if port == taken || port <= 0 {
		t.Fatalf("listening on port %d, want a free port other than the taken %d", port, taken)
	}
	checkJetStream(t, e.ClientURL())
}

func TestStartEmbeddedPortInUse(t *testing.T) {
	taken := takePort(t)
	e, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: taken})
	if err == nil {
		e.Shutdown()
		t.Fatal("StartEmbedded succeeded on a taken port without FallbackPort")
	}
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("err = %v, want ErrPortInUse", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(taken)) {
		t.Errorf("error %q does not mention port %d", err, taken)
	}
}

func TestStartEmbeddedRequiresStoreDir(t *testing.T) {
	e, err := StartEmbedded(EmbeddedConfig{Port: -1})
	if err == nil {
		e.Shutdown()
		t.Fatal("StartEmbedded without StoreDir succeeded")
	}
	if !strings.Contains(err.Error(), "store dir") {
		t.Errorf("error %q does not name the store dir", err)
	}
}

func TestConnectInProcess(t *testing.T) {
	e := startEmbedded(t, EmbeddedConfig{StoreDir: t.TempDir(), Port: -1})
	// URL and credentials are ignored for an in-process connection.
	nc, err := Connect(ClientConfig{URL: "nats://127.0.0.1:1", User: "nobody", Password: "x", Name: "test"}, e.Server())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitJetStream(ctx, js); err != nil {
		t.Fatalf("WaitJetStream: %v", err)
	}
}

// TestEmbeddedStoreDirIsPrivate guards the mode of the JetStream store
// directory the embedded server creates: no permissions for group or others.
func TestEmbeddedStoreDirIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	startEmbedded(t, EmbeddedConfig{StoreDir: dir, Port: -1})
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("store dir: mode %v, want no permissions for group or others", perm)
	}
}
