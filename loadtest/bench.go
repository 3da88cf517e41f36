package loadtest

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
)

// SalesSchemaYAML is the schema and time sections of a policy over the events
// Sales generates; the benchmark's, the tests' and the chaos run's policies
// share it.
const SalesSchemaYAML = `schema:
  fields:
    - {name: store_id, type: string, required: true}
    - {name: sale_id, type: string, required: true}
    - {name: sku, type: string}
    - {name: quantity, type: int64, required: true}
    - {name: amount, type: float64, required: true}
    - {name: currency, type: string}
    - {name: paid, type: bool}
    - {name: sold_at, type: timestamp, required: true}
    - {name: business_day, type: date}
time: {field: sold_at}
`

// BenchPolicy is the policy of the end-to-end benchmark: hourly windows over
// the sales schema, idle close after 1s.
const BenchPolicy = `name: bench_sales
source: {stream: BENCH, subjects: [bench.sales.>]}
` + SalesSchemaYAML + `window: {size: 1h, max_out_of_order: 5m, allowed_lateness: 0s, idle_timeout: 1s}
segment: {max_rows: 100000, max_bytes: 64MiB, max_age: 5s}
output: {sort_by: [store_id, sold_at]}
load: {table: bench_sales}
`

// BenchConfig sizes a benchmark run.
type BenchConfig struct {
	DataDir string
	// Objects and Warehouse, if set, are the object store and warehouse
	// URLs (stack.Config); default the data directory's. The warehouse
	// should hold no bench_sales table of an earlier run (a fresh schema:
	// postgres://…?search_path=NAME).
	Objects, Warehouse string
	Events             int
	Windows            int // hourly windows the events spread over
	Seed               uint64
	Out                io.Writer
	Logger             *slog.Logger // service logs; default slog.Default()
	// OnHalfway, if set, is called once when half of the windows are loaded
	// (for a heap profile of the running pipeline).
	OnHalfway func()
	// OnStart, if set, is called when the services start, after the fill
	// (for a CPU profile of the pipeline alone).
	OnStart func()
}

// BenchResult is what a run measured.
type BenchResult struct {
	Events        int
	Windows       int
	Publish       time.Duration // filling the stream (not part of the pipeline rate)
	Pipeline      time.Duration // from starting the services until every window is loaded
	EventsPerSec  float64
	PeakRSSBytes  int64
	PeakGoBytes   int64 // peak memory the Go runtime obtained from the OS (heap, stacks, …) during the pipeline
	LoadedRows    int64
	IdleCloseWait time.Duration // part of Pipeline spent waiting for the idle rule to close the last window
}

// RunBench fills a stream, then runs the whole pipeline in this process and
// measures it until every window is loaded.
func RunBench(ctx context.Context, cfg BenchConfig) (*BenchResult, error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	s, err := stack.Open(ctx, stack.Config{DataDir: cfg.DataDir, Embedded: true, NATSPort: -1, Logger: cfg.Logger,
		Objects: cfg.Objects, Warehouse: cfg.Warehouse})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	p, err := s.ApplyPolicy(ctx, "bench_sales.yaml", []byte(BenchPolicy))
	if err != nil {
		return nil, err
	}
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	gen := Sales{Seed: cfg.Seed, Events: cfg.Events, Start: start, Span: time.Duration(cfg.Windows) * time.Hour, Jitter: 2 * time.Minute, SubjectPrefix: "bench.sales"}
	fmt.Fprintf(cfg.Out, "filling stream BENCH with %d events over %d hourly windows...\n", cfg.Events, cfg.Windows)
	t0 := time.Now()
	nextEvent, stopGen := iter.Pull(gen.All())
	// A publish that fails is sent again after later events: MaxOutOfOrder
	// keeps it within the policy's max_out_of_order of them, so that it is
	// not late when it arrives.
	var last Event // the event next returned last; EventTime asks for it
	pub := &Publisher{JS: s.JS, MaxOutOfOrder: p.Window.MaxOutOfOrder.D(), EventTime: func(int) time.Time { return last.Time }}
	err = pub.Publish(ctx, cfg.Events, func(i int) (string, []byte, string) {
		last, _ = nextEvent()
		return last.Subject, last.Data, fmt.Sprintf("bench-%d-%d", cfg.Seed, i)
	})
	stopGen()
	if err != nil {
		return nil, err
	}
	// The fill is the whole input: the last window closes once it is staged.
	if err := pub.Flush(ctx, p.Name); err != nil {
		return nil, err
	}
	res := &BenchResult{Events: cfg.Events, Windows: cfg.Windows, Publish: time.Since(t0)}
	fmt.Fprintf(cfg.Out, "filled in %s (%.0f events/s); starting collector, compactor and loader...\n", res.Publish.Round(time.Millisecond), float64(cfg.Events)/res.Publish.Seconds())
	// Peak RSS is measured for the pipeline alone, not the fill.
	runtime.GC()
	debug.FreeOSMemory()
	ResetPeakRSS()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	if cfg.OnStart != nil {
		cfg.OnStart()
	}
	t1 := time.Now()
	go func() { runErr <- s.Run(runCtx) }()
	var drained time.Time
	goMem := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	for {
		metrics.Read(goMem) // no stop-the-world, unlike runtime.ReadMemStats
		res.PeakGoBytes = max(res.PeakGoBytes, int64(goMem[0].Value.Uint64()-goMem[1].Value.Uint64()))
		ws, err := inspect.Windows(ctx, s.States, p.Name)
		if err != nil {
			return nil, err
		}
		loaded := 0
		var rows int64
		for _, w := range ws {
			if w.Status == messages.StatusLoaded {
				loaded++
				rows += w.LoadedRows
			}
			if w.Status == messages.StatusFailed {
				return nil, fmt.Errorf("window %s failed: %s", w.ID(), w.Error)
			}
		}
		if drained.IsZero() {
			if lag, err := inspect.CollectorLag(ctx, s.JS, p.Source.Stream, p.Name); err == nil && lag.Pending == 0 && lag.AckPending == 0 && lag.AckFloor > 0 {
				drained = time.Now()
			}
		}
		if cfg.OnHalfway != nil && loaded >= cfg.Windows/2 {
			cfg.OnHalfway()
			cfg.OnHalfway = nil
		}
		if loaded == cfg.Windows && len(ws) == cfg.Windows {
			res.Pipeline = time.Since(t1)
			res.LoadedRows = rows
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-runErr:
			return nil, fmt.Errorf("pipeline stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !drained.IsZero() {
		// The last window closes by the idle rule: idle_timeout after the
		// collectors drained the stream. That wait is policy, not work.
		res.IdleCloseWait = p.Window.IdleTimeout.D()
	}
	res.EventsPerSec = float64(res.Events) / res.Pipeline.Seconds()
	res.PeakRSSBytes = PeakRSS()
	stop()
	<-runErr
	if res.LoadedRows != int64(res.Events) {
		return res, fmt.Errorf("loaded %d rows, published %d", res.LoadedRows, res.Events)
	}
	return res, nil
}

// ResetPeakRSS starts a new peak RSS measurement (Linux: clear_refs 5).
func ResetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// PeakRSS returns the process's peak resident set size (VmHWM), or 0 where
// /proc is not available.
func PeakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
