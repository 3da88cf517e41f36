package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// DefaultAddr is the metrics address of `windrow up`: loopback only.
const DefaultAddr = "127.0.0.1:9464"

// Disabled reports whether addr turns the metrics server off ("" or "off").
func Disabled(addr string) bool {
	return strings.TrimSpace(addr) == "" || strings.EqualFold(strings.TrimSpace(addr), "off")
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Addr is the listen address, host:port; port 0 picks a free port.
	Addr string
	// Metrics serves /metrics; nil: 404.
	Metrics http.Handler
	// Ready returns what is not ready (empty: ready); it backs /readyz and
	// should be cheap (cache what it reads). Nil: always ready.
	Ready func(context.Context) []string
	// ReadyTimeout bounds one readiness check. Default 5s.
	ReadyTimeout time.Duration
	Logger       *slog.Logger
}

// ListenError is a failure to bind the metrics address (the port is taken,
// the address is invalid).
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("metrics server: listen on %s: %v", e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// Server serves /metrics, /healthz and /readyz.
type Server struct {
	cfg  ServerConfig
	ln   net.Listener
	http *http.Server
	done chan struct{}
}

// Listen binds cfg.Addr and starts serving in the background. A bind
// failure is a *ListenError.
func Listen(cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 5 * time.Second
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, &ListenError{Addr: cfg.Addr, Err: err}
	}
	s := &Server{cfg: cfg, ln: ln, done: make(chan struct{})}
	mux := http.NewServeMux()
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		// Liveness: the process is up and serving HTTP.
		plain(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "windrow: /metrics (Prometheus), /healthz (liveness), /readyz (readiness)\n")
	})
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("metrics server stopped", "addr", s.Addr(), "err", err)
		}
	}()
	cfg.Logger.Info("metrics server listening", "addr", s.Addr(),
		"endpoints", "http://"+s.Addr()+"/metrics /healthz /readyz")
	return s, nil
}

// Addr is the address the server listens on (with the port picked for :0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL, e.g. http://127.0.0.1:9464.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Shutdown stops accepting connections and waits for requests in flight,
// bounded by ctx; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.http.Close())
	}
	<-s.done
	return err
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready == nil {
		plain(w, http.StatusOK, "ok\n")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	problems := s.cfg.Ready(ctx)
	if len(problems) == 0 {
		plain(w, http.StatusOK, "ok\n")
		return
	}
	plain(w, http.StatusServiceUnavailable, "not ready:\n"+strings.Join(problems, "\n")+"\n")
}

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
