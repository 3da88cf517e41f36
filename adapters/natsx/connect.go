package natsx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClientConfig says how to reach NATS. Secrets are never logged: String()
// shows which kind of credentials is set, not their values.
type ClientConfig struct {
	URL      string // default nats://127.0.0.1:4222
	Name     string // connection name shown in server monitoring
	User     string
	Password string
	Token    string
	Creds    string // path of a .creds file (JWT + NKey seed)
	NKeySeed string // path of an NKey seed file
	CAFile   string // TLS: CA bundle that signed the server's certificate
	CertFile string // TLS: client certificate (mutual TLS)
	KeyFile  string // TLS: client key
}

// String describes the configuration without secrets.
func (c ClientConfig) String() string {
	auth := "none"
	switch {
	case c.Creds != "":
		auth = "creds file"
	case c.NKeySeed != "":
		auth = "nkey"
	case c.Token != "":
		auth = "token"
	case c.User != "":
		auth = "user " + c.User
	}
	tls := ""
	if c.CAFile != "" || c.CertFile != "" {
		tls = " tls"
	}
	return fmt.Sprintf("%s (auth: %s%s)", RedactURL(c.URL), auth, tls)
}

// GoString keeps %#v from printing the secret fields.
func (c ClientConfig) GoString() string { return "natsx.ClientConfig{" + c.String() + "}" }

// LogValue makes slog log the String form: without it a JSON handler would
// marshal the struct, password and token included.
func (c ClientConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// RedactURL hides user information (a password or token) in each URL of a
// comma-separated NATS server list.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			if strings.Contains(p, "@") {
				parts[i] = "(url with credentials)"
			}
			continue
		}
		u.User = url.User("redacted")
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// ConnectedURL is the URL nc is connected to, without credentials. Use it
// instead of nc.ConnectedUrlRedacted, which hides a password but shows a
// token given as nats://token@host.
func ConnectedURL(nc *nats.Conn) string {
	return RedactURL(nc.ConnectedUrl())
}

// Connect opens a connection. With srv set the connection is in-process
// (no TCP) and the URL is ignored; the credentials are still sent, and an
// Embedded server requires its own (Embedded.ClientConfig).
func Connect(cfg ClientConfig, srv *server.Server) (*nats.Conn, error) {
	if cfg.URL == "" {
		cfg.URL = nats.DefaultURL
	}
	if err := checkURLs(cfg.URL); err != nil {
		return nil, err
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("nats mutual tls: the client certificate file and key file go together; set both or neither")
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(64 << 20),
	}
	if srv != nil {
		opts = append(opts, nats.InProcessServer(srv))
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.NKeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("nkey seed %s: %w", cfg.NKeySeed, err)
		}
		opts = append(opts, o)
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", cfg, err)
	}
	return nc, nil
}

// checkURLs parses each URL of the server list as nats.go will. nats.go
// returns url.Parse's error as is, and that error quotes the URL, so a
// password with an unescaped '/', '#', '?', '%' or space would end up in
// the error, and in the log. A '@' that is not part of the user information
// means the credentials would be taken for the host or path (and sent to
// DNS); that is refused too.
func checkURLs(urls string) error {
	for _, p := range strings.Split(urls, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		full := p
		if !strings.Contains(full, "://") {
			full = "nats://" + full
		}
		u, err := url.Parse(full)
		if err == nil && (u.User != nil || !strings.Contains(p, "@")) {
			continue
		}
		if !strings.Contains(p, "@") {
			return fmt.Errorf("invalid nats url %q", p)
		}
		return errors.New("invalid nats url with credentials: percent-encode special characters ('@', '/', '#', '?', '%', space) in its password or token")
	}
	return nil
}

// WaitJetStream waits until JetStream answers, bounded by ctx. Each
// request is bounded by DefaultCallTimeout: a cluster without a meta
// leader does not answer a request it got before the election.
func WaitJetStream(ctx context.Context, js jetstream.JetStream) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		_, err := js.AccountInfo(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("jetstream is not enabled on this NATS server (start it with -js): %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for jetstream: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ConnectRetry is Connect that keeps trying for up to wait while the server
// cannot be reached (not listening yet, restarting): with backoff from
// 250ms to 5s, logging each failed attempt. Authentication, TLS and
// configuration errors end it at once. wait 0 tries once.
func ConnectRetry(ctx context.Context, cfg ClientConfig, wait time.Duration, log *slog.Logger) (*nats.Conn, error) {
	deadline := time.Now().Add(wait)
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		nc, err := Connect(cfg, nil)
		if err == nil {
			if attempt > 1 && log != nil {
				log.Info("connected to NATS", "url", ConnectedURL(nc), "attempts", attempt)
			}
			return nc, nil
		}
		if !unreachable(err) || time.Now().Add(backoff).After(deadline) {
			return nil, err
		}
		if log != nil {
			log.Warn("NATS not reachable yet; retrying", "err", err, "in", backoff, "until", deadline.Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// unreachable reports whether a connect error means the server could not
// be reached (worth retrying) rather than that it refused us.
func unreachable(err error) bool {
	if errors.Is(err, nats.ErrNoServers) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, nats.ErrTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
