package loader_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/warehouse/postgres"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/internal/testpg"
	"github.com/windrow/windrow/messages"
)

// BenchmarkLoaderWorkers loads 200 small append batches (10 rows each) of 8
// windows, 25 batches a window, with Workers 1 and 4, into DuckDB and
// PostgreSQL (skipped without a server). One op is the 200 loads, from the
// loader's start to its last result; the files are written and the commands
// published before:
//
//	go test -run '^$' -bench BenchmarkLoaderWorkers -benchtime 3x ./services/loader/
func BenchmarkLoaderWorkers(b *testing.B) {
	const windows, perWindow, rows = 8, 25, 10
	for _, kind := range []string{"duckdb", "postgres"} {
		for _, workers := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/workers=%d", kind, workers), func(b *testing.B) {
				e := newEnv(b)
				var wh warehouse.Warehouse
				if kind == "duckdb" {
					wh = e.openWarehouse(b)
				} else {
					_, dsn := testpg.Schema(b)
					pg, err := postgres.Open(context.Background(), postgres.Config{URL: dsn, Objects: e.store})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { pg.Close() })
					wh = pg
				}
				var loaded int64
				for i := range b.N {
					b.StopTimer()
					for w := range windows {
						start := t0.Add(time.Duration(i*windows+w) * time.Hour)
						for part := range perWindow {
							e.publishCommand(b, e.windowBatch(b, policy, "sales", e.version, start, part, perWindow, rows))
						}
					}
					loaded += windows * perWindow
					b.StartTimer()
					stop := e.run(b, wh, workers)
					testnats.WaitForNil(b, 5*time.Minute, e.resultsStored(loaded))
					stop()
				}
				b.ReportMetric(float64(loaded)/b.Elapsed().Seconds(), "loads/s")
			})
		}
	}
}

// run starts a loader with workers and returns its graceful stop.
func (e *env) run(b *testing.B, wh warehouse.Warehouse, workers int) (stop func()) {
	b.Helper()
	svc, err := newService(e, wh, workers)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// resultsStored reports an error until the results stream holds n messages.
func (e *env) resultsStored(n int64) func() error {
	return func() error {
		s, err := e.js.Stream(context.Background(), messages.StreamResults)
		if err != nil {
			return err
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return err
		}
		if int64(info.State.Msgs) != n {
			return fmt.Errorf("%d results, want %d", info.State.Msgs, n)
		}
		return nil
	}
}

// BenchmarkOtherPolicyBehindLongWindow is the case: 400 small
// batches of one window queued ahead of another policy's one command. It
// reports how long the other command waited for its result ("wait-ms") and
// how long all 401 took (ns/op), with Workers 1 and 4, on DuckDB:
//
//	go test -run '^$' -bench BenchmarkOtherPolicyBehindLongWindow -benchtime 1x ./services/loader/
func BenchmarkOtherPolicyBehindLongWindow(b *testing.B) {
	const parts, rows = 400, 3
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e := newEnv(b)
			returnsVersion := e.applyPolicy(b, "daily_returns", returnsPolicy)
			wh := e.openWarehouse(b)
			sub, err := e.js.Conn().SubscribeSync(messages.ResultSubject("daily_returns"))
			if err != nil {
				b.Fatal(err)
			}
			var waited time.Duration
			var loaded int64
			for i := range b.N {
				b.StopTimer()
				start := t0.Add(time.Duration(i) * time.Hour)
				for part := range parts {
					e.publishCommand(b, e.windowBatch(b, policy, "sales", e.version, start, part, parts, rows))
				}
				e.publishCommand(b, e.windowBatch(b, "daily_returns", "returns", returnsVersion, start, 0, 1, 5))
				loaded += parts + 1
				b.StartTimer()
				began := time.Now()
				stop := e.run(b, wh, workers)
				if _, err := sub.NextMsg(5 * time.Minute); err != nil {
					b.Fatal(err)
				}
				waited += time.Since(began)
				testnats.WaitForNil(b, 5*time.Minute, e.resultsStored(loaded))
				stop()
			}
			b.ReportMetric(float64(waited.Milliseconds())/float64(b.N), "wait-ms")
		})
	}
}
