package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/windrow/windrow/loadtest"
	"github.com/windrow/windrow/ops/inspect"
)

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	events := fs.Int("events", 1_000_000, "events to publish before the pipeline starts")
	wins := fs.Int("windows", 24, "hourly windows the events spread over")
	dataDir := fs.String("data-dir", "", "directory for the run (default a new temporary directory, removed afterwards)")
	seed := fs.Uint64("seed", 1, "seed of the generated events")
	logLevel := fs.String("log-level", "warn", "log level of the services: debug, info, warn, error")
	memProfile := fs.String("memprofile", "", "write a heap profile, taken when half of the windows are loaded, to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the pipeline (not the fill) to this file")
	objects := fs.String("objects", "", "object store: a directory, file:///DIR or s3://BUCKET/PREFIX (default DATA_DIR/objects)")
	whURL := fs.String("warehouse", "", "warehouse: a DuckDB file or postgres://… with no bench_sales table yet, e.g. ?search_path=a fresh schema (default DATA_DIR/warehouse.duckdb)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := *dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "windrow-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	var profile *os.File
	defer func() {
		if profile != nil {
			pprof.StopCPUProfile()
			profile.Close()
		}
	}()
	res, err := loadtest.RunBench(ctx, loadtest.BenchConfig{DataDir: dir, Objects: *objects, Warehouse: *whURL, Events: *events, Windows: *wins, Seed: *seed, Out: os.Stderr, Logger: newLogger("text", *logLevel), OnStart: func() {
		if *cpuProfile == "" {
			return
		}
		f, err := os.Create(*cpuProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			profile = f
		}
	}, OnHalfway: func() {
		if *memProfile == "" {
			return
		}
		if f, err := os.Create(*memProfile); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}})
	if err != nil {
		return err
	}
	fmt.Printf("events:            %d over %d windows (all loaded, %d rows in the warehouse)\n", res.Events, res.Windows, res.LoadedRows)
	fmt.Printf("pipeline:          %s from start until every window was loaded\n", res.Pipeline.Round(time.Millisecond))
	fmt.Printf("throughput:        %.0f events/s end to end\n", res.EventsPerSec)
	if res.IdleCloseWait > 0 {
		fmt.Printf("                   (%.0f events/s without the %s idle_timeout before the last window may close)\n",
			float64(res.Events)/(res.Pipeline-res.IdleCloseWait).Seconds(), res.IdleCloseWait)
	}
	fmt.Printf("peak RSS:          %s (Go runtime at most %s of it; the rest is DuckDB and other C memory)\n", inspect.HumanBytes(res.PeakRSSBytes), inspect.HumanBytes(res.PeakGoBytes))
	fmt.Printf("filling the stream took %s (not counted)\n", res.Publish.Round(time.Millisecond))
	return nil
}
