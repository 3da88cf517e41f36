package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/services/loader"
	"github.com/windrow/windrow/windows"
)

// readyCache is how long a deep readiness check (consumers, warehouse) is
// reused.
const readyCache = 2 * time.Second

// Ready returns what keeps this process from doing its work, empty when
// nothing does: NATS must be connected, Run must be running, and each role
// must be running with its consumers bound: the collector and compactor of
// every stored policy (consumers windrow_collector_<policy> and
// windrow_results_<policy>), the loader (consumer windrow_loader) with its
// warehouse answering SELECT 1; and no store may have found its disk full
// (DiskFull). The NATS, Run and disk-full checks are live; the rest is read
// at most every 2s (readyCache), bounded by ctx and 2s.
func (s *Stack) Ready(ctx context.Context) []string {
	return append(s.ready(ctx), s.diskFullProblems()...)
}

func (s *Stack) ready(ctx context.Context) []string {
	if !s.opened.Load() {
		return []string{"starting: NATS connection and provisioning not done"}
	}
	var out []string
	if !s.Conn.IsConnected() {
		out = append(out, "nats: not connected ("+strings.ToLower(s.Conn.Status().String())+")")
	}
	if !s.running.Load() {
		out = append(out, "roles: not running")
	}
	if len(out) > 0 || len(s.cfg.Roles) == 0 {
		return out
	}
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if time.Since(s.readyAt) >= readyCache {
		s.readyProblems = s.checkRoles(ctx)
		s.readyAt = time.Now()
	}
	return slices.Clone(s.readyProblems)
}

// checkRoles is the deep part of Ready.
func (s *Stack) checkRoles(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out []string
	var policies []*windows.Policy
	if slices.Contains(s.cfg.Roles, RoleCollector) || slices.Contains(s.cfg.Roles, RoleCompactor) {
		var err error
		if policies, err = s.Policies.List(ctx); err != nil {
			return []string{fmt.Sprintf("policies: %v", err)}
		}
	}
	consumer := func(what, stream, name string) {
		if _, err := s.JS.Consumer(ctx, stream, name); err != nil {
			out = append(out, fmt.Sprintf("%s: consumer %s on %s: %v", what, name, stream, err))
		}
	}
	for _, role := range s.cfg.Roles {
		switch role {
		case RoleCollector:
			for _, p := range policies {
				s.mu.Lock()
				_, running := s.collectors[p.Name]
				s.mu.Unlock()
				what := "collector " + p.Name
				if !running {
					out = append(out, what+": not running")
					continue
				}
				consumer(what, p.Source.Stream, messages.CollectorConsumer(p.Name))
			}
		case RoleCompactor:
			for _, p := range policies {
				s.mu.Lock()
				_, running := s.compactors[p.Name]
				s.mu.Unlock()
				what := "compactor " + p.Name
				if !running {
					out = append(out, what+": not running")
					continue
				}
				consumer(what, messages.StreamResults, messages.ResultsConsumer(p.Name))
			}
		case RoleLoader:
			s.mu.Lock()
			running := s.loaderRunning
			s.mu.Unlock()
			if !running {
				out = append(out, "loader: not running")
				continue
			}
			consumer("loader", messages.StreamLoad, loader.DurablePrefix)
			if err := s.pingWarehouse(ctx); err != nil {
				out = append(out, fmt.Sprintf("loader: warehouse %s: %v", s.Warehouse, err))
			}
		}
	}
	return out
}

// pingWarehouse runs SELECT 1 on the warehouse. The file stays open for the
// warehouse's idle close (2s) after it, as after a load.
func (s *Stack) pingWarehouse(ctx context.Context) error {
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		return err
	}
	defer release()
	var one int
	return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}
