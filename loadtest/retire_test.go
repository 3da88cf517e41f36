package loadtest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/dlq"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/ops/replay"
	"github.com/windrow/windrow/windows"
)

// TestRetirement: window states do not only grow. With window.retain 2h
// and the compactors' clock moved forward:
//
//  1. four hourly windows are loaded; none is retired (loaded just now);
//  2. window 02:00 is replayed an hour later (loaded again, so later), and
//     another 1.5h later windows 00:00 and 01:00 are retired but not 03:00,
//     which would leave a hole: the horizon is 02:00, the retirement record
//     counts two windows and their rows;
//  3. a late event of window 00:00 is dead-lettered as late (window
//     retired), whatever late says (revise here): the window is not
//     created again;
//  4. the collectors' consumer is deleted, so every event comes again as
//     new: those of retired windows are redeliveries (at or below the
//     record's ack floor), those of the others make a revision with
//     nothing new (late: revise); nothing is loaded twice and no dead
//     letter is added;
//  5. three hours later the last two windows are retired: the horizon moves
//     forward to 04:00 and no state is left; a replay of a retired window
//     is refused.
//
// After each step the table holds every accepted event exactly once, with
// exact per-window counts and sums, and windrow reconcile balances.
func TestRetirement(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var offset atomic.Int64 // added to the compactors' clock
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), Embedded: true, NATSPort: -1, Instance: "e2e", Logger: testLogger(t), Clock: clock})
	if err != nil {
		t.Fatalf("open stack: %v", err)
	}
	defer s.Close()
	name := "retired"
	p := applyPolicy(t, ctx, s, `name: `+name+`
source: {stream: RETIRED, subjects: [`+name+`.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 2m, idle_timeout: 1s, late: revise, revise_after: 1s, retain: 2h}
segment: {max_rows: 5000, max_age: 200ms}
load: {table: `+name+`, mode: append}
`)
	defer runRoles(t, ctx, s)()
	assign, err := windows.NewAssigner(p.Window)
	if err != nil {
		t.Fatal(err)
	}
	pub := &Publisher{JS: s.JS, FlushAfter: []string{p.Name}}
	h0 := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	var loaded []Event // events the table must hold
	publish := func(evs []Event, tag string) {
		t.Helper()
		for i := range evs {
			evs[i].Subject = strings.Replace(evs[i].Subject, "events.sales", name, 1)
		}
		if err := pub.PublishEvents(ctx, evs, tag); err != nil {
			t.Fatal(err)
		}
	}
	var published, lateRetired int64
	check := func(step string) {
		t.Helper()
		waitDrained(t, ctx, s, p, time.Minute)
		checkTable(t, ctx, s, name, "quantity", "amount", expectOf(loaded, assign))
		rec, err := inspect.Reconcile(ctx, s.JS, s.States, p, s.Warehouse)
		if err != nil {
			t.Fatal(err)
		}
		if !rec.OK() || rec.Published != published || rec.Rows != int64(len(loaded)) || rec.DeadLetters != lateRetired {
			t.Errorf("%s: reconcile: %s; problems %v; want published %d, loaded %d, dead-lettered %d", step, rec.Summary(), rec.Problems, published, len(loaded), lateRetired)
			for _, w := range rec.Windows {
				if len(w.Problems) > 0 {
					t.Errorf("%s: reconcile window %s: %v", step, w.State.ID(), w.Problems)
				}
			}
		}
	}
	retirement := func() messages.Retirement {
		t.Helper()
		r, err := inspect.Retirement(ctx, s.JS, p.Name)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	stateIDs := func() []string {
		t.Helper()
		ws, err := inspect.Windows(ctx, s.States, p.Name)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, w := range ws {
			ids = append(ids, w.ID())
		}
		return ids
	}
	waitHorizon := func(want time.Time) messages.Retirement {
		t.Helper()
		var r messages.Retirement
		defer func() {
			if t.Failed() {
				ws, _ := inspect.Windows(ctx, s.States, p.Name)
				for _, w := range ws {
					t.Logf("state %s: %s loaded at %s, staging deleted %v, next %+v, retiring %v", w.ID(), w.Status, w.LoadedAt, w.StagingDeleted, w.Next, w.Retiring)
				}
			}
		}()
		waitFor(t, time.Minute, "horizon "+want.Format(time.RFC3339), func() bool {
			r = retirement()
			return r.Horizon.Equal(want) && len(stateIDs()) == 0 || (r.Horizon.Equal(want) && !slices.ContainsFunc(stateIDs(), func(id string) bool {
				start, _ := messages.ParseWindowID(id)
				return start.Before(want)
			}))
		})
		return r
	}
	id := messages.WindowID
	w0, w1, w2, w3 := h0, h0.Add(time.Hour), h0.Add(2*time.Hour), h0.Add(3*time.Hour)

	// 1. Four windows, loaded; nothing is retired yet.
	base := slices.Collect(Sales{Seed: 7, Events: 8000, Start: h0, Span: 4 * time.Hour, Jitter: time.Minute}.All())
	publish(base, "base")
	published += int64(len(base))
	loaded = append(loaded, base...)
	waitLoaded(t, ctx, s, p.Name, 4, 2*time.Minute)
	check("loaded")
	if r := retirement(); !r.Horizon.IsZero() || r.Windows != 0 {
		t.Fatalf("loaded: retirement %+v, want none", r)
	}

	// 2. Window 02:00 loaded again an hour later; 1.5h after that, the two
	// windows before it are retired, not 03:00 (no hole).
	offset.Add(int64(time.Hour))
	time.Sleep(300 * time.Millisecond) // a compactor tick reads the new clock
	ws, err := replay.Start(ctx, replay.Config{JS: s.JS, States: s.States, Store: s.Store, Policy: p}, w2, w2.Add(time.Hour), false)
	if err != nil || len(ws) != 1 || ws[0].Skipped != "" {
		t.Fatalf("replay of %s: %+v, %v", id(w2), ws, err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	if err := replay.Wait(wctx, s.States, p.Name, ws, nil); err != nil {
		t.Fatal(err)
	}
	wcancel()
	offset.Add(int64(90 * time.Minute))
	r1 := waitHorizon(w2)
	if got := stateIDs(); !slices.Equal(got, []string{id(w2), id(w3)}) {
		t.Errorf("states after the first retirement: %v, want %s and %s", got, id(w2), id(w3))
	}
	want := expectOf(loaded, assign)
	if r1.Windows != 2 || r1.Rows != want.rows[id(w0)]+want.rows[id(w1)] || !r1.Last.Equal(w1) || r1.AckFloor < uint64(len(base)) {
		t.Errorf("retirement record %+v, want 2 windows, %d rows, last %s, ack floor at least %d", r1, want.rows[id(w0)]+want.rows[id(w1)], id(w1), len(base))
	}
	check("retired 2")

	// 3. A late event of a retired window: dead-lettered as late, even
	// with late: revise; the window is not created again.
	late := []Event{SaleAt("late-retired", 3, w0.Add(10*time.Minute), 5, 9.5)}
	publish(late, "late")
	published++
	lateRetired++
	var entry *dlq.Entry
	waitFor(t, time.Minute, "the late dead letter", func() bool {
		err := dlq.Entries(ctx, s.JS, dlq.Filter{Policy: p.Name}, false, func(e *dlq.Entry) error {
			entry = e
			return nil
		})
		return err == nil && entry != nil
	})
	if entry.Reason != messages.ReasonLate || !strings.Contains(entry.Detail, "window retired (window.retain)") || entry.Window != id(w0) {
		t.Errorf("dead letter: reason %q, detail %q, window %q; want late, window retired, %s", entry.Reason, entry.Detail, entry.Window, id(w0))
	}
	check("late event of a retired window")
	if got := stateIDs(); slices.Contains(got, id(w0)) {
		t.Errorf("window %s was created again: states %v", id(w0), got)
	}

	// 4. Every event delivered again as new.
	if err := s.JS.DeleteConsumer(ctx, p.Source.Stream, messages.CollectorConsumer(p.Name)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the collector notices and makes its consumer again
	waitFor(t, time.Minute, "the redelivered events", func() bool {
		lag, err := inspect.CollectorLag(ctx, s.JS, p.Source.Stream, p.Name)
		return err == nil && lag.Pending == 0 && lag.AckPending == 0 && lag.AckFloor >= uint64(published)
	})
	// Those of the windows not retired make a revision with nothing new.
	waitRevisions(t, ctx, s, p.Name, map[string]int{id(w2): 1, id(w3): 1}, time.Minute)
	check("redelivered")
	if got := stateIDs(); !slices.Equal(got, []string{id(w2), id(w3)}) {
		t.Errorf("states after the redelivery: %v, want %s and %s", got, id(w2), id(w3))
	}

	// 5. The last two windows retired: the horizon only moves forward.
	// (The redelivery made each a revision with nothing new, loaded just now.)
	offset.Add(int64(3 * time.Hour))
	r2 := waitHorizon(h0.Add(4 * time.Hour))
	if got := stateIDs(); len(got) != 0 {
		t.Errorf("states left: %v", got)
	}
	if r2.Windows != 4 || r2.Rows != int64(len(base)) {
		t.Errorf("retirement record %+v, want 4 windows, %d rows", r2, len(base))
	}
	check("retired 4")
	// The delete markers the retired states left are purged once an hour
	// old on the compactors' clock: the windows bucket keeps nothing of
	// them (step 3 ran after the first ones were purged: the horizon alone
	// kept the window from being created again).
	waitFor(t, time.Minute, "the delete markers of retired windows purged", func() bool {
		stream, err := s.JS.Stream(ctx, "KV_"+messages.BucketWindows)
		if err != nil {
			return false
		}
		filter := "$KV." + messages.BucketWindows + "." + messages.WindowKeyFilter(p.Name)
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(filter))
		return err == nil && len(info.State.Subjects) == 0
	})
	_, err = replay.Start(ctx, replay.Config{JS: s.JS, States: s.States, Store: s.Store, Policy: p}, w1, w3, false)
	if !errors.Is(err, replay.ErrRetired) || !strings.Contains(err.Error(), "retired") {
		t.Errorf("replay of retired windows: err = %v, want ErrRetired", err)
	}
	t.Logf("retired %d windows, %d rows, horizon %s", r2.Windows, r2.Rows, r2.Horizon.Format(time.RFC3339))
}
