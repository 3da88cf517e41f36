//go:build chaos

package loadtest

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// steadyPublisher publishes events at a steady rate, each with its own
// Nats-Msg-Id. A publish that fails (the server restarting, an ack lost or
// timed out) is sent again with the same id, in publish order, until it is
// stored or retryFor has passed; the stream's duplicate window (2 minutes
// for source streams windrow creates) must be longer than retryFor, so a
// retry of a publish that was stored after all is dropped as a duplicate.
type steadyPublisher struct {
	js       jetstream.JetStream // made with jetstream.WithPublishAsyncTimeout, so a lost publish fails
	rate     float64             // events per second
	inflight int                 // publishes awaiting their acks
	retryFor time.Duration

	retries atomic.Int64 // publishes sent again
}

type pendingPub struct {
	i   int
	m   *nats.Msg
	f   jetstream.PubAckFuture // nil if the publish could not even be sent
	err error
}

// run publishes n events; next(i) builds event i.
func (p *steadyPublisher) run(ctx context.Context, n int, next func(i int) *nats.Msg) error {
	start := time.Now()
	var queue []pendingPub
	for i := 0; i < n || len(queue) > 0; {
		// Send what is due, as far as the in-flight window allows.
		due := min(n, int(time.Since(start).Seconds()*p.rate)+1)
		for ; i < due && len(queue) < p.inflight; i++ {
			m := next(i)
			f, err := p.js.PublishMsgAsync(m)
			queue = append(queue, pendingPub{i: i, m: m, f: f, err: err})
		}
		// Settle what is done; wait for the oldest publish when the window
		// is full or everything is sent.
		wait := len(queue) >= p.inflight || i == n
		var err error
		if queue, err = p.settle(ctx, queue, wait); err != nil {
			return err
		}
		if wait {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(max(time.Until(start.Add(time.Duration(float64(i)/p.rate*float64(time.Second)))), 200*time.Microsecond)):
		}
	}
	return nil
}

// settle removes finished publishes from the head of the queue, in order,
// retrying any that failed. With wait it first waits for the head.
func (p *steadyPublisher) settle(ctx context.Context, queue []pendingPub, wait bool) ([]pendingPub, error) {
	for len(queue) > 0 {
		h := queue[0]
		err := h.err
		if h.f != nil {
			if wait {
				select {
				case <-h.f.Ok():
				case err = <-h.f.Err():
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			} else {
				select {
				case <-h.f.Ok():
				case err = <-h.f.Err():
				default:
					return queue, nil
				}
			}
		}
		if err != nil {
			if err := p.retry(ctx, h, err); err != nil {
				return nil, err
			}
		}
		queue = queue[1:]
		wait = false
	}
	return queue, nil
}

// retry publishes a failed event again, same message and msg id, until it
// is stored.
func (p *steadyPublisher) retry(ctx context.Context, pp pendingPub, last error) error {
	first := time.Now()
	for attempt := 1; ; attempt++ {
		if time.Since(first) > p.retryFor {
			return fmt.Errorf("event %d (msg id %s) not stored after retrying for %s: %w", pp.i, pp.m.Header.Get(jetstream.MsgIDHeader), p.retryFor, last)
		}
		p.retries.Add(1)
		if attempt > 1 { // the first retry goes at once: most failures are one disconnect
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(time.Duration(attempt)*50*time.Millisecond, 500*time.Millisecond)):
			}
		}
		f, err := p.js.PublishMsgAsync(pp.m)
		if err != nil {
			last = err
			continue
		}
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			last = err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
