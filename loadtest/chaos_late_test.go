//go:build chaos

package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
)

// lateRounds publishes late events (-chaos.late-share): events for windows
// that are already loaded (LOADED, or being revised), in rounds spread over
// the publishing, so that they are dead-lettered, dropped or make
// revisions (as window.late says) while the killer works. Every
// round sends events to the oldest loaded window, which is therefore revised
// again and again (and gets late events while a revision of it is in
// flight), and to up to two other loaded windows drawn at random. Late event j has msg id
// ids+(first+j), after the generated events' ids; which windows
// a round aims at depends on what is loaded when it starts, so the events'
// times are recorded for the expectation (chaosExpect.addLate).
type lateRounds struct {
	js       jetstream.JetStream
	states   *statestore.Store
	policy   string
	subject  string // prefix of the subjects, followed by ".store-NNN"
	rng      *rand.Rand
	seed     uint64
	ids      string // msg id prefix (chaosExpect.ids)
	first    int    // index of the first late event
	events   int    // late events in all
	rounds   int
	start    time.Time
	span     time.Duration // the rounds spread over this
	burst    time.Duration // how long a round's publishing takes
	waitLoad time.Duration // bound on a round's wait for a LOADED window

	times   []time.Time // event time of each late event, in order
	qty     []int8
	log     []lateRound
	retries int64
}

// lateRound is what one round did.
type lateRound struct {
	at      time.Duration // since start
	events  int
	windows []string
}

// run publishes the rounds; it returns when all are published or ctx ends.
func (l *lateRounds) run(ctx context.Context, logf func(format string, args ...any)) error {
	for k := range l.rounds {
		n := l.events*(k+1)/l.rounds - l.events*k/l.rounds
		at := l.start.Add(l.span * time.Duration(k+1) / time.Duration(l.rounds+1))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(at)):
		}
		targets, err := l.loaded(ctx)
		if err != nil {
			return fmt.Errorf("late round %d: %w", k+1, err)
		}
		rec := lateRound{at: time.Since(l.start), events: n}
		for _, w := range targets {
			rec.windows = append(rec.windows, w.ID())
		}
		base := len(l.times)
		msgs := make([]*nats.Msg, n)
		for i := range msgs {
			w := targets[i%len(targets)]
			t := w.WindowStart.Add(time.Duration(l.rng.Int64N(int64(w.WindowEnd.Sub(w.WindowStart))))).Truncate(time.Millisecond)
			qty := int64(1 + l.rng.IntN(5))
			store := 1 + l.rng.IntN(20)
			ev := SaleAt(fmt.Sprintf("late-%d-%d", l.seed, base+i), store, t, qty, float64(qty*int64(150+l.rng.IntN(2500)))/100)
			m := nats.NewMsg(l.subject + strings.TrimPrefix(ev.Subject, "events.sales"))
			m.Data = ev.Data
			m.Header.Set(jetstream.MsgIDHeader, l.ids+strconv.Itoa(l.first+base+i))
			msgs[i] = m
			l.times = append(l.times, t)
			l.qty = append(l.qty, int8(qty))
		}
		pub := &steadyPublisher{js: l.js, rate: float64(n) / l.burst.Seconds(), inflight: 256, retryFor: 90 * time.Second}
		if err := pub.run(ctx, n, func(i int) *nats.Msg { return msgs[i] }); err != nil {
			return fmt.Errorf("late round %d: %w", k+1, err)
		}
		l.retries += pub.retries.Load()
		l.log = append(l.log, rec)
		logf("late round %d at %7s: %d late events for the loaded windows %s", k+1, rec.at.Round(100*time.Millisecond), n, strings.Join(rec.windows, " "))
	}
	return nil
}

// loaded waits until a window is loaded and returns the round's targets:
// the oldest loaded window, then up to two others at random. A window
// under a revision (SEALED or COMPACTED, revision ≥ 1) was loaded before:
// its late events wait for the revision after.
func (l *lateRounds) loaded(ctx context.Context) ([]*messages.WindowState, error) {
	deadline := time.Now().Add(l.waitLoad)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second) // a request lost in a leader change
		ws, err := inspect.Windows(pctx, l.states, l.policy)
		pcancel()
		if err == nil {
			ws = slices.DeleteFunc(ws, func(w *messages.WindowState) bool {
				revising := w.Revision > 0 && (w.Status == messages.StatusSealed || w.Status == messages.StatusCompacted)
				return w.Status != messages.StatusLoaded && !revising
			})
			if len(ws) > 0 {
				slices.SortFunc(ws, func(a, b *messages.WindowState) int { return a.WindowStart.Compare(b.WindowStart) })
				rest := ws[1:]
				l.rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
				return ws[:1+min(2, len(rest))], nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("no window LOADED within %s: %w", l.waitLoad, err)
			}
			return nil, fmt.Errorf("no window LOADED within %s", l.waitLoad)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
