package loader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/services/loader"
)

const policy = "daily_sales"

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// salesPolicy is the stored policy the tests' commands are built from:
// its table, mode and columns are those of putBatch's commands.
const salesPolicy = `name: daily_sales
source: {stream: SALES, subjects: [sales.>]}
schema:
  fields:
    - {name: store_id, type: string, required: true}
    - {name: amount, type: float64, required: true}
    - {name: sold_at, type: timestamp, required: true}
    - {name: qty, type: int64}
time: {field: sold_at}
window: {size: 1h}
load: {table: sales}
`

type env struct {
	js       jetstream.JetStream
	store    *local.Store
	policies *policystore.Store
	version  uint64 // the stored version of salesPolicy
}

// newEnv starts a JetStream server with windrow's streams, an object
// store and the policies bucket holding salesPolicy, for the test.
func newEnv(t testing.TB) *env {
	t.Helper()
	k := testkit.New(t)
	policies := policystore.New(k.Topology.Policies)
	p, err := policies.Apply(context.Background(), "daily_sales.yaml", []byte(salesPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return &env{js: k.JS, store: k.Store, policies: policies, version: p.Version}
}

// batchKey is the object key of a batch file of the test window, under the
// policy's batch prefix (compactor.BatchPrefix).
func batchKey(part int) string {
	return fmt.Sprintf("batches/%s/date=%s/window=%s/r0/part-%04d.parquet", policy, t0.Format("2006-01-02"), messages.WindowID(t0), part)
}

// record is a batch row: policy columns plus _source_seq.
type record struct {
	StoreID   string  `parquet:"store_id"`
	Amount    float64 `parquet:"amount"`
	SoldAt    int64   `parquet:"sold_at,timestamp(microsecond)"`
	Qty       *int64  `parquet:"qty,optional"`
	SourceSeq int64   `parquet:"_source_seq"`
}

func columns() []messages.Column {
	return []messages.Column{
		{Name: "store_id", Type: "string", Required: true},
		{Name: "amount", Type: "float64", Required: true},
		{Name: "sold_at", Type: "timestamp", Required: true},
		{Name: "qty", Type: "int64"},
	}
}

// putBatch writes a batch file of n rows (amounts 1..n) and returns its command.
func (e *env) putBatch(t *testing.T, part, parts, n int) *messages.LoadCommand {
	t.Helper()
	rows := make([]record, n)
	for i := range rows {
		rows[i] = record{StoreID: fmt.Sprintf("s%d", i%3), Amount: float64(i + 1),
			SoldAt: t0.Add(time.Duration(i) * time.Second).UnixMicro(), SourceSeq: int64(part*1000 + i + 1)}
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[record](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	key := batchKey(part)
	sha, err := e.store.Put(context.Background(), key, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return &messages.LoadCommand{
		BatchID: messages.BatchID(policy, t0, 0, part), Policy: policy, PolicyVersion: e.version,
		WindowStart: t0, WindowEnd: t0.Add(time.Hour), Part: part, Parts: parts, Table: "sales", Mode: "append",
		Object: key, Rows: int64(n), Bytes: int64(buf.Len()), SHA256: sha, Columns: columns(),
		Manifest: "batches/manifest.json", CreatedAt: t0.Add(2 * time.Hour),
	}
}

func (e *env) publish(t *testing.T, cmd *messages.LoadCommand, msgID string) {
	t.Helper()
	data, err := messages.Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	e.publishRaw(t, data, msgID)
}

func (e *env) publishRaw(t *testing.T, data []byte, msgID string) {
	t.Helper()
	m := &nats.Msg{Subject: messages.LoadSubject(policy), Data: data, Header: nats.Header{}}
	m.Header.Set(messages.HeaderType, messages.TypeLoadCommand)
	if _, err := e.js.PublishMsg(context.Background(), m, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

// results reads every LoadResult on the results stream.
func (e *env) results(t *testing.T) []messages.LoadResult {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, messages.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []messages.LoadResult
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var r messages.LoadResult
		if err := messages.Decode(raw.Header.Get(messages.HeaderType), raw.Data, &r); err != nil {
			t.Fatal(err)
		}
		if raw.Subject != messages.ResultSubject(r.Policy) || raw.Header.Get(messages.HeaderPolicy) != r.Policy ||
			raw.Header.Get(nats.MsgIdHdr) != r.MsgID() {
			t.Fatalf("result %s: subject %s headers %v", r.BatchID, raw.Subject, raw.Header)
		}
		out = append(out, r)
	}
	return out
}

func (e *env) resultCount(t *testing.T, want int) func() error {
	return func() error {
		if got := len(e.results(t)); got != want {
			return fmt.Errorf("%d results, want %d", got, want)
		}
		return nil
	}
}

// consumerSettled reports an error until the loader's consumer has nothing
// pending or unacknowledged.
func (e *env) consumerSettled() error {
	return testnats.ConsumerSettled(e.js, messages.StreamLoad, loader.DurablePrefix)()
}

func (e *env) consumerRedelivered(t *testing.T) int {
	c, err := e.js.Consumer(context.Background(), messages.StreamLoad, loader.DurablePrefix)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumRedelivered
}

// start runs a loader until the test ends.
func (e *env) start(t *testing.T, wh warehouse.Warehouse) *loader.Service {
	t.Helper()
	svc, err := loader.New(loader.Config{
		JS: e.js, Warehouse: wh, Objects: e.store, Policies: e.policies, Instance: "loader-test", AckWait: 5 * time.Second,
		Retry: loader.RetryConfig{InitialInterval: 10 * time.Millisecond, MaxInterval: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := svc.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		cancel()
	})
	return svc
}

func (e *env) openWarehouse(t testing.TB) *duckdbwh.Warehouse {
	t.Helper()
	wh, err := duckdbwh.Open(duckdbwh.Config{Path: filepath.Join(t.TempDir(), "wh.duckdb"), Threads: 1, Objects: e.store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	return wh
}

func countStatus(rs []messages.LoadResult) map[messages.LoadStatus]int {
	m := map[messages.LoadStatus]int{}
	for _, r := range rs {
		m[r.Status]++
	}
	return m
}

func TestLoadsEachBatchOnceAndReportsRedeliveryAsDuplicate(t *testing.T) {
	e := newEnv(t)
	wh := e.openWarehouse(t)
	sizes := []int{100, 40, 7}
	var cmds []*messages.LoadCommand
	var wantRows int64
	var wantSum float64
	for part, n := range sizes {
		cmds = append(cmds, e.putBatch(t, part, len(sizes), n))
		wantRows += int64(n)
		wantSum += float64(n * (n + 1) / 2)
	}
	for _, c := range cmds {
		e.publish(t, c, c.MsgID())
	}
	// The first command again, beyond the stream's duplicate window.
	e.publish(t, cmds[0], "redelivered-"+cmds[0].MsgID())

	svc := e.start(t, wh)
	testnats.WaitForNil(t, 15*time.Second, e.resultCount(t, 4))
	testnats.WaitForNil(t, 5*time.Second, e.consumerSettled)

	rs := e.results(t)
	if got := countStatus(rs); got[messages.LoadLoaded] != 3 || got[messages.LoadDuplicate] != 1 || len(got) != 2 {
		t.Fatalf("result statuses = %v, want 3 loaded and 1 duplicate", got)
	}
	for _, r := range rs {
		if r.Loader != "loader-test" || r.LoadedAt.IsZero() || r.Duration <= 0 || r.Table != "sales" || r.Parts != 3 {
			t.Errorf("result %+v lacks fields", r)
		}
		if r.Status == messages.LoadDuplicate && (r.BatchID != cmds[0].BatchID || r.Rows != 100) {
			t.Errorf("duplicate result %+v, want batch %s with 100 rows", r, cmds[0].BatchID)
		}
	}
	db, release, err := wh.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var n, batches int64
	var sum float64
	if err := db.QueryRow(`SELECT count(*), sum(amount), count(DISTINCT _batch_id) FROM sales`).Scan(&n, &sum, &batches); err != nil {
		t.Fatal(err)
	}
	if n != wantRows || sum != wantSum || batches != 3 {
		t.Fatalf("warehouse has %d rows, sum %v, %d batches; want %d, %v, 3", n, sum, batches, wantRows, wantSum)
	}
	if st := svc.Stats(); st != (loader.Stats{Loaded: 3, Duplicates: 1, Rows: wantRows}) {
		t.Fatalf("stats = %+v", st)
	}
}

func TestPoisonCommandsAreReportedAndTerminated(t *testing.T) {
	e := newEnv(t)
	wh := e.openWarehouse(t)
	// The server announces every terminated message: poison must be
	// settled with Term (never redelivered), good commands with Ack.
	terminated, err := e.js.Conn().SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + messages.StreamLoad + ".>")
	if err != nil {
		t.Fatal(err)
	}

	missing := e.putBatch(t, 0, 4, 5)
	missing.Object = batchKey(9) // under the prefix, never written
	e.publish(t, missing, missing.MsgID())

	badSum := e.putBatch(t, 1, 4, 5)
	badSum.SHA256 = strings.Repeat("0", 64)
	e.publish(t, badSum, badSum.MsgID())

	badTable := e.putBatch(t, 2, 4, 5)
	badTable.Table = "sales; DROP TABLE x"
	e.publish(t, badTable, badTable.MsgID())

	e.publishRaw(t, []byte(`{not json`), "garbage") // no result can name it; acked and counted

	good := e.putBatch(t, 3, 4, 5)
	e.publish(t, good, good.MsgID())

	svc := e.start(t, wh)
	testnats.WaitForNil(t, 15*time.Second, e.resultCount(t, 4))
	testnats.WaitForNil(t, 5*time.Second, e.consumerSettled)

	rs := e.results(t)
	failed := map[string]string{}
	for _, r := range rs {
		if r.Status == messages.LoadFailed {
			failed[r.BatchID] = r.Error
		}
	}
	for id, want := range map[string]string{
		missing.BatchID:  loader.ErrFileMissing.Error(),
		badSum.BatchID:   loader.ErrChecksum.Error(),
		badTable.BatchID: loader.ErrPolicyMismatch.Error(), // refused before the warehouse sees it
	} {
		if !strings.Contains(failed[id], want) {
			t.Errorf("failed result of %s: error %q, want it to mention %q", id, failed[id], want)
		}
	}
	if got := countStatus(rs); got[messages.LoadLoaded] != 1 || got[messages.LoadFailed] != 3 {
		t.Fatalf("result statuses = %v, want 1 loaded and 3 failed", got)
	}
	if got := e.consumerRedelivered(t); got != 0 {
		t.Fatalf("%d commands redelivered, want 0", got)
	}
	if st := svc.Stats(); st != (loader.Stats{Loaded: 1, Failed: 4, Rows: 5}) {
		t.Fatalf("stats = %+v", st)
	}
	testnats.WaitForNil(t, 5*time.Second, func() error {
		if n, _, _ := terminated.Pending(); n != 4 {
			return fmt.Errorf("%d MSG_TERMINATED advisories, want 4 (one per poison command)", n)
		}
		return nil
	})
}

// flakyWarehouse fails with a transient error a number of times, then
// panics or succeeds.
type flakyWarehouse struct {
	transient atomic.Int32 // failures left
	panicOn   string       // batch id that panics
	calls     atomic.Int32
}

func (w *flakyWarehouse) Load(ctx context.Context, b warehouse.Batch) (int64, bool, error) {
	w.calls.Add(1)
	if b.ID == w.panicOn {
		panic("boom")
	}
	if w.transient.Add(-1) >= 0 {
		return 0, false, fmt.Errorf("file locked: %w", loader.ErrTransient)
	}
	return b.Rows, false, nil
}

func (w *flakyWarehouse) Close() error { return nil }

func TestTransientErrorsAreRetriedAndPanicsArePoison(t *testing.T) {
	e := newEnv(t)
	wh := &flakyWarehouse{}
	wh.transient.Store(3)
	ok := e.putBatch(t, 0, 2, 5)
	bad := e.putBatch(t, 1, 2, 5)
	wh.panicOn = bad.BatchID
	e.publish(t, ok, ok.MsgID())
	e.publish(t, bad, bad.MsgID())

	svc := e.start(t, wh)
	testnats.WaitForNil(t, 15*time.Second, e.resultCount(t, 2))
	testnats.WaitForNil(t, 5*time.Second, e.consumerSettled)

	got := map[string]messages.LoadResult{}
	for _, r := range e.results(t) {
		got[r.BatchID] = r
	}
	if r := got[ok.BatchID]; r.Status != messages.LoadLoaded {
		t.Errorf("%s: status %s (%s), want loaded after retries", ok.BatchID, r.Status, r.Error)
	}
	if r := got[bad.BatchID]; r.Status != messages.LoadFailed || !strings.Contains(r.Error, "boom") {
		t.Errorf("%s: status %s error %q, want failed with the panic", bad.BatchID, r.Status, r.Error)
	}
	if n := wh.calls.Load(); n != 5 { // 3 transient failures + success + panic
		t.Errorf("warehouse called %d times, want 5", n)
	}
	if st := svc.Stats(); st.Loaded != 1 || st.Failed != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// blockingWarehouse holds each load until released.
type blockingWarehouse struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *blockingWarehouse) Load(ctx context.Context, b warehouse.Batch) (int64, bool, error) {
	w.once.Do(func() { close(w.started) })
	select {
	case <-w.release:
		return b.Rows, false, nil
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
}

func (w *blockingWarehouse) Close() error { return nil }

// Shutdown lets the load in flight finish, publish and ack before Run returns.
func TestShutdownFinishesCommandInFlight(t *testing.T) {
	e := newEnv(t)
	wh := &blockingWarehouse{started: make(chan struct{}), release: make(chan struct{})}
	cmd := e.putBatch(t, 0, 1, 5)
	e.publish(t, cmd, cmd.MsgID())

	svc, err := loader.New(loader.Config{JS: e.js, Warehouse: wh, Objects: e.store, Policies: e.policies, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	<-wh.started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- svc.Shutdown(ctx)
	}()
	// Shutdown waits for the load in flight.
	select {
	case err := <-shut:
		t.Fatalf("shutdown returned %v while a load was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(wh.release)
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := svc.Shutdown(context.Background()); err != nil { // idempotent
		t.Fatalf("second shutdown: %v", err)
	}
	if err := e.resultCount(t, 1)(); err != nil {
		t.Fatal(err)
	}
	testnats.WaitForNil(t, 5*time.Second, e.consumerSettled)
}

func TestRunFailsWithoutLoadStream(t *testing.T) {
	_, js := testnats.Connect(t, testnats.RunServer(t)) // not provisioned
	svc, err := loader.New(loader.Config{JS: js, Warehouse: &flakyWarehouse{}, Objects: &local.Store{}, Policies: &policystore.Store{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Run(ctx); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("Run = %v, want ErrStreamNotFound", err)
	}
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown after failed run: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := loader.New(loader.Config{Policy: "a.b", AckWait: time.Millisecond, Workers: -1, MaxWaiting: -2,
		Retry: loader.RetryConfig{InitialInterval: time.Second, MaxInterval: time.Millisecond, Multiplier: 0.5}})
	for _, want := range []string{"JS: required", "Warehouse: required", "Objects: required", "Policies: required", "Policy:", "AckWait:",
		"Workers: -1", "MaxWaiting: -2", "Retry.MaxInterval", "Retry.Multiplier"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	if !errors.Is(fmt.Errorf("x: %w", duckdbwh.ErrUnavailable), loader.ErrTransient) {
		t.Error("duckdbwh.ErrUnavailable does not match loader.ErrTransient")
	}
}
