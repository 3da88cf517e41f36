package stack

import (
	"context"
	"log/slog"
	"time"
)

// service is what the stack runs of each role: the collector and compactor
// of every policy and the loader. The stack starts and stops them through
// this alone.
type service interface {
	// Run works until Shutdown or until its context ends (a hard stop:
	// work in flight is left unacked, to be redelivered).
	Run(ctx context.Context) error
	// Shutdown stops intake, finishes and acks the work in flight, and
	// returns when Run has returned, or when ctx ends. Idempotent.
	Shutdown(ctx context.Context) error
}

// shutdownGrace bounds a role's graceful stop; past it, the role's Run is
// canceled.
const shutdownGrace = 30 * time.Second

// supervise runs svc until it fails or ctx ends, then shuts it down: Run's
// own context is canceled only if Shutdown has not finished within
// shutdownGrace. It returns Run's error.
func supervise(ctx context.Context, name string, svc service, log *slog.Logger) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(runCtx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(runCtx, shutdownGrace)
	defer scancel()
	if err := svc.Shutdown(sctx); err != nil {
		log.Warn("graceful stop did not finish; stopping at once (work in flight is redelivered)", "role", name, "err", err)
		cancel()
	}
	return <-errc
}
