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

// startEmbedded starts an embedded server for the rest of the test, with
// an NKey file in a temporary directory unless cfg names one.
func startEmbedded(t *testing.T, cfg EmbeddedConfig) *Embedded {
	t.Helper()
	if cfg.NKeyFile == "" {
		cfg.NKeyFile = filepath.Join(t.TempDir(), "nats.nkey")
	}
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

// checkJetStream connects over TCP with cfg and asks JetStream.
func checkJetStream(t *testing.T, cfg ClientConfig) {
	t.Helper()
	nc, err := Connect(cfg, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", cfg, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitJetStream(ctx, js); err != nil {
		t.Fatalf("WaitJetStream via %s: %v", cfg, err)
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
	checkJetStream(t, e.ClientConfig())
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
	checkJetStream(t, e.ClientConfig())
}

func TestStartEmbeddedPortInUse(t *testing.T) {
	taken := takePort(t)
	e, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: taken, NKeyFile: filepath.Join(t.TempDir(), "nats.nkey")})
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
	// The URL is ignored for an in-process connection; the credentials are not.
	cfg := e.ClientConfig()
	cfg.URL = "nats://127.0.0.1:1"
	cfg.Name = "test"
	nc, err := Connect(cfg, e.Server())
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

func TestStartEmbeddedRequiresNKeyFile(t *testing.T) {
	e, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1})
	if err == nil {
		e.Shutdown()
		t.Fatal("StartEmbedded without NKeyFile succeeded")
	}
	if !strings.Contains(err.Error(), "nkey file") {
		t.Errorf("error %q does not name the nkey file", err)
	}
}

// TestEmbeddedRequiresItsNKey guards the embedded server's authentication:
// a client without credentials, or with another NKey, is refused; with the
// seed in NKeyFile it gets in. (In-process clients are held to the same
// server options; TestConnectInProcess connects with the seed.)
func TestEmbeddedRequiresItsNKey(t *testing.T) {
	e := startEmbedded(t, EmbeddedConfig{StoreDir: t.TempDir(), Port: -1})
	other := filepath.Join(t.TempDir(), "other.nkey")
	if _, err := loadOrCreateNKey(other); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]ClientConfig{
		"no credentials": {URL: e.ClientURL()},
		"another nkey":   {URL: e.ClientURL(), NKeySeed: other},
	} {
		t.Run(name, func(t *testing.T) {
			if nc, err := Connect(cfg, nil); !errors.Is(err, nats.ErrAuthorization) {
				if nc != nil {
					nc.Close()
				}
				t.Errorf("Connect(%s) = %v, want %v", cfg, err, nats.ErrAuthorization)
			}
		})
	}
	checkJetStream(t, e.ClientConfig())
}

// TestEmbeddedNKeyFile guards the credentials file: created 0600 with a
// user seed, reused as it is by the next start, and an unusable file
// refused with an error that names it but shows none of its content.
func TestEmbeddedNKeyFile(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "nats.nkey")
	store := t.TempDir()
	e := startEmbedded(t, EmbeddedConfig{StoreDir: store, Port: -1, NKeyFile: keyFile})
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("nkey file: mode %v, want 0600", perm)
	}
	first, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(first), "SU") {
		t.Errorf("nkey file does not hold a user seed")
	}
	e.Shutdown()

	e = startEmbedded(t, EmbeddedConfig{StoreDir: store, Port: -1, NKeyFile: keyFile})
	again, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) {
		t.Error("a restart replaced the nkey file")
	}
	checkJetStream(t, e.ClientConfig())
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("directory of the nkey file holds %v (%v), want only the file: no temporary file left", entries, err)
	}

	bad := filepath.Join(t.TempDir(), "bad.nkey")
	const content = "not-a-seed-5ecr3t"
	if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err = StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, NKeyFile: bad})
	if err == nil {
		e.Shutdown()
		t.Fatal("StartEmbedded with an unusable nkey file succeeded")
	}
	if !strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), content) {
		t.Errorf("error %q: want the file's name and none of its content", err)
	}
}
