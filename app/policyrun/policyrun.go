// Package policyrun runs one worker per window policy and keeps the set in
// step with the policy store: a new policy starts a worker, a changed policy
// restarts its worker with the new version once the old one has stopped
// cleanly, and a deleted policy stops it.
package policyrun

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/windows"
)

// Worker runs one policy until ctx is done. It returns nil on a clean stop.
type Worker func(ctx context.Context, p *windows.Policy) error

// Run watches store and runs work for every policy until ctx is done. A
// worker that fails is restarted after a backoff.
func Run(ctx context.Context, store *policystore.Store, log *slog.Logger, work Worker) error {
	changes, err := store.Watch(ctx)
	if err != nil {
		return err
	}
	type running struct {
		cancel  context.CancelFunc
		done    chan struct{}
		version uint64
	}
	workers := map[string]*running{}
	var wg sync.WaitGroup
	stop := func(name string) {
		if r, ok := workers[name]; ok {
			r.cancel()
			<-r.done
			delete(workers, name)
		}
	}
	start := func(p *windows.Policy) {
		wctx, cancel := context.WithCancel(ctx)
		r := &running{cancel: cancel, done: make(chan struct{}), version: p.Version}
		workers[p.Name] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(r.done)
			backoff := time.Second
			for {
				began := time.Now()
				err := work(wctx, p)
				if wctx.Err() != nil {
					return
				}
				if time.Since(began) > time.Minute {
					// It ran well before failing: a new trouble, not the
					// same one again; start the backoff over.
					backoff = time.Second
				}
				log.Error("policy worker failed; restarting", "policy", p.Name, "version", p.Version, "err", err, "backoff", backoff)
				select {
				case <-wctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 30*time.Second)
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			for name := range workers {
				workers[name].cancel()
			}
			wg.Wait()
			return nil
		case c, ok := <-changes:
			if !ok {
				for name := range workers {
					workers[name].cancel()
				}
				wg.Wait()
				return ctx.Err()
			}
			switch {
			case c.Err != nil:
				log.Error("stored policy is invalid; keeping the running version", "policy", c.Name, "err", c.Err)
			case c.Policy == nil:
				log.Info("policy deleted; stopping its worker", "policy", c.Name)
				stop(c.Name)
			default:
				if r, ok := workers[c.Name]; ok && r.version == c.Policy.Version {
					continue
				}
				stop(c.Name)
				log.Info("running policy", "policy", c.Name, "version", c.Policy.Version)
				start(c.Policy)
			}
		}
	}
}
