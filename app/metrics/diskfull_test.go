package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testdisk"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// TestDiskFullObjectsEndToEnd guards issue 12 (item 8): the three roles
// run with their object store on a real file system that fills up (a
// tmpfs, filled to the last byte) while events arrive. While it is full,
// /readyz answers 503 with "disk full: objects since …",
// windrow_disk_full{store="objects"} is 1, no window fails and no event is
// dead-lettered; once space is freed the window is loaded with exactly the
// events sent, the gauge is 0 and /readyz 200.
func TestDiskFullObjectsEndToEnd(t *testing.T) {
	disk := testdisk.New(t, 16<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, p, base := runDiskStack(t, ctx, stack.Config{Objects: disk.Dir + "/objects"})
	objects := map[string]string{"store": "objects"}
	testnats.WaitForNil(t, 30*time.Second, func() error {
		body, code, err := get(ctx, base+"/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz: %d %q", code, body)
		}
		return err
	})
	if fams, err := scrape(ctx, base); err != nil || want(fams, []expect{{"windrow_disk_full", objects, 0}}) != nil {
		t.Fatalf("before the disk filled: %v %v, want windrow_disk_full{store=objects} 0", err, want(fams, []expect{{"windrow_disk_full", objects, 0}}))
	}

	disk.Fill(t)
	h0 := time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour)
	const sent = 20
	for i := range sent {
		publishOrder(ctx, t, s, i, h0.Add(time.Duration(i)*time.Minute))
	}
	publishOrder(ctx, t, s, sent, h0.Add(90*time.Minute)) // closes h0 by event time

	testnats.WaitForNil(t, 30*time.Second, func() error {
		body, code, err := get(ctx, base+"/readyz")
		if err == nil && (code != http.StatusServiceUnavailable || !strings.Contains(body, "disk full: objects since ")) {
			err = fmt.Errorf("/readyz on a full disk: %d %q, want 503 with \"disk full: objects since\"", code, body)
		}
		return err
	})
	testnats.WaitForNil(t, 30*time.Second, func() error {
		fams, err := scrape(ctx, base)
		if err != nil {
			return err
		}
		return want(fams, []expect{{"windrow_disk_full", objects, 1}, {"windrow_ready", nil, 0}})
	})
	// Let the collectors fail and restart a few times on the full disk.
	time.Sleep(3 * time.Second)
	w0 := messages.WindowID(h0)
	if st, _, err := s.States.Get(ctx, p.Name, w0); err == nil && st.Status == messages.StatusFailed {
		t.Fatalf("window %s FAILED on a full disk: %s", w0, st.Error)
	}
	if dl, err := inspect.CountDeadLetters(ctx, s.JS, p.Name); err != nil || len(dl.ByReason) != 0 {
		t.Fatalf("dead letters on a full disk: %v (err %v), want none", dl.ByReason, err)
	}

	recoverAfterFree(t, ctx, s, p, disk, w0, sent, base, objects)
	if body, code, err := get(ctx, base+"/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("/readyz after space was freed: %d %q %v, want 200", code, body, err)
	}
}

