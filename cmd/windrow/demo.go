package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/windrow/windrow/adapters/warehouse/postgres"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/deploy"
	"github.com/windrow/windrow/loadtest"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "windrow-data", "directory for all state of the demo")
	events := fs.Int("events", 100_000, "number of sales events to publish")
	days := fs.Int("days", 5, "days of sales, ending yesterday (one window per day)")
	port := fs.Int("nats-port", 4222, "port of the embedded NATS server (a free one is used if taken)")
	seed := fs.Uint64("seed", 42, "seed of the generated events")
	reset := fs.Bool("reset", false, "delete --data-dir first and start over")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up if the windows are not loaded by then")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	objects := fs.String("objects", "", "object store: a directory, file:///DIR or s3://BUCKET/PREFIX (default DATA_DIR/objects)")
	whURL := fs.String("warehouse", "", "warehouse: a DuckDB file or postgres://USER@HOST:5432/DB?sslmode=disable (default DATA_DIR/warehouse.duckdb)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 1 || *days < 1 {
		return fmt.Errorf("--events and --days must be at least 1")
	}
	if *reset {
		if err := os.RemoveAll(*dataDir); err != nil {
			return err
		}
	}
	log := newLogger("text", *logLevel)
	fmt.Printf("windrow demo: all state under %s\n", *dataDir)
	s, err := stack.Open(ctx, stack.Config{DataDir: *dataDir, Embedded: true, NATSPort: *port, Logger: log, Objects: *objects, Warehouse: *whURL})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Printf("  embedded NATS (JetStream):   %s (credentials: NKey seed file %s)\n", s.NATSURL, stack.NKeyFile(*dataDir))
	fmt.Printf("  object store:                %s\n", s.Store.String())
	fmt.Printf("  warehouse:                   %s\n", s.Warehouse)

	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	defer func() {
		stop()
		<-runErr
	}()

	p, err := s.ApplyPolicy(ctx, "daily_store_sales.yaml", deploy.DailyStoreSales)
	if err != nil {
		return err
	}
	fmt.Printf("  policy:                      %s v%d (%s windows on %s, table %s)\n", p.Name, p.Version, p.Window.Size.D(), strings.Join(p.Source.Subjects, ","), p.Load.Table)

	existing, err := inspect.Windows(ctx, s.States, p.Name)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		fmt.Printf("\n%s already holds a demo run (%d windows); showing it. Pass --reset to start over.\n", *dataDir, len(existing))
		return demoSummary(ctx, s, p, *dataDir)
	}

	today := time.Now().UTC().Truncate(24 * time.Hour)
	gen := loadtest.Sales{Seed: *seed, Events: *events, Start: today.AddDate(0, 0, -*days), Span: time.Duration(*days) * 24 * time.Hour,
		Jitter: 5 * time.Minute, MalformedEvery: 997}
	evs := gen.Generate()
	want := map[string]int{}
	malformed := 0
	for _, e := range evs {
		if e.Malformed {
			malformed++
			continue
		}
		want[messages.WindowID(e.Time.UTC().Truncate(24*time.Hour))]++
	}
	fmt.Printf("\nPublishing %d sales events from %d stores over %d days (%d malformed, out of order by up to 5m)...\n", len(evs), 20, *days, malformed)
	prog := newProgress()
	start := time.Now()
	// MaxOutOfOrder: a publish that fails and is sent again must not land
	// after events newer than the policy tolerates (it would be late).
	pub := &loadtest.Publisher{JS: s.JS, MaxOutOfOrder: p.Window.MaxOutOfOrder.D(), OnProgress: func(n int) {
		prog.update("  published %d/%d (%.0f events/s)", n, len(evs), float64(n)/time.Since(start).Seconds())
	}}
	if err := pub.PublishEvents(ctx, evs, fmt.Sprintf("demo-%d", *seed)); err != nil {
		return err
	}
	prog.done("  published %d events in %s (%.0f events/s)", len(evs), time.Since(start).Round(time.Millisecond), float64(len(evs))/time.Since(start).Seconds())
	// The input is complete: without this the last day would close only
	// once the idle rule advanced the watermark to its end by elapsed time.
	if err := pub.Flush(ctx, p.Name); err != nil {
		return err
	}

	fmt.Printf("Waiting for %d windows to close and load (flushed: the last one closes once the stream is idle for %s)...\n", len(want), p.Window.IdleTimeout.D())
	deadline := time.Now().Add(*timeout)
	for {
		ws, err := inspect.Windows(ctx, s.States, p.Name)
		if err != nil {
			return err
		}
		counts := map[messages.WindowStatus]int{}
		for _, w := range ws {
			counts[w.Status]++
		}
		prog.update("  windows: %d open, %d sealed, %d compacted, %d loaded, %d failed", counts[messages.StatusOpen], counts[messages.StatusSealed],
			counts[messages.StatusCompacted], counts[messages.StatusLoaded], counts[messages.StatusFailed])
		if counts[messages.StatusFailed] > 0 {
			return errors.New("a window failed to load; see `windrow status` and the log above")
		}
		if len(ws) >= len(want) && counts[messages.StatusLoaded] == len(ws) {
			prog.done("  all %d windows loaded %s after publishing started", len(ws), time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("windows not loaded after %s (%v); see `windrow status --data-dir %s`", *timeout, counts, *dataDir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := demoLate(ctx, s, p, today.AddDate(0, 0, -*days), *seed); err != nil {
		return err
	}
	return demoSummary(ctx, s, p, *dataDir)
}

// demoLate shows late data: a few sales of the first day, published after
// that day was loaded, take the policy's late path (late: dlq) and are
// counted per window instead of being loaded twice or dropped silently.
func demoLate(ctx context.Context, s *stack.Stack, p *windows.Policy, day time.Time, seed uint64) error {
	const n = 12
	late := make([]loadtest.Event, n)
	for i := range late {
		late[i] = loadtest.SaleAt(fmt.Sprintf("late-%d-%d", seed, i), 1+i%20, day.Add(time.Duration(9+i)*time.Hour), 1, 4.5)
	}
	fmt.Printf("Publishing %d late sales for %s, which is already loaded (policy: late: %s)...\n", n, day.Format("2006-01-02"), p.Window.Late)
	if err := (&loadtest.Publisher{JS: s.JS}).PublishEvents(ctx, late, fmt.Sprintf("demo-late-%d", seed)); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		lag, err := inspect.CollectorLag(ctx, s.JS, p.Source.Stream, p.Name)
		if err == nil && lag.Pending == 0 && lag.AckPending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("late events not handled within a minute (%+v, %v)", lag, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func demoSummary(ctx context.Context, s *stack.Stack, p *windows.Policy, dataDir string) error {
	ws, err := inspect.Windows(ctx, s.States, p.Name)
	if err != nil {
		return err
	}
	dl, err := inspect.CountDeadLetters(ctx, s.JS, p.Name)
	if err != nil {
		return err
	}
	fmt.Printf("\nWindows of policy %s (table %s):\n", p.Name, p.Load.Table)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "WINDOW START\tSTATE\tEVENTS\tDUPLICATES\tLATE\tFILES\tBYTES\tSEALED→LOADED\t")
	var rows, files int64
	for _, w := range ws {
		loadTime := "-"
		if !w.LoadedAt.IsZero() {
			loadTime = w.LoadedAt.Sub(w.SealedAt).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", w.WindowStart.Format("2006-01-02 15:04 MST"), w.Status, w.Rows, w.Duplicates,
			dl.LateByWindow[w.ID()], w.BatchCount, inspect.HumanBytes(inspect.Bytes(w)), loadTime)
		rows += w.Rows
		files += int64(w.BatchCount)
	}
	tw.Flush()
	fmt.Printf("Total: %d events loaded in %d Parquet files.\n", rows, files)
	if dl.Total > 0 {
		fmt.Printf("Dead-lettered: %d (%s", dl.Total, reasons(dl.ByReason))
		fmt.Println(") — stream WINDROW_DLQ, subjects " + messages.DeadLetterFilter(p.Name))
	}
	// Plain SQL that DuckDB and PostgreSQL both run.
	q := fmt.Sprintf("SELECT store_id, CAST(sold_at AS DATE) AS day, count(*) AS sales, CAST(sum(amount) AS DECIMAL(18,2)) AS revenue FROM %s GROUP BY 1, 2 ORDER BY revenue DESC LIMIT 5", p.Load.Table)
	if pg, ok := s.Warehouse.(*postgres.Warehouse); ok {
		fmt.Printf("\nQuery the table:\n  psql '%s' -c \"%s\"\n\n", pg, q)
	} else {
		fmt.Printf("\nQuery the table (the loader holds the DuckDB file only while loading):\n  go run ./cmd/windrow query --data-dir %s \"%s\"\n  duckdb %s \"%s\"\n\n", dataDir, q, s.Warehouse, q)
	}
	return printQuery(ctx, s.Warehouse, q)
}
