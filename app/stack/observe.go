package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/app/metrics"
	"github.com/windrow/windrow/services/collector"
	"github.com/windrow/windrow/services/compactor"
	"github.com/windrow/windrow/services/loader"
)

// MetricsURL is the base URL of the metrics server (http://host:port), or
// "" when it is off.
func (s *Stack) MetricsURL() string {
	if s.metricsServer == nil {
		return ""
	}
	return s.metricsServer.URL()
}

// startMetrics builds the instruments and starts the metrics server.
func (s *Stack) startMetrics() error {
	m, err := metrics.New(metrics.Options{Instance: s.cfg.Instance, Roles: s.cfg.Roles, Process: stackProcess{s}, Ready: s.Ready, DiskFull: s.DiskFull, Logger: s.Log})
	if err != nil {
		return err
	}
	s.Metrics = m
	srv, err := metrics.Listen(metrics.ServerConfig{Addr: s.cfg.MetricsAddr, Metrics: m.Handler(), Ready: s.Ready, Logger: s.Log})
	if err != nil {
		return err
	}
	s.metricsServer = srv
	return nil
}

// startCluster keeps the cluster gauges (lag, watermark, windows, SLA) of
// every policy. Only processes running the compactor role export them, so
// that a deployment of many collectors does not multiply the NATS reads.
func (s *Stack) startCluster(windowsKV jetstream.KeyValue) error {
	c, err := metrics.NewCluster(metrics.ClusterConfig{JS: s.JS, Policies: s.Policies, Watermarks: s.Watermarks, Windows: windowsKV, Logger: s.Log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopCluster, s.clusterDone = cancel, make(chan struct{})
	go func() {
		defer close(s.clusterDone)
		c.Run(ctx)
	}()
	s.Metrics.SetCluster(c)
	return nil
}

// stopMetrics shuts the metrics server down (requests in flight finish,
// within 5s), then the cluster view and the meter provider.
func (s *Stack) stopMetrics() error {
	var errs []error
	if s.metricsServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.metricsServer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics server: %w", err))
		}
		cancel()
		s.metricsServer = nil
	}
	if s.stopCluster != nil {
		s.stopCluster()
		<-s.clusterDone
		s.stopCluster = nil
	}
	if s.Metrics != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Metrics.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

// stackProcess gives the metrics the counters of the stack's roles.
type stackProcess struct{ s *Stack }

func (p stackProcess) CollectorStats() map[string]collector.Stats {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return statsByPolicy(p.s.collectorsDone, p.s.collectors)
}

func (p stackProcess) CompactorStats() map[string]compactor.Stats {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return statsByPolicy(p.s.compactorsDone, p.s.compactors)
}

// statsByPolicy sums, per policy, the counters of the workers that stopped
// (done) and of those running.
func statsByPolicy[T any, W interface{ Stats() T }](done map[string]T, running map[string]W) map[string]T {
	out := make(map[string]T, len(done)+len(running))
	maps.Copy(out, done)
	for name, w := range running {
		out[name] = addStats(out[name], w.Stats())
	}
	return out
}

func (p stackProcess) LoaderStats() (loader.Stats, bool) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loader == nil {
		return loader.Stats{}, false
	}
	return s.loader.Stats(), true
}
