package stack

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/app/policyrun"
	"github.com/windrow/windrow/services/collector"
	"github.com/windrow/windrow/services/compactor"
	"github.com/windrow/windrow/services/loader"
	"github.com/windrow/windrow/windows"
)

// Run runs the configured roles until ctx is done, or until one fails (then
// it stops the others and returns that error). Each role stops gracefully
// (see supervise).
func (s *Stack) Run(ctx context.Context) error {
	var l *loader.Service
	if slices.Contains(s.cfg.Roles, RoleLoader) {
		var err error
		if l, err = s.newLoader(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // one role failing stops the others
	s.running.Store(true)
	defer s.running.Store(false)
	var wg sync.WaitGroup
	errs := make(chan error, len(s.cfg.Roles))
	run := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	for _, role := range s.cfg.Roles {
		switch role {
		case RoleCollector:
			run(role, func(ctx context.Context) error {
				return policyrun.Run(ctx, s.Policies, s.Log, s.runCollector)
			})
		case RoleCompactor:
			run(role, func(ctx context.Context) error {
				return policyrun.Run(ctx, s.Policies, s.Log, s.runCompactor)
			})
		case RoleLoader:
			run(role, func(ctx context.Context) error {
				s.setLoaderRunning(true)
				defer s.setLoaderRunning(false)
				return supervise(ctx, RoleLoader, l, s.Log)
			})
		}
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
		cancel()
	}
	wg.Wait()
	return err
}

// newLoader builds the loader role's service over the stack's warehouse.
func (s *Stack) newLoader() (*loader.Service, error) {
	var wh warehouse.Warehouse = s.Warehouse
	if s.cfg.WrapWarehouse != nil {
		wh = s.cfg.WrapWarehouse(wh)
	}
	wh = diskFullWarehouse{Warehouse: wh, since: &s.warehouseFull}
	lcfg := loader.Config{Tracing: s.tracing[RoleLoader], JS: s.JS, Warehouse: wh, Objects: s.Store, Policies: s.Policies, Instance: s.cfg.Instance + "/loader", Logger: s.Log, AckWait: s.cfg.AckWait, Workers: s.cfg.LoaderWorkers}
	if s.Metrics != nil {
		lcfg.OnLoad = s.Metrics.ObserveLoad
	}
	l, err := loader.New(lcfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.loader = l
	s.mu.Unlock()
	return l, nil
}

func (s *Stack) runCollector(ctx context.Context, p *windows.Policy) error {
	c, err := collector.New(collector.Config{Tracing: s.tracing[RoleCollector], JS: s.JS, Store: s.Store, States: s.States, Watermarks: s.Watermarks, Policy: p, Instance: s.cfg.Instance + "/collector", Logger: s.Log, AckWait: s.cfg.AckWait, Replicas: s.cfg.NATSReplicas})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.collectors[p.Name] = c
	if s.collectorVersions == nil {
		s.collectorVersions = map[string]uint64{}
	}
	s.collectorVersions[p.Name] = p.Version
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.collectors[p.Name] == c {
			delete(s.collectors, p.Name)
			delete(s.collectorVersions, p.Name)
		}
		s.collectorsDone[p.Name] = addStats(s.collectorsDone[p.Name], c.Stats())
	}()
	return supervise(ctx, RoleCollector+" "+p.Name, c, s.Log)
}

func (s *Stack) runCompactor(ctx context.Context, p *windows.Policy) error {
	c, err := compactor.New(compactor.Config{Tracing: s.tracing[RoleCompactor], JS: s.JS, Store: s.Store, States: s.States, Watermarks: s.Watermarks, Policy: p, Instance: s.cfg.Instance + "/compactor", Logger: s.Log, Now: s.cfg.Clock})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.compactors[p.Name] = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.compactors[p.Name] == c {
			delete(s.compactors, p.Name)
		}
		s.compactorsDone[p.Name] = addStats(s.compactorsDone[p.Name], c.Stats())
	}()
	return supervise(ctx, RoleCompactor+" "+p.Name, c, s.Log)
}

// CollectorStats returns the counters of this process's collectors of a
// policy since Open, its restarted workers' included; false if no collector
// of the policy ran.
func (s *Stack) CollectorStats(policy string) (collector.Stats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, done := s.collectorsDone[policy]
	c, ok := s.collectors[policy]
	if ok {
		st = addStats(st, c.Stats())
	}
	return st, ok || done
}

// CollectorVersion returns the policy version this process's collector of a
// policy runs; false when none runs.
func (s *Stack) CollectorVersion(policy string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.collectorVersions[policy]
	return v, ok
}

func (s *Stack) setLoaderRunning(v bool) {
	s.mu.Lock()
	s.loaderRunning = v
	s.mu.Unlock()
}
