package loadtest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// scalePolicy: hourly windows, small segments so that the collectors hand
// off often and all of them take part.
const scalePolicy = `name: scaled
source: {stream: SCALED, subjects: [events.sales.>]}
` + SalesSchemaYAML + `window: {size: 1h, max_out_of_order: 5m, late: dlq, idle_timeout: 2s}
segment: {max_rows: 500, max_age: 200ms}
load: {table: scaled}
`

// TestFourCollectorsStageEachEventOnce is issue 13's scaling test
// (correctness only): four collector processes (stacks of their own, each
// with its own data directory, sharing only NATS and the object store) take
// one policy's events from the shared pull consumer while one compactor and
// one loader run elsewhere. Every event is staged once (no duplicate rows
// staged, staged rows = accepted events), every window is loaded with exact
// rows and sums, and each collector took a share of the work.
func TestFourCollectorsStageEachEventOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := testnats.RunServer(t)
	objects := filepath.Join(t.TempDir(), "objects")
	open := func(name string, roles ...string) *stack.Stack {
		t.Helper()
		s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), NATS: natsx.ClientConfig{URL: srv.ClientURL()}, Objects: objects,
			Roles: roles, Instance: name, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	main := open("main", stack.RoleCompactor, stack.RoleLoader)
	p, err := main.ApplyPolicy(ctx, "scaled.yaml", []byte(scalePolicy))
	if err != nil {
		t.Fatal(err)
	}
	collectors := make([]*stack.Stack, 4)
	for i := range collectors {
		collectors[i] = open(fmt.Sprintf("c%d", i+1), stack.RoleCollector)
	}
	day := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	events := Sales{Seed: 41, Events: 20_000, Start: day, Span: 4 * time.Hour, Jitter: 3 * time.Minute, MalformedEvery: 1000}.Generate()
	assign, _ := windows.NewAssigner(p.Window)
	want := expectOf(events, assign)
	var accepted int64
	for _, n := range want.rows {
		accepted += n
	}
	defer runRoles(t, ctx, main)()
	for _, c := range collectors {
		defer runRoles(t, ctx, c)()
	}
	if err := (&Publisher{JS: main.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "scaled"); err != nil {
		t.Fatal(err)
	}
	ws := waitLoaded(t, ctx, main, p.Name, len(want.rows), 2*time.Minute)
	var staged, dups int64
	for _, w := range ws {
		staged += w.StagedRows
		dups += w.Duplicates
		if w.Rows != want.rows[w.ID()] {
			t.Errorf("window %s: %d rows, want %d", w.ID(), w.Rows, want.rows[w.ID()])
		}
	}
	if staged != accepted || dups != 0 {
		t.Errorf("%d rows staged with %d duplicates, want each of the %d accepted events staged once", staged, dups, accepted)
	}
	checkTable(t, ctx, main, "scaled", "quantity", "amount", want)
	took := 0
	for i, c := range collectors {
		st, _ := c.CollectorStats(p.Name)
		t.Logf("collector c%d: received %d, staged %d, dead-lettered %d, %d segments", i+1, st.Received, st.Staged, st.DeadLettered, st.Segments)
		if st.Staged > 0 {
			took++
		}
	}
	if took < 2 {
		t.Errorf("%d of 4 collectors staged anything: the work is not shared", took)
	}
	rec, err := inspect.Reconcile(ctx, main.JS, main.States, p, main.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() || rec.Rows != accepted {
		t.Errorf("reconcile: %s %v; want %d loaded", rec.Summary(), rec.Problems, accepted)
	}
}