func publishOrder(ctx context.Context, t *testing.T, s *stack.Stack, i int, at time.Time) {
	t.Helper()
	if _, err := s.JS.Publish(ctx, "orders.eu", fmt.Appendf(nil, `{"id":"e%d","n":%d,"at":%q}`, i, i, at.Format(time.RFC3339))); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullWarehouseEndToEnd guards issue 12 (item 8): the DuckDB
// warehouse lies on a real file system that fills up before a window is
// loaded. Its loads fail with warehouse.ErrDiskFull and are retried, the
// window is not FAILED, /readyz answers 503 with "disk full: warehouse
// since …" and windrow_disk_full{store="warehouse"} is 1; once space is
// freed the window is loaded with exactly the events sent and the gauge is 0.
func TestDiskFullWarehouseEndToEnd(t *testing.T) {
	disk := testdisk.New(t, 64<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, p, base := runDiskStack(t, ctx, stack.Config{Warehouse: disk.Dir + "/warehouse.duckdb"})
	wh := map[string]string{"store": "warehouse"}
	testnats.WaitForNil(t, 30*time.Second, func() error {
		fams, err := scrape(ctx, base)
		if err != nil {
			return err
		}
		return want(fams, []expect{{"windrow_disk_full", wh, 0}, {"windrow_ready", nil, 1}})
	})

	disk.Fill(t)
	h0 := time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour)
	const sent = 20
	for i := range sent {
		publishOrder(ctx, t, s, i, h0.Add(time.Duration(i)*time.Minute))
	}
	publishOrder(ctx, t, s, sent, h0.Add(90*time.Minute)) // closes h0 by event time

	testnats.WaitForNil(t, 60*time.Second, func() error {
		body, code, err := get(ctx, base+"/readyz")
		if err == nil && (code != http.StatusServiceUnavailable || !strings.Contains(body, "disk full: warehouse since ")) {
			err = fmt.Errorf("/readyz on a full disk: %d %q, want 503 with \"disk full: warehouse since\"", code, body)
		}
		return err
	})
	testnats.WaitForNil(t, 30*time.Second, func() error {
		fams, err := scrape(ctx, base)
		if err != nil {
			return err
		}
		return want(fams, []expect{{"windrow_disk_full", wh, 1}, {"windrow_ready", nil, 0}})
	})
	w0 := messages.WindowID(h0)
	st, _, err := s.States.Get(ctx, p.Name, w0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status == messages.StatusFailed || st.Status == messages.StatusLoaded {
		t.Fatalf("window %s is %s on a full warehouse disk (%s), want it waiting COMPACTED", w0, st.Status, st.Error)
	}

	recoverAfterFree(t, ctx, s, p, disk, w0, sent, base, wh)
}

// runDiskStack opens a stack with cfg's stores (embedded NATS, metrics on a
// free port), applies the orders policy and runs it until the test ends; it
// returns the stack, the policy and the metrics server's URL.
func runDiskStack(t *testing.T, ctx context.Context, cfg stack.Config) (*stack.Stack, *windows.Policy, string) {
	t.Helper()
	cfg.DataDir, cfg.Embedded, cfg.NATSPort, cfg.Instance, cfg.Logger, cfg.MetricsAddr = t.TempDir(), true, -1, "t", quietLogger(), "127.0.0.1:0"
	s, err := stack.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p, err := s.ApplyPolicy(ctx, "orders.yaml", []byte(testkit.OrdersPolicy))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return s, p, s.MetricsURL()
}

// recoverAfterFree frees the disk and waits until window w0 is LOADED with
// exactly sent rows in the warehouse, the gauge windrow_disk_full{labels}
// is 0 and the process is ready again.
func recoverAfterFree(t *testing.T, ctx context.Context, s *stack.Stack, p *windows.Policy, disk *testdisk.Disk, w0 string, sent int64, base string, labels map[string]string) {
	t.Helper()
	disk.Free(t)
	testnats.WaitForNil(t, 90*time.Second, func() error {
		st, _, err := s.States.Get(ctx, p.Name, w0)
		if err != nil {
			return err
		}
		if st.Status != messages.StatusLoaded {
			return fmt.Errorf("window %s is %s, want LOADED", w0, st.Status)
		}
		return nil
	})
	counts, err := s.Warehouse.WindowCounts(ctx, p.Load.Table)
	if err != nil {
		t.Fatal(err)
	}
	if counts[w0] != sent {
		t.Errorf("warehouse holds %d rows of window %s, want exactly %d", counts[w0], w0, sent)
	}
	testnats.WaitForNil(t, 30*time.Second, func() error {
		fams, err := scrape(ctx, base)
		if err != nil {
			return err
		}
		return want(fams, []expect{{"windrow_disk_full", labels, 0}, {"windrow_ready", nil, 1}})
	})
}
