package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/windrow/windrow/app/metrics"
	"github.com/windrow/windrow/services/collector"
	"github.com/windrow/windrow/services/compactor"
	"github.com/windrow/windrow/services/loader"
)

// fakeProcess serves fixed counters.
type fakeProcess struct{}

func (fakeProcess) CollectorStats() map[string]collector.Stats {
	return map[string]collector.Stats{"p": {Received: 7, Staged: 5, DeadLettered: 2, Segments: 1, SegmentBytes: 1234}}
}
func (fakeProcess) CompactorStats() map[string]compactor.Stats {
	return map[string]compactor.Stats{"p": {Sealed: 1, Compacted: 1, Results: 1}}
}
func (fakeProcess) LoaderStats() (loader.Stats, bool) {
	return loader.Stats{Loaded: 3, Duplicates: 1, Failed: 1, Rows: 5}, true
}

// TestServer: /healthz is always 200; /readyz lists what Ready reports with
// 503 and says ok with 200 once it reports nothing; /metrics serves the
// process counters and the load histogram; a second server on the same
// address fails with a ListenError; Shutdown stops it.
func TestServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var problems atomic.Pointer[[]string]
	problems.Store(&[]string{"nats: not connected", "loader: not running"})
	ready := func(ctx context.Context) []string {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("readiness check without a deadline")
		}
		return *problems.Load()
	}
	m, err := metrics.New(metrics.Options{Instance: "i", Roles: []string{"loader"}, Process: fakeProcess{}, Ready: ready, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctx)
	m.ObserveLoad("p", "loaded", 300*time.Millisecond, 5)
	m.ObserveLoad("p", "error", 2*time.Second, 0)
	srv, err := metrics.Listen(metrics.ServerConfig{Addr: "127.0.0.1:0", Metrics: m.Handler(), Ready: ready, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	base := srv.URL()

	if body, code, err := get(ctx, base+"/healthz"); err != nil || code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q %v", code, body, err)
	}
	body, code, err := get(ctx, base+"/readyz")
	if err != nil || code != http.StatusServiceUnavailable || body != "not ready:\nnats: not connected\nloader: not running\n" {
		t.Errorf("/readyz: %d %q %v, want 503 with the problems", code, body, err)
	}
	fams, err := scrape(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	pol := map[string]string{"policy": "p"}
	if err := want(fams, []expect{
		{"windrow_collector_events_received_total", pol, 7},
		{"windrow_collector_events_staged_total", pol, 5},
		{"windrow_collector_events_dead_lettered_total", pol, 2},
		{"windrow_collector_segment_bytes_total", pol, 1234},
		{"windrow_compactor_windows_sealed_total", pol, 1},
		{"windrow_loader_commands_total", map[string]string{"status": "loaded"}, 3},
		{"windrow_loader_commands_total", map[string]string{"status": "duplicate"}, 1},
		{"windrow_loader_commands_total", map[string]string{"status": "failed"}, 1},
		{"windrow_loader_rows_total", nil, 5},
		{"windrow_loader_load_duration_seconds", map[string]string{"policy": "p", "status": "loaded"}, 1},
		{"windrow_loader_load_duration_seconds", map[string]string{"policy": "p", "status": "error"}, 1},
		{"windrow_ready", nil, 0},
	}); err != nil {
		t.Error(err)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("Go runtime metrics missing")
	}
	if _, ok := fams["windrow_windows"]; ok {
		t.Error("cluster gauges exported without a Cluster")
	}

	problems.Store(&[]string{})
	if body, code, err := get(ctx, base+"/readyz"); err != nil || code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz when ready: %d %q %v", code, body, err)
	}

	_, err = metrics.Listen(metrics.ServerConfig{Addr: srv.Addr(), Logger: quietLogger()})
	var le *metrics.ListenError
	if !errors.As(err, &le) || le.Addr != srv.Addr() || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Listen on %s: %v, want a ListenError (address in use)", srv.Addr(), err)
	}

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(ctx, base+"/healthz"); err == nil {
		t.Error("/healthz answers after Shutdown")
	}
}

func TestDisabled(t *testing.T) {
	for addr, off := range map[string]bool{"": true, "off": true, " OFF ": true, "127.0.0.1:9464": false, ":0": false} {
		if metrics.Disabled(addr) != off {
			t.Errorf("Disabled(%q) = %v, want %v", addr, !off, off)
		}
	}
	if !strings.HasPrefix(metrics.DefaultAddr, "127.0.0.1:") {
		t.Errorf("DefaultAddr %s is not loopback", metrics.DefaultAddr)
	}
}
