package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/windrow/windrow/app/metrics"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
)

// e2ePolicy: hourly windows closed by event time only (idle_timeout 1h),
// an SLA of 1h after the window end.
const e2ePolicy = testkit.OrdersPolicy + "sla: {deadline: 1h}\n"

// TestMetricsEndToEnd runs the three roles with the metrics server on a free
// loopback port, publishes good, malformed and window-closing events, and
// checks what /metrics, /healthz and /readyz say before, during and after:
// the counters equal what was sent, the lag goes to 0, the loaded window and
// the open one are counted with their SLA, and readiness follows the roles
// and the NATS connection.
func TestMetricsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), Embedded: true, NATSPort: -1, Instance: "t",
		Logger: quietLogger(), MetricsAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := s.MetricsURL()
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("metrics URL %q, want a loopback URL", base)
	}
	p, err := s.ApplyPolicy(ctx, "orders.yaml", []byte(e2ePolicy))
	if err != nil {
		t.Fatal(err)
	}

	// Before Run: alive, not ready.
	if body, code, err := get(ctx, base+"/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz before run: %d %q %v, want 200", code, body, err)
	}
	if body, code, err := get(ctx, base+"/readyz"); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "roles: not running") {
		t.Fatalf("/readyz before run: %d %q %v, want 503 naming the roles", code, body, err)
	}

	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	stopped := false
	stopRun := func() {
		if !stopped {
			stopped = true
			stop()
			if err := <-runErr; err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}
	defer stopRun()

	testnats.WaitForNil(t, 30*time.Second, func() error {
		body, code, err := get(ctx, base+"/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz: %d %q", code, body)
		}
		return err
	})

	// Window h0: 20 good events and 3 malformed ones; one event at h0+1h30
	// moves the watermark past h0's end: h0 is sealed, compacted and loaded,
	// h0+1h stays open. Both windows are 2 days old: past their SLA.
	h0 := time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour)
	const good = 20
	var events [][]byte
	for i := range good {
		events = append(events, fmt.Appendf(nil, `{"id":"e%d","n":%d,"at":%q}`, i, i, h0.Add(time.Duration(i)*time.Minute).Format(time.RFC3339)))
	}
	bad := [][]byte{
		[]byte(`not json`),
		fmt.Appendf(nil, `{"id":"w","n":"seven","at":%q}`, h0.Add(30*time.Minute).Format(time.RFC3339)),
		fmt.Appendf(nil, `{"id":"m","at":%q}`, h0.Add(31*time.Minute).Format(time.RFC3339)),
	}
	events = append(events, bad...)
	events = append(events, fmt.Appendf(nil, `{"id":"late","n":1,"at":%q}`, h0.Add(90*time.Minute).Format(time.RFC3339)))
	for _, e := range events {
		if _, err := s.JS.Publish(ctx, "orders.eu", e); err != nil {
			t.Fatal(err)
		}
	}
	w0, w1 := messages.WindowID(h0), messages.WindowID(h0.Add(time.Hour))
	var batches int
	testnats.WaitForNil(t, 30*time.Second, func() error {
		st, _, err := s.States.Get(ctx, p.Name, w0)
		if err != nil {
			return err
		}
		if st.Status != messages.StatusLoaded {
			return fmt.Errorf("window %s is %s, want LOADED", w0, st.Status)
		}
		batches = st.BatchCount
		return nil
	})
	if st, _, err := s.States.Get(ctx, p.Name, w1); err != nil || st.Status != messages.StatusOpen {
		t.Fatalf("window %s: %+v, %v; want OPEN", w1, st, err)
	}

	pol := map[string]string{"policy": p.Name}
	ps := func(status string) map[string]string { return map[string]string{"policy": p.Name, "status": status} }
	st := func(status string) map[string]string { return map[string]string{"status": status} }
	series := []expect{
		{"windrow_collector_events_received_total", pol, float64(len(events))},
		{"windrow_collector_events_staged_total", pol, good + 1},
		{"windrow_collector_events_dead_lettered_total", pol, float64(len(bad))},
		{"windrow_collector_events_late_dropped_total", pol, 0},
		{"windrow_compactor_windows_sealed_total", pol, 1},
		{"windrow_compactor_windows_compacted_total", pol, 1},
		{"windrow_compactor_results_applied_total", pol, float64(batches)},
		{"windrow_compactor_results_terminated_total", pol, 0},
		{"windrow_loader_commands_total", st("loaded"), float64(batches)},
		{"windrow_loader_commands_total", st("duplicate"), 0},
		{"windrow_loader_commands_total", st("failed"), 0},
		{"windrow_loader_rows_total", nil, good},
		{"windrow_loader_load_duration_seconds", ps("loaded"), float64(batches)},
		{"windrow_collector_consumer_lag", pol, 0},
		{"windrow_source_expired", pol, 0},
		{"windrow_windows", ps("OPEN"), 1},
		{"windrow_windows", ps("SEALED"), 0},
		{"windrow_windows", ps("COMPACTED"), 0},
		{"windrow_windows", ps("LOADED"), 1},
		{"windrow_windows", ps("FAILED"), 0},
		{"windrow_windows_past_sla", pol, 1},   // h0+1h: open, due long ago
		{"windrow_windows_sla_missed", pol, 2}, // and h0, loaded after its due time
		{"windrow_batches_written", pol, float64(batches)},
		{"windrow_batches_loaded", pol, float64(batches)},
		{"windrow_ready", nil, 1},
	}
	// The cluster gauges are refreshed every 5s: wait for one refresh that
	// saw the end state.
	var fams map[string]*dto.MetricFamily
	testnats.WaitForNil(t, 30*time.Second, func() error {
		var err error
		if fams, err = scrape(ctx, base); err != nil {
			return err
		}
		return want(fams, series)
	})
	if n, _ := value(fams, "windrow_collector_segments_written_total", pol); n < 1 {
		t.Errorf("segments written: %g, want >= 1", n)
	}
	if n, _ := value(fams, "windrow_collector_segment_bytes_total", pol); n < 1 {
		t.Errorf("segment bytes: %g, want > 0", n)
	}
	// The watermark is h0+1h29 (newest event - max_out_of_order): ~47.5h behind.
	if lag, ok := value(fams, "windrow_watermark_lag_seconds", pol); !ok || lag < 46*3600 || lag > 48*3600 {
		t.Errorf("watermark lag %gs (%v), want about 47.5h", lag, ok)
	}
	// It was written during this test: the pipeline keeps up, however old
	// the data (the lag above) is.
	if stalled, ok := value(fams, "windrow_watermark_stalled_seconds", pol); !ok || stalled > 600 {
		t.Errorf("watermark stalled %gs (%v), want a watermark written during the test", stalled, ok)
	}
	for _, name := range metrics.Names {
		if _, ok := fams[name]; !ok && name != "windrow_loader_load_duration_seconds" {
			t.Errorf("metric %s not exported", name)
		}
	}
	if _, ok := fams["target_info"]; !ok {
		t.Error("target_info not exported")
	}

	// NATS goes away: not ready, still alive.
	s.Server.Shutdown()
	testnats.WaitForNil(t, 30*time.Second, func() error {
		body, code, err := get(ctx, base+"/readyz")
		if err == nil && (code != http.StatusServiceUnavailable || !strings.Contains(body, "nats: not connected")) {
			err = fmt.Errorf("/readyz after the NATS shutdown: %d %q, want 503 naming nats", code, body)
		}
		return err
	})
	if body, code, err := get(ctx, base+"/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz without NATS: %d %q %v, want 200", code, body, err)
	}
	stopRun()
	if err := s.Close(); err != nil {
		t.Logf("close without NATS: %v", err)
	}
	// Closed: the server is gone.
	if _, _, err := get(ctx, base+"/healthz"); err == nil {
		t.Error("/healthz answers after Close")
	}
}

// TestMetricsAddrTaken: a taken metrics port fails Open with a ListenError
// naming the address, before NATS starts.
func TestMetricsAddrTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	s, err := stack.Open(ctx, stack.Config{DataDir: dir, Embedded: true, NATSPort: -1, Logger: quietLogger(), MetricsAddr: ln.Addr().String()})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a taken metrics port")
	}
	var le *metrics.ListenError
	if !errors.As(err, &le) || le.Addr != ln.Addr().String() || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("error %v (%T), want a ListenError naming %s", err, err, ln.Addr())
	}
}

// TestMetricsOff: "off" starts no server.
func TestMetricsOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), Embedded: true, NATSPort: -1, Roles: []string{}, Logger: quietLogger(), MetricsAddr: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.MetricsURL() != "" || s.Metrics != nil {
		t.Errorf("metrics on with MetricsAddr off: %q", s.MetricsURL())
	}
}
