package loader_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/loads"
	"github.com/windrow/windrow/services/loader"
)

// returnsPolicy is a second policy, loading into its own table.
const returnsPolicy = `name: daily_returns
source: {stream: RETURNS, subjects: [returns.>]}
schema:
  fields:
    - {name: store_id, type: string, required: true}
    - {name: amount, type: float64, required: true}
    - {name: sold_at, type: timestamp, required: true}
    - {name: qty, type: int64}
time: {field: sold_at}
window: {size: 1h}
load: {table: returns}
`

// applyPolicy stores a policy file and returns its version.
func (e *env) applyPolicy(t testing.TB, name, text string) uint64 {
	t.Helper()
	p, err := e.policies.Apply(context.Background(), name+".yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p.Version
}

// windowBatch writes batch file part of the window starting at start of
// policy pol (table, stored version) with n rows, amounts 1..n, and returns
// its append command.
func (e *env) windowBatch(t testing.TB, pol, table string, version uint64, start time.Time, part, parts, n int) *messages.LoadCommand {
	t.Helper()
	rows := make([]record, n)
	for i := range rows {
		rows[i] = record{StoreID: fmt.Sprintf("s%d", i%3), Amount: float64(i + 1),
			SoldAt: start.Add(time.Duration(i) * time.Second).UnixMicro(), SourceSeq: int64(part*1000 + i + 1)}
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[record](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("%s/part-%04d.parquet", loads.BatchPrefix(pol, time.UTC, start, 0), part)
	sha, err := e.store.Put(context.Background(), key, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return &messages.LoadCommand{
		BatchID: messages.BatchID(pol, start, 0, part), Policy: pol, PolicyVersion: version,
		WindowStart: start, WindowEnd: start.Add(time.Hour), Part: part, Parts: parts, Table: table, Mode: "append",
		Object: key, Rows: int64(n), Bytes: int64(buf.Len()), SHA256: sha, Columns: columns(),
		Manifest: "batches/manifest.json", CreatedAt: start.Add(2 * time.Hour),
	}
}

// publishCommand publishes cmd the way the compactor does: on its policy's
// subject, with the policy and window headers.
func (e *env) publishCommand(t testing.TB, cmd *messages.LoadCommand) {
	t.Helper()
	data, err := messages.Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: messages.LoadSubject(cmd.Policy), Data: data, Header: nats.Header{}}
	m.Header.Set(messages.HeaderType, messages.TypeLoadCommand)
	m.Header.Set(messages.HeaderPolicy, cmd.Policy)
	m.Header.Set(messages.HeaderWindow, messages.WindowID(cmd.WindowStart))
	if _, err := e.js.PublishMsg(context.Background(), m, jetstream.WithMsgID(cmd.MsgID())); err != nil {
		t.Fatal(err)
	}
}

// startWorkers runs a loader with the given Workers until the test ends.
func (e *env) startWorkers(t testing.TB, wh warehouse.Warehouse, workers int) *loader.Service {
	t.Helper()
	svc, err := newService(e, wh, workers)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return svc
}

// newService is a loader over e with the given Workers and the tests'
// short AckWait and retries.
func newService(e *env, wh warehouse.Warehouse, workers int) (*loader.Service, error) {
	return loader.New(loader.Config{
		JS: e.js, Warehouse: wh, Objects: e.store, Policies: e.policies, Instance: "loader-test", AckWait: 5 * time.Second,
		Retry:   loader.RetryConfig{InitialInterval: 10 * time.Millisecond, MaxInterval: 100 * time.Millisecond},
		Workers: workers,
	})
}

// windowWatch wraps a real warehouse and records, per window (policy and
// window start), how many loads ran at once at most and the order of the
// parts it loaded; and the most loads of any windows at once.
type windowWatch struct {
	warehouse.Warehouse

	mu      sync.Mutex
	running map[string]int
	most    map[string]int
	order   map[string][]int
	all     int
	mostAll int
}

func newWindowWatch(wh warehouse.Warehouse) *windowWatch {
	return &windowWatch{Warehouse: wh, running: map[string]int{}, most: map[string]int{}, order: map[string][]int{}}
}

func (w *windowWatch) Load(ctx context.Context, b warehouse.Batch) (int64, bool, error) {
	key := b.Policy + "/" + messages.WindowID(b.WindowStart)
	w.mu.Lock()
	w.running[key]++
	w.most[key] = max(w.most[key], w.running[key])
	w.all++
	w.mostAll = max(w.mostAll, w.all)
	w.order[key] = append(w.order[key], b.Part)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running[key]--
		w.all--
		w.mu.Unlock()
	}()
	return w.Warehouse.Load(ctx, b)
}

// TestOtherPolicyIsNotQueuedBehindALongWindow is issue 12 item 10: one
// policy's window with 400 batches is queued ahead of another policy's
// single command; the other command must be loaded before the window's
// batches are all done, and every row loaded once.
func TestOtherPolicyIsNotQueuedBehindALongWindow(t *testing.T) {
	e := newEnv(t)
	returnsVersion := e.applyPolicy(t, "daily_returns", returnsPolicy)
	wh := e.openWarehouse(t)
	const parts, rowsPer = 400, 3
	for part := range parts {
		e.publishCommand(t, e.windowBatch(t, policy, "sales", e.version, t0, part, parts, rowsPer))
	}
	other := e.windowBatch(t, "daily_returns", "returns", returnsVersion, t0, 0, 1, 5)
	e.publishCommand(t, other)

	svc := e.startWorkers(t, wh, 4)
	testnats.WaitForNil(t, 60*time.Second, e.resultCount(t, parts+1))
	testnats.WaitForNil(t, 10*time.Second, e.consumerSettled)

	rs := e.results(t)
	otherAt, lastSales := -1, -1
	for i, r := range rs {
		if r.Status != messages.LoadLoaded {
			t.Errorf("result %s: status %s, want loaded", r.BatchID, r.Status)
		}
		switch r.Policy {
		case "daily_returns":
			otherAt = i
		case policy:
			lastSales = i
		}
	}
	if otherAt < 0 || otherAt > lastSales {
		t.Fatalf("the other policy's command was loaded as result %d of %d, after the long window's last batch (result %d)",
			otherAt+1, len(rs), lastSales+1)
	}
	t.Logf("the other policy's command was result %d of %d", otherAt+1, len(rs))

	db, release, err := wh.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, c := range []struct {
		table         string
		rows, batches int64
		sum           float64
	}{
		{"sales", parts * rowsPer, parts, parts * rowsPer * (rowsPer + 1) / 2},
		{"returns", 5, 1, 15},
	} {
		var n, batches int64
		var sum float64
		if err := db.QueryRow(`SELECT count(*), sum(amount), count(DISTINCT _batch_id) FROM `+c.table).Scan(&n, &sum, &batches); err != nil {
			t.Fatal(err)
		}
		if n != c.rows || sum != c.sum || batches != c.batches {
			t.Errorf("%s: %d rows, sum %v, %d batches; want %d, %v, %d", c.table, n, sum, batches, c.rows, c.sum, c.batches)
		}
	}
	if st := svc.Stats(); st != (loader.Stats{Loaded: parts + 1, Rows: parts*rowsPer + 5}) {
		t.Errorf("stats = %+v", st)
	}
}

// TestCommandsOfOneWindowNeverOverlap: with several workers, loads of
// different windows run at once, loads of one window one at a time and in
// the order their commands were published.
func TestCommandsOfOneWindowNeverOverlap(t *testing.T) {
	e := newEnv(t)
	returnsVersion := e.applyPolicy(t, "daily_returns", returnsPolicy)
	wh := newWindowWatch(e.openWarehouse(t))
	const parts = 30
	starts := []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour)}
	for part := range parts { // the windows' commands interleaved
		for _, start := range starts {
			e.publishCommand(t, e.windowBatch(t, policy, "sales", e.version, start, part, parts, 2))
		}
		e.publishCommand(t, e.windowBatch(t, "daily_returns", "returns", returnsVersion, t0, part, parts, 2))
	}
	e.startWorkers(t, wh, 4)
	total := parts * (len(starts) + 1)
	testnats.WaitForNil(t, 60*time.Second, e.resultCount(t, total))
	testnats.WaitForNil(t, 10*time.Second, e.consumerSettled)

	wh.mu.Lock()
	defer wh.mu.Unlock()
	if len(wh.most) != len(starts)+1 {
		t.Fatalf("loads of %d windows, want %d", len(wh.most), len(starts)+1)
	}
	for key, most := range wh.most {
		if most != 1 {
			t.Errorf("window %s: %d loads at once, want 1", key, most)
		}
		order := wh.order[key]
		if len(order) != parts {
			t.Errorf("window %s: %d loads, want %d", key, len(order), parts)
			continue
		}
		for i, part := range order {
			if part != i {
				t.Errorf("window %s: parts loaded in order %v, want 0..%d", key, order, parts-1)
				break
			}
		}
	}
	if wh.mostAll < 2 {
		t.Errorf("at most %d loads at once over all windows, want several", wh.mostAll)
	}
	t.Logf("at most %d loads at once", wh.mostAll)
}
