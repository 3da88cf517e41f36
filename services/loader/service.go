package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/windrow/windrow/adapters/wmjetstream"
	"github.com/windrow/windrow/messages"
)

// Stats counts load outcomes since the Service started. Every field is a
// counter exported as the metric its tags name (see collector.Stats); the
// three outcomes are one metric with a status label (tag attrs).
type Stats struct {
	Loaded     int64 `metric:"windrow.loader.commands" attrs:"status=loaded" unit:"{command}" help:"Load commands handled, by status: loaded, duplicate (already in the ledger), failed (given up, window FAILED)."`
	Duplicates int64 `metric:"windrow.loader.commands" attrs:"status=duplicate" unit:"{command}" help:"Load commands handled, by status: loaded, duplicate (already in the ledger), failed (given up, window FAILED)."`
	Failed     int64 `metric:"windrow.loader.commands" attrs:"status=failed" unit:"{command}" help:"Load commands handled, by status: loaded, duplicate (already in the ledger), failed (given up, window FAILED)."`
	Rows       int64 `metric:"windrow.loader.rows" unit:"{row}" help:"Rows committed to the warehouse."`
}

// Service consumes LoadCommands and loads their batches. See the package
// documentation for its ack contract.
type Service struct {
	cfg    Config
	log    *slog.Logger
	sub    *wmjetstream.Subscriber
	router *message.Router
	tracer trace.Tracer
	// versions caches the stored policy versions commands are checked against.
	versions *versionCache

	loaded, duplicates, failed, rows atomic.Int64

	mu        sync.Mutex
	running   bool
	stopping  bool
	cancelRun context.CancelFunc
	runDone   chan struct{}
}

// New checks cfg and builds a Service. Nothing is pulled before Run.
func New(cfg Config) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "loader", "instance", cfg.Instance)
	wlog := watermill.NewSlogLogger(log)
	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{
		JS:             cfg.JS,
		Stream:         messages.StreamLoad,
		Durable:        cfg.durable(),
		FilterSubjects: []string{cfg.filter()},
		// AckWait 2m by default, with InProgress every AckWait/3 while a
		// load runs: a long load is never redelivered under a live loader,
		// and a dead loader's command goes to another within 2 minutes.
		AckWait: cfg.AckWait,
		// MaxDeliver unlimited (the zero value). Deliveries are spent only by
		// transient failures (warehouse down or locked: nacked after the
		// in-process retries, back after NakDelay) and by loader crashes;
		// capping them would drop commands during a long warehouse outage.
		// Permanent failures never loop: the poison step reports them and
		// terminates the message on its first delivery.
		NakDelay: cfg.Retry.MaxInterval,
		// Workers commands at once, one per window (windowKey) in fetch
		// order; up to MaxWaiting more are fetched ahead and held with
		// InProgress, so that one window's long run of commands does not
		// hold up the windows behind it.
		Workers:    cfg.Workers,
		Key:        windowKey,
		MaxWaiting: cfg.maxWaiting(),
		Logger:     wlog,
	})
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.AckWait}, wlog)
	if err != nil {
		return nil, fmt.Errorf("loader: router: %w", err)
	}
	s := &Service{cfg: cfg, log: log, sub: sub, router: router, tracer: cfg.Tracing.Tracer(), versions: newVersionCache(cfg.Policies), runDone: make(chan struct{})}
	// Outermost first: poison sees the final error after recovery and
	// retries; a panic is not retried (Recoverer is outside Retry).
	router.AddMiddleware(s.poison, middleware.Recoverer, retry(cfg.Retry, wlog))
	router.AddNoPublisherHandler(cfg.durable(), cfg.filter(), sub, s.handle)
	return s, nil
}

// windowKey is the ordering key of a load command: its subject (which names
// the policy) and its window header. Commands without the header (forged or
// malformed: they fail as poison) share their subject's key.
func windowKey(m jetstream.Msg) string {
	return m.Subject() + " " + m.Headers().Get(messages.HeaderWindow)
}

// Run consumes commands until ctx ends or Shutdown completes, and returns nil
// then. Canceling ctx stops at once: a command in flight is not acked and is
// redelivered later (the ledger makes that safe). Shutdown stops gracefully.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("loader: already running")
	}
	if s.stopping {
		s.mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	s.running, s.cancelRun = true, cancel
	s.mu.Unlock()
	defer close(s.runDone)
	defer cancel()

	s.log.Info("loader running", "durable", s.cfg.durable(), "filter", s.cfg.filter())
	if err := s.router.Run(ctx); err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if ctx.Err() == nil && !stopping {
		// The subscription ended on its own, e.g. the NATS connection closed.
		return errors.New("loader: command subscription ended unexpectedly")
	}
	return nil
}

// Shutdown stops pulling commands, naks those held ahead, lets the commands
// in flight finish (load, publish the result, ack) and waits for Run to
// return, all bounded by ctx. If ctx ends first, the commands in flight are
// abandoned without an ack and ctx's error is returned. Shutdown is
// idempotent.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	running, cancel := s.running, s.cancelRun
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.sub.Close() // always nil; returns once the commands in flight are acked or nacked
		if !running {
			return
		}
		select {
		case <-s.router.Running():
			// The router also closes itself once its subscription ended; an
			// explicit Close just makes that prompt. Its only error is its
			// close timeout, which ctx bounds below.
			_ = s.router.Close()
		case <-s.runDone: // Run failed before the router ran
		}
		<-s.runDone
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if cancel != nil {
			cancel()
		}
		return fmt.Errorf("loader shutdown: %w", ctx.Err())
	}
}

// Stats returns the outcome counters.
func (s *Service) Stats() Stats {
	return Stats{Loaded: s.loaded.Load(), Duplicates: s.duplicates.Load(), Failed: s.failed.Load(), Rows: s.rows.Load()}
}
