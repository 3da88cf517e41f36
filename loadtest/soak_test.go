//go:build soak

package loadtest

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// The soak test is not in `go test ./...` nor in .ci/run: it runs for
// -soak.for (30 minutes by default) with
//
//	go test -tags soak ./loadtest -run TestSoak -timeout 2h -v -soak.for 30m
var (
	soakFor  = flag.Duration("soak.for", 30*time.Minute, "how long the soak test publishes")
	soakRate = flag.Int("soak.rate", 400, "events per second, per policy")
)

const soakPolicy = `name: %s
source: {stream: SOAK, subjects: [soak.%s.>]}
` + SalesSchemaYAML + `window: {size: 1m, max_out_of_order: 5s, idle_timeout: 5s, late: dlq, retain: %s}
segment: {max_age: 1s}
load: {table: %s, mode: %s}
`

// soakSample is one reading of the process and of the pipeline's state.
type soakSample struct {
	at         time.Duration
	rssMiB     float64
	fds        int
	goroutines int
	kvKeys     int
	listMs     float64 // time to list both policies' window states
	loaded     int
}

// TestSoak: one-minute windows, two policies (append and replace), steady
// live events for -soak.for; every 30 s the test process's RSS, open files
// and goroutines, the window states in KV and the time to list them are
// sampled. They must stay flat — window states are retired after
// window.retain — and at the end every event is loaded once or
// dead-lettered: reconcile is exact for both policies.
func TestSoak(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), *soakFor+15*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	const retain = "4m"
	pa := applyPolicy(t, ctx, s, fmt.Sprintf(soakPolicy, "soak_a", "a", retain, "soak_a", "append"))
	pb := applyPolicy(t, ctx, s, fmt.Sprintf(soakPolicy, "soak_b", "b", retain, "soak_b", "replace"))
	if _, err := s.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "SOAK", Subjects: []string{"soak.>"}}); err != nil {
		t.Fatal(err)
	}
	stopRoles := runRoles(t, ctx, s)
	defer stopRoles()

	var published [2]atomic.Int64
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan error, 1)
	go func() { pubDone <- soakPublish(pubCtx, s.JS, *soakRate, &published) }()

	kv, err := s.JS.KeyValue(ctx, messages.BucketWindows)
	if err != nil {
		t.Fatal(err)
	}
	var samples []soakSample
	start := time.Now()
	sample := func() {
		sm := soakSample{at: time.Since(start).Round(time.Second), rssMiB: rssMiB(t), fds: openFiles(t), goroutines: runtime.NumGoroutine()}
		if keys, err := kv.ListKeys(ctx); err == nil {
			for range keys.Keys() {
				sm.kvKeys++
			}
		}
		t0 := time.Now()
		for _, p := range []string{pa.Name, pb.Name} {
			ws, err := inspect.Windows(ctx, s.States, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range ws {
				if w.Status == messages.StatusLoaded {
					sm.loaded++
				}
			}
		}
		sm.listMs = float64(time.Since(t0).Microseconds()) / 1000
		samples = append(samples, sm)
		t.Logf("t=%-6s rss=%6.1f MiB fds=%4d goroutines=%5d kv_keys=%4d list=%6.1f ms loaded_windows=%d published=%d/%d",
			sm.at, sm.rssMiB, sm.fds, sm.goroutines, sm.kvKeys, sm.listMs, sm.loaded, published[0].Load(), published[1].Load())
	}
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	end := time.After(*soakFor)
loop:
	for {
		select {
		case <-tick.C:
			sample()
		case <-end:
			break loop
		case err := <-pubDone:
			t.Fatalf("publisher stopped: %v", err)
		}
	}
	stopPub()
	if err := <-pubDone; err != nil && ctx.Err() == nil {
		t.Fatalf("publisher: %v", err)
	}
	// Every window closes (idle rule) and loads; then reconcile.
	for _, p := range []string{pa.Name, pb.Name} {
		waitFor(t, 5*time.Minute, "every window of "+p+" loaded", func() bool {
			ws, err := inspect.Windows(ctx, s.States, p)
			if err != nil {
				return false
			}
			for _, w := range ws {
				if w.Status != messages.StatusLoaded {
					return false
				}
			}
			return true
		})
	}
	sample()
	for i, pol := range []*windows.Policy{pa, pb} {
		r, err := inspect.Reconcile(ctx, s.JS, s.States, pol, s.Warehouse)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || r.Published != published[i].Load() {
			t.Errorf("%s: reconciliation %s; problems %v; published %d by the test", pol.Name, r.Summary(), r.Problems, published[i].Load())
		}
	}
	checkFlat(t, samples)
}

// soakPublish publishes live sales events for policies a and b at rate
// events per second each, until ctx ends.
func soakPublish(ctx context.Context, js jetstream.JetStream, rate int, published *[2]atomic.Int64) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	per := max(1, rate/10)
	seq := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := time.Now().UTC()
		for i, pol := range []string{"a", "b"} {
			for j := range per {
				seq++
				at := now.Add(-time.Duration(j%1000) * time.Millisecond)
				data := fmt.Sprintf(`{"store_id":"store-%03d","sale_id":"s-%d","quantity":%d,"amount":%d.25,"sold_at":%q}`,
					seq%20, seq, 1+seq%5, seq%100, at.Format(time.RFC3339Nano))
				if _, err := js.PublishAsync(fmt.Sprintf("soak.%s.store-%03d", pol, seq%20), []byte(data), jetstream.WithMsgID(fmt.Sprintf("soak-%d", seq))); err != nil {
					return err
				}
				published[i].Add(1)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			return fmt.Errorf("publishes not acknowledged within 30s")
		}
	}
}

// checkFlat compares the last third of the samples with the first third
// after a warm-up: nothing that should be bounded may keep growing.
func checkFlat(t *testing.T, samples []soakSample) {
	t.Helper()
	if len(samples) < 9 {
		t.Logf("%d samples: too few to judge flatness", len(samples))
		return
	}
	warm := samples[len(samples)/6:]
	third := len(warm) / 3
	first, last := warm[:third], warm[len(warm)-third:]
	avg := func(ss []soakSample, f func(soakSample) float64) float64 {
		var sum float64
		for _, s := range ss {
			sum += f(s)
		}
		return sum / float64(len(ss))
	}
	for _, c := range []struct {
		name  string
		f     func(soakSample) float64
		slack float64 // allowed growth: factor, and absolute
		abs   float64
	}{
		{"rss MiB", func(s soakSample) float64 { return s.rssMiB }, 1.5, 64},
		{"open files", func(s soakSample) float64 { return float64(s.fds) }, 1.2, 16},
		{"goroutines", func(s soakSample) float64 { return float64(s.goroutines) }, 1.2, 32},
		{"KV window states", func(s soakSample) float64 { return float64(s.kvKeys) }, 1.2, 8},
	} {
		a, b := avg(first, c.f), avg(last, c.f)
		t.Logf("%s: first third %.1f, last third %.1f", c.name, a, b)
		if b > a*c.slack+c.abs {
			t.Errorf("%s grew from %.1f to %.1f over the run", c.name, a, b)
		}
	}
	a, b := avg(first, func(s soakSample) float64 { return s.listMs }), avg(last, func(s soakSample) float64 { return s.listMs })
	t.Logf("state list time: first third %.1f ms, last third %.1f ms (reported, not asserted)", a, b)
}

// rssMiB is the test process's resident set size.
func rssMiB(t *testing.T) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// openFiles counts the test process's open file descriptors.
func openFiles(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
