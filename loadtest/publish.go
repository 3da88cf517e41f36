package loadtest

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/flush"
)

// Publisher publishes events asynchronously with bounded in-flight publishes;
// each event carries a Nats-Msg-Id so a retried publish is stored once.
//
// Events are sent in the order given, and the stream stores them in that
// order unless a publish fails: the event is then sent again (as is one the
// client re-sends by itself after a "no responders" answer), after events
// that were published while it was in flight, and those may already be
// stored. With Window events in flight, the stream's order can then stray
// from event-time order by hours of event time, and a pipeline whose
// watermark came from the newer events rightly drops the re-sent one as
// late. MaxOutOfOrder bounds that.
type Publisher struct {
	JS jetstream.JetStream
	// Window is how many publishes may await their acks. Default 4096.
	Window int
	// MaxOutOfOrder, if positive, holds an event back until every event
	// published before it whose event time is more than MaxOutOfOrder older
	// is acknowledged (stored), so that no event can be stored after an
	// event more than MaxOutOfOrder newer, even when its publish failed and
	// was sent again. Set it to the max_out_of_order of the policies that
	// read the events (or less). It needs the events' times: EventTime, or
	// Event.Time with PublishEvents. Events given in event-time order are
	// held back only where their time jumps by more than MaxOutOfOrder.
	MaxOutOfOrder time.Duration
	// EventTime, if set, returns event i's event time (zero: none, e.g. a
	// malformed event; such an event is never held back nor holds back
	// others). Publish calls it right after next(i). PublishEvents sets it
	// from Event.Time when it is nil.
	EventTime func(i int) time.Time
	// OnProgress, if set, is called with the number of acknowledged publishes.
	OnProgress func(acked int)
	// OnAck, if set, is called with each event's index and the stream's
	// PubAck, in publishing order, before OnProgress. A PubAck with Duplicate
	// set means the stream stored nothing: it already held a message with
	// the same Nats-Msg-Id within its duplicate window (Sequence is that
	// message's). retried is true when the event was published again after
	// an error; a duplicate then usually answers an earlier attempt of the
	// same event that was stored but whose ack was lost.
	OnAck func(i int, ack *jetstream.PubAck, retried bool)
	// FlushAfter names policies whose input is declared complete (Flush)
	// after each Publish, as `windrow publish --flush` does: their last
	// windows close once it is staged, not by the idle rule's elapsed time.
	FlushAfter []string
}

// Publish sends every event and waits until JetStream stored all of them.
// ids[i] is the Nats-Msg-Id of events[i] (empty: none).
func (p *Publisher) Publish(ctx context.Context, n int, next func(i int) (subject string, data []byte, id string)) error {
	window := p.Window
	if window == 0 {
		window = 4096
	}
	type inflight struct {
		f jetstream.PubAckFuture
		i int
	}
	queue := make([]inflight, 0, window)
	// oldest holds the in-flight events with an event time, a subsequence
	// of queue whose times strictly increase, so that oldest[0] is the
	// oldest event in flight (a sliding-window minimum): an event is
	// dropped from it once a later-published one is as old or older.
	type timed struct {
		i int
		t time.Time
	}
	var oldest []timed
	bounded := p.MaxOutOfOrder > 0 && p.EventTime != nil
	acked := 0
	wait := func(fl inflight) error {
		for attempt := 0; ; attempt++ {
			select {
			case ack := <-fl.f.Ok():
				if p.OnAck != nil {
					p.OnAck(fl.i, ack, attempt > 0)
				}
				acked++
				if p.OnProgress != nil {
					p.OnProgress(acked)
				}
				return nil
			case err := <-fl.f.Err():
				if attempt >= 5 {
					return fmt.Errorf("publish event %d: %w", fl.i, err)
				}
				// Republish the same message: its msg id makes this idempotent.
				time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
				f, perr := publishAsync(p.JS, fl.f.Msg())
				if perr != nil {
					return fmt.Errorf("publish event %d: %w", fl.i, perr)
				}
				fl.f = f
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	// waitOldest waits for the ack of the first event in flight.
	waitOldest := func() error {
		if err := wait(queue[0]); err != nil {
			return err
		}
		if len(oldest) > 0 && oldest[0].i == queue[0].i {
			oldest = oldest[1:]
		}
		queue = queue[1:]
		return nil
	}
	for i := 0; i < n; i++ {
		subject, data, id := next(i)
		m := nats.NewMsg(subject)
		m.Data = data
		if id != "" {
			m.Header.Set(jetstream.MsgIDHeader, id)
		}
		var t time.Time
		if bounded {
			t = p.EventTime(i)
		}
		if !t.IsZero() {
			// Acks come in publishing order, so the events published
			// before the oldest are waited for too: no harm, they are
			// older in the stream's order.
			cutoff := t.Add(-p.MaxOutOfOrder)
			for len(oldest) > 0 && oldest[0].t.Before(cutoff) {
				if err := waitOldest(); err != nil {
					return err
				}
			}
		}
		if len(queue) == window {
			if err := waitOldest(); err != nil {
				return err
			}
		}
		f, err := publishAsync(p.JS, m)
		if err != nil {
			return fmt.Errorf("publish event %d: %w", i, err)
		}
		queue = append(queue, inflight{f: f, i: i})
		if !t.IsZero() {
			for len(oldest) > 0 && !oldest[len(oldest)-1].t.Before(t) {
				oldest = oldest[:len(oldest)-1]
			}
			oldest = append(oldest, timed{i: i, t: t})
		}
	}
	for _, fl := range queue {
		if err := wait(fl); err != nil {
			return err
		}
	}
	if len(p.FlushAfter) > 0 {
		return p.Flush(ctx, p.FlushAfter...)
	}
	return nil
}

// publishAsync is PublishMsgAsync, tried again a few times (backoff 100ms
// to 500ms) when it fails at once: the connection broke as the server it
// was on went away (a cluster node stopped), and the client reconnects to
// another.
func publishAsync(js jetstream.JetStream, m *nats.Msg) (jetstream.PubAckFuture, error) {
	for attempt := 0; ; attempt++ {
		f, err := js.PublishMsgAsync(m)
		if err == nil || attempt >= 5 {
			return f, err
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
}

// PublishEvents publishes generated events with msg ids "<prefix>-<index>";
// MaxOutOfOrder uses their Time unless EventTime is set.
func (p *Publisher) PublishEvents(ctx context.Context, events []Event, idPrefix string) error {
	if p.EventTime == nil {
		q := *p
		q.EventTime = func(i int) time.Time { return events[i].Time }
		p = &q
	}
	return p.Publish(ctx, len(events), func(i int) (string, []byte, string) {
		return events[i].Subject, events[i].Data, fmt.Sprintf("%s-%d", idPrefix, i)
	})
}

// Flush declares the input of the policies complete up to now (as `windrow
// flush`): the producer is done, so their compactors close the last windows
// once everything is staged and the source is quiet for idle_timeout.
func (p *Publisher) Flush(ctx context.Context, policies ...string) error {
	kv, err := p.JS.KeyValue(ctx, messages.BucketWatermarks)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return flush.Request(ctx, statestore.NewWatermarks(kv), time.Now(), "loadtest", policies...)
}
