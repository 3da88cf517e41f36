package collector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/pipeline/staging"
	"github.com/windrow/windrow/windows"
)

const policySrc = `name: coll
source: {stream: SRC, subjects: [ev.>]}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: n, type: int64, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h, max_out_of_order: 1m, late: dlq}
segment: {max_rows: 1000, max_age: 100ms}
load: {table: coll}
`

var hour = time.Date(2026, 5, 1, 1, 0, 0, 0, time.UTC)

func event(i int, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"id":"e-%d","n":%d,"at":%q}`, i, i, at.Format(time.RFC3339Nano)))
}

func publish(t *testing.T, js jetstream.JetStream, from, to int, at time.Time) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := js.Publish(context.Background(), "ev.x", event(i, at.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
}

func startCollector(t *testing.T, env *testkit.Env, p *windows.Policy) *Service {
	t.Helper()
	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("collector run: %v", err)
		}
	})
	return c
}

func drained(t testing.TB, env *testkit.Env, p *windows.Policy) func() bool {
	return func() bool {
		lag, err := inspect.CollectorLag(context.Background(), env.JS, p.Source.Stream, p.Name)
		return err == nil && lag.Pending == 0 && lag.AckPending == 0 && lag.AckFloor > 0
	}
}

// TestSegmentOfSealedWindowIsLate guards the membership rule: rows staged
// for a window that was sealed meanwhile are not part of it; they take the
// late path (here: dead-lettered) and their segment file is deleted.
func TestSegmentOfSealedWindowIsLate(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, policySrc)
	ctx := context.Background()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, env, p)
	publish(t, env.JS, 0, 10, hour)
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
	testkit.WaitFor(t, 10*time.Second, "10 rows staged", drained(t, env, p))
	st, _, err := env.States.Get(ctx, p.Name, win.ID())
	if err != nil {
		t.Fatal(err)
	}
	if st.StagedRows != 10 || st.Segments < 1 {
		t.Fatalf("staged %d rows in %d segments, want 10 rows", st.StagedRows, st.Segments)
	}
	// A compactor seals the window.
	if _, err := env.States.Update(ctx, st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		cur.Status = messages.StatusSealed
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	publish(t, env.JS, 10, 15, hour)
	testkit.WaitFor(t, 10*time.Second, "5 more acked", func() bool {
		lag, err := inspect.CollectorLag(ctx, env.JS, p.Source.Stream, p.Name)
		return err == nil && lag.AckFloor >= 15 && lag.AckPending == 0
	})
	dl, err := inspect.CountDeadLetters(ctx, env.JS, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if dl.ByReason[messages.ReasonLate] != 5 || dl.LateByWindow[win.ID()] != 5 {
		t.Errorf("late dead letters %v by window %v, want 5 for %s", dl.ByReason, dl.LateByWindow, win.ID())
	}
	after, _, err := env.States.Get(ctx, p.Name, win.ID())
	if err != nil {
		t.Fatal(err)
	}
	if after.StagedRows != st.StagedRows || after.Segments != st.Segments || after.LastSegmentSeq != st.LastSegmentSeq {
		t.Errorf("sealed window changed: %+v, was %+v", after, st)
	}
	files, err := env.Store.List(ctx, staging.WindowPrefix(p.Name, win.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(files)) != st.Segments {
		t.Errorf("%d staged files, want the %d registered ones: %v", len(files), st.Segments, files)
	}
	if got := c.Stats(); got.DeadLettered != 5 || got.Staged != 10 {
		t.Errorf("stats %+v, want 5 dead-lettered and 10 staged", got)
	}
}

// TestRedeliveredStagedEventIsNotLate guards exactly-once for lost acks: an
// event of a sealed window that arrives again but is already in one of the
// window's segments is acked, not counted late a second time.
func TestRedeliveredStagedEventIsNotLate(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, policySrc)
	ctx := context.Background()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	func() {
		// A collector stages 10 events and stops.
		c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(runCtx) }()
		publish(t, env.JS, 0, 10, hour)
		testkit.WaitFor(t, 10*time.Second, "10 rows staged", drained(t, env, p))
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
	if _, err := env.States.Update(ctx, messages.WindowKey(p.Name, win.ID()), func(cur *messages.WindowState) (*messages.WindowState, error) {
		if cur.MaxSourceSeq != 10 {
			t.Errorf("state MaxSourceSeq = %d, want 10 (the highest staged sequence)", cur.MaxSourceSeq)
		}
		cur.Status = messages.StatusSealed
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	publish(t, env.JS, 10, 11, hour) // one event that was never staged

	// Read events 3 (staged) and 11 (not staged) as a collector would get them.
	oc, err := env.JS.OrderedConsumer(ctx, p.Source.Stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := map[uint64]jetstream.Msg{}
	mb, err := oc.Fetch(11, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range mb.Messages() {
		meta, _ := m.Metadata()
		msgs[meta.Sequence.Stream] = m
	}
	c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	b := <-c.free
	for _, tc := range []struct {
		seq       uint64
		delivered uint64
		wantLate  bool
	}{
		{3, 2, false},
		// A server that crashed can lose the ack and the delivery count:
		// the staged event comes back as a first delivery.
		{3, 1, false},
		{10, 1, false},
		{11, 2, true},
		{11, 1, true},
	} {
		before := len(b.futures)
		if err := c.lateOrStaged(ctx, b, msgs[tc.seq], tc.seq, tc.delivered, 0, win); err != nil {
			t.Fatalf("seq %d: %v", tc.seq, err)
		}
		if late := len(b.futures) > before; late != tc.wantLate {
			t.Errorf("seq %d delivered %d: late = %v, want %v", tc.seq, tc.delivered, late, tc.wantLate)
		}
	}
	if err := c.awaitPublishes(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := c.Stats(); got.Redelivered != 3 || got.DeadLettered != 2 {
		t.Errorf("stats %+v, want 3 redelivered and 2 dead-lettered", got)
	}
}
