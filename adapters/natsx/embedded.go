package natsx

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process NATS server.
type EmbeddedConfig struct {
	// StoreDir holds JetStream's file store. Required. Created, if missing,
	// with mode 0700: the store holds every message.
	StoreDir string
	// Host to listen on. Default 127.0.0.1: the embedded server is not
	// reachable from other machines unless asked for.
	Host string
	// Port to listen on. 0 means 4222; -1 picks a free port. If the port is
	// taken and FallbackPort is set, a free port is used instead.
	Port int
	// FallbackPort allows a free port when Port is taken.
	FallbackPort bool
	// MaxStore caps JetStream's file storage in bytes; 0 means the server default.
	MaxStore int64
	// NKeyFile is the NKey seed file clients authenticate with. Required:
	// the server takes no connection without it, in-process ones included.
	// Created, with a new user NKey and mode 0600, if missing; an existing
	// file is reused, so the credentials stay the same across restarts.
	// The format is the one nats.go's NkeyOptionFromSeed and the nats CLI's
	// --nkey read.
	NKeyFile string
}

// ErrPortInUse is returned when the configured port is taken and no fallback is allowed.
var ErrPortInUse = errors.New("port in use")

// Embedded is a running in-process NATS server.
type Embedded struct {
	srv      *server.Server
	nkeyFile string // absolute
	// FellBack is true when the configured port was taken and another was used.
	FellBack bool
}

// StartEmbedded starts a JetStream-enabled NATS server and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded nats: store dir is required")
	}
	if cfg.NKeyFile == "" {
		return nil, errors.New("embedded nats: nkey file is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = 4222
	}
	e := &Embedded{}
	port := cfg.Port
	if port > 0 && !portFree(cfg.Host, port) {
		if !cfg.FallbackPort {
			return nil, fmt.Errorf("embedded nats: %w: %s:%d (another NATS server may be running there; pick --nats-port, or use it with --nats-url nats://%s:%d)", ErrPortInUse, cfg.Host, port, cfg.Host, port)
		}
		port = server.RANDOM_PORT
		e.FellBack = true
	}
	storeDir, err := filepath.Abs(cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded nats: store dir: %w", err)
	}
	nkeyFile, err := filepath.Abs(cfg.NKeyFile)
	if err != nil {
		return nil, err
	}
	pub, err := loadOrCreateNKey(nkeyFile)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	opts := &server.Options{
		ServerName:         "windrow",
		Host:               cfg.Host,
		Port:               port,
		JetStream:          true,
		StoreDir:           storeDir,
		JetStreamMaxStore:  cfg.MaxStore,
		NoSigs:             true,
		NoLog:              true,
		JetStreamMaxMemory: 256 << 20,
		// The only user: whoever can read NKeyFile.
		Nkeys: []*server.NkeyUser{{Nkey: pub}},
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready for connections after 30s")
	}
	e.srv = srv
	e.nkeyFile = nkeyFile
	return e, nil
}

func portFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Server returns the underlying server, for in-process connections.
func (e *Embedded) Server() *server.Server { return e.srv }

// ClientURL is the URL other processes connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// ClientConfig is what a client needs to connect: the client URL and the
// NKey seed file. Pass it to Connect with Server() for an in-process
// connection.
func (e *Embedded) ClientConfig() ClientConfig {
	return ClientConfig{URL: e.ClientURL(), NKeySeed: e.nkeyFile}
}

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
