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
type Publisher struct {
	JS jetstream.JetStream
	// Window is how many publishes may await their acks. Default 4096.
	Window int
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
	for i := 0; i < n; i++ {
		subject, data, id := next(i)
		m := nats.NewMsg(subject)
		m.Data = data
		if id != "" {
			m.Header.Set(jetstream.MsgIDHeader, id)
		}
		if len(queue) == window {
			if err := wait(queue[0]); err != nil {
				return err
			}
			queue = queue[1:]
		}
		f, err := publishAsync(p.JS, m)
		if err != nil {
			return fmt.Errorf("publish event %d: %w", i, err)
		}
		queue = append(queue, inflight{f: f, i: i})
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

// PublishEvents publishes generated events with msg ids "<prefix>-<index>".
func (p *Publisher) PublishEvents(ctx context.Context, events []Event, idPrefix string) error {
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
