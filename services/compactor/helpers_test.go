package compactor

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/loads"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

type parquetRow = parquet.Row

func sortRows(l *records.Layout, rows []parquet.Row) { slices.SortFunc(rows, l.Compare) }

func filesOf(f ...*parquet.File) []*parquet.File { return f }

// batchesOf reads the batches of a compacted window run from its manifest.
func batchesOf(tb testing.TB, env *testkit.Env, st *messages.WindowState) []messages.BatchRef {
	tb.Helper()
	m, err := loads.Manifest(context.Background(), env.Store, st)
	if err != nil {
		tb.Fatal(err)
	}
	return m.Batches
}

// sealAndCompact seals win with a watermark past it, compacts it, and
// returns its state after the compaction.
func sealAndCompact(tb testing.TB, c *Service, env *testkit.Env, win windows.Window) *messages.WindowState {
	tb.Helper()
	ctx := context.Background()
	st, err := c.seal(ctx, win, win.End.Add(time.Minute))
	if err != nil || st == nil {
		tb.Fatalf("seal: %v %v", st, err)
	}
	if err := c.compact(ctx, st); err != nil {
		tb.Fatal(err)
	}
	done, _, err := env.States.Get(ctx, c.cfg.Policy.Name, win.ID())
	if err != nil {
		tb.Fatal(err)
	}
	return done
}

// takeSource publishes n source events on ev.x (policySrc reads ev.>) and takes them with the
// collectors' durable consumer, as a collector would, unacked: the caller
// acks those it has "staged", which sets the ack floor the compactor reads.
func takeSource(tb testing.TB, env *testkit.Env, p *windows.Policy, n int) []jetstream.Msg {
	tb.Helper()
	ctx := context.Background()
	stream, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := env.JS.Publish(ctx, "ev.x", fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			tb.Fatal(err)
		}
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: messages.CollectorConsumer(p.Name), AckPolicy: jetstream.AckExplicitPolicy, FilterSubjects: p.Source.Subjects})
	if err != nil {
		tb.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		tb.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != n {
		tb.Fatalf("took %d source events, want %d", len(msgs), n)
	}
	return msgs
}

// ack acks msgs and waits for the server's confirmation.
func ack(tb testing.TB, msgs ...jetstream.Msg) {
	tb.Helper()
	for _, m := range msgs {
		if err := m.DoubleAck(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
}
