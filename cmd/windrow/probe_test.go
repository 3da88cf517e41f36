package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/windrow/windrow/app/metrics"
)

// TestProbe: windrow probe succeeds on a ready server's /healthz and
// /readyz, fails on a not-ready /readyz and on an address nobody serves.
func TestProbe(t *testing.T) {
	var notReady atomic.Bool
	srv, err := metrics.Listen(metrics.ServerConfig{Addr: "127.0.0.1:0", Ready: func(context.Context) []string {
		if !notReady.Load() {
			return nil
		}
		return []string{"nats: not connected"}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	ctx := t.Context()
	for _, path := range []string{"healthz", "readyz"} {
		if err := runProbe(ctx, []string{"--addr", srv.Addr(), path}); err != nil {
			t.Errorf("probe %s: %v", path, err)
		}
	}
	notReady.Store(true)
	if err := runProbe(ctx, []string{"--addr", srv.Addr(), "readyz"}); err == nil || !strings.Contains(err.Error(), "nats: not connected") {
		t.Errorf("probe readyz of a not-ready server: %v, want its reason", err)
	}
	if err := runProbe(ctx, []string{"--addr", "127.0.0.1:1", "healthz"}); err == nil {
		t.Error("probe of a closed port: no error")
	}
	if err := runProbe(ctx, []string{"metrics"}); err == nil {
		t.Error("probe metrics: no error, want usage")
	}
}
