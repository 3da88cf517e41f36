// Package lifecycle is the bookkeeping of a service's two-phase stop,
// shared by the services: Run runs once, Shutdown asks it to stop and waits
// for it (like net/http's Server.Shutdown).
//
//	func (s *Service) Run(ctx context.Context) error {
//		if err := s.life.Start(); err != nil {
//			return err
//		}
//		defer s.life.Done()
//		for !s.life.Stopping() { … }
//	}
//
//	func (s *Service) Shutdown(ctx context.Context) error { return s.life.Shutdown(ctx) }
package lifecycle

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"context"
)

// ErrRunning is returned by Start when Run was called before.
var ErrRunning = errors.New("already running")

// State is one service's lifecycle. Its zero value is not ready: use New.
type State struct {
	name     string
	stop     chan struct{} // closed by Shutdown
	once     sync.Once
	started  atomic.Bool
	finished chan struct{} // closed by Done
}

// New returns the lifecycle of the service called name (for errors).
func New(name string) *State {
	return &State{name: name, stop: make(chan struct{}), finished: make(chan struct{})}
}

// Start marks Run as begun; it fails if Run was called before. A Run that
// started must call Done when it returns.
func (l *State) Start() error {
	if !l.started.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: %w", l.name, ErrRunning)
	}
	return nil
}

// Done marks Run as returned.
func (l *State) Done() { close(l.finished) }

// Stopping reports whether Shutdown was called.
func (l *State) Stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// Stop is closed when Shutdown is called.
func (l *State) Stop() <-chan struct{} { return l.stop }

// Shutdown asks Run to stop and waits until it has returned, or returns
// ctx's error when ctx ends first (Run then goes on finishing on its own).
// Before Run it only makes Stopping true, so that a later Run returns at
// once. It is idempotent.
func (l *State) Shutdown(ctx context.Context) error {
	l.once.Do(func() { close(l.stop) })
	if !l.started.Load() {
		return nil
	}
	select {
	case <-l.finished:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s shutdown: %w", l.name, ctx.Err())
	}
}
