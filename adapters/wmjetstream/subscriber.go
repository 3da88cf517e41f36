package wmjetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Metadata keys the subscriber adds next to the NATS headers.
const (
	MetaSubject      = "nats_subject"
	MetaStreamSeq    = "nats_stream_seq"
	MetaNumDelivered = "nats_num_delivered"
	// MetaTerminate, set by a handler on a message it gives up on for good
	// (poison), makes the subscriber settle the acked message with Term
	// instead of Ack: the server stops redelivering it and emits a
	// MSG_TERMINATED advisory that operators can watch. The value is the
	// reason, logged with the termination. (Term, not TermWithReason: the
	// reason form needs nats-server 2.10.4+, and an older server would
	// ignore the unknown ack and redeliver the message forever.)
	MetaTerminate = "windrow_terminate"
)

// fetchRetryDelay is the pause after a failed fetch before the next one.
const fetchRetryDelay = 250 * time.Millisecond

// Subscriber is a watermill message.Subscriber over a JetStream durable pull
// consumer. See the package documentation for its ack contract.
type Subscriber struct {
	cfg    SubscriberConfig
	logger watermill.LoggerAdapter

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber checks cfg and returns a Subscriber. It does not talk to the
// server: the consumer is created by Subscribe.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.BackOff = append([]time.Duration(nil), cfg.BackOff...)
	cfg.FilterSubjects = append([]string(nil), cfg.FilterSubjects...)
	return &Subscriber{
		cfg:     cfg,
		logger:  cfg.Logger.With(watermill.LogFields{"stream": cfg.Stream, "durable": cfg.Durable}),
		closing: make(chan struct{}),
	}, nil
}

// Subscribe creates or updates the durable consumer and returns a channel of
// its messages, one at a time. topic is only used for logging. The channel is
// closed when ctx ends or Close is called.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()

	cons, err := s.cfg.JS.CreateOrUpdateConsumer(ctx, s.cfg.Stream, s.cfg.consumerConfig())
	if err != nil {
		s.wg.Done()
		return nil, fmt.Errorf("create consumer %s on stream %s: %w", s.cfg.Durable, s.cfg.Stream, err)
	}
	out := make(chan *message.Message)
	go s.run(ctx, cons, out, s.logger.With(watermill.LogFields{"topic": topic}))
	return out, nil
}

// Close stops fetching, waits for in-flight messages to be acked or nacked
// (or for their Subscribe ctx to end) and closes the output channels. It is
// idempotent and safe to call concurrently.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Subscriber) run(ctx context.Context, cons jetstream.Consumer, out chan<- *message.Message, logger watermill.LoggerAdapter) {
	defer s.wg.Done()
	defer close(out)

	// fetchCtx ends on Close as well, so a waiting fetch returns at once;
	// messages already delivered keep ctx and are finished.
	fetchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-fetchCtx.Done():
		}
	}()

	for fetchCtx.Err() == nil {
		msg, err := cons.Next(jetstream.FetchContext(fetchCtx))
		if err != nil {
			if fetchCtx.Err() != nil {
				return
			}
			if errors.Is(err, nats.ErrTimeout) {
				continue
			}
			if errors.Is(err, jetstream.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionClosed) {
				logger.Error("Fetch stopped: connection closed", err, nil)
				return
			}
			logger.Error("Fetch failed, retrying", err, nil)
			select {
			case <-fetchCtx.Done():
				return
			case <-time.After(fetchRetryDelay):
			}
			continue
		}
		if !s.handle(ctx, msg, out, logger) {
			return
		}
	}
}

// handle delivers one message and settles it. It reports false when ctx
// ended or the subscriber closed before the message could be delivered.
func (s *Subscriber) handle(ctx context.Context, jm jetstream.Msg, out chan<- *message.Message, logger watermill.LoggerAdapter) bool {
	wm, fields := toMessage(ctx, jm)
	select {
	case out <- wm:
	case <-ctx.Done():
		// Not handed out: let it go back at once rather than after AckWait.
		if err := jm.Nak(); err != nil {
			logger.Error("Nak of undelivered message failed", err, fields)
		}
		return false
	case <-s.closing:
		// Not handed out: let it go back at once rather than after AckWait.
		if err := jm.Nak(); err != nil {
			logger.Error("Nak of undelivered message failed", err, fields)
		}
		return false
	}

	ticker := time.NewTicker(s.cfg.InProgressEvery)
	defer ticker.Stop()
	for {
		select {
		case <-wm.Acked():
			if reason := wm.Metadata.Get(MetaTerminate); reason != "" {
				if err := jm.Term(); err != nil {
					logger.Error("Term failed; the message may be delivered again", err, fields)
				} else {
					logger.Info("message terminated", fields.Add(watermill.LogFields{"reason": reason}))
				}
				return true
			}
			// The work is done: confirm the ack even when ctx just ended.
			ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := jm.DoubleAck(ackCtx)
			cancel()
			if err != nil {
				logger.Error("Ack failed; the message may be delivered again", err, fields)
			}
			return true
		case <-wm.Nacked():
			if err := jm.NakWithDelay(s.cfg.NakDelay); err != nil {
				logger.Error("Nak failed; the message is redelivered after AckWait", err, fields)
			}
			return true
		case <-ticker.C:
			if err := jm.InProgress(); err != nil {
				logger.Error("InProgress failed", err, fields)
			}
		case <-ctx.Done():
			// Abandoned mid-work: hand it back at once. A redelivery is
			// harmless (the handler is idempotent); waiting out AckWait
			// would only delay it.
			if err := jm.Nak(); err != nil {
				logger.Error("Nak of abandoned message failed; it is redelivered after AckWait", err, fields)
			}
			return false
		}
	}
}

// toMessage maps a JetStream message to a watermill message (see the package doc).
func toMessage(ctx context.Context, jm jetstream.Msg) (*message.Message, watermill.LogFields) {
	md := message.Metadata{}
	for k, v := range jm.Headers() {
		if len(v) > 0 {
			md[k] = v[0]
		}
	}
	md[MetaSubject] = jm.Subject()
	var seq string
	if meta, err := jm.Metadata(); err == nil {
		seq = strconv.FormatUint(meta.Sequence.Stream, 10)
		md[MetaStreamSeq] = seq
		md[MetaNumDelivered] = strconv.FormatUint(meta.NumDelivered, 10)
	}
	uuid := jm.Headers().Get(jetstream.MsgIDHeader)
	if uuid == "" {
		uuid = seq
	}
	if uuid == "" {
		uuid = watermill.NewUUID()
	}
	wm := message.NewMessage(uuid, jm.Data())
	wm.Metadata = md
	wm.SetContext(ctx)
	return wm, watermill.LogFields{"subject": jm.Subject(), "stream_seq": seq, "message_uuid": uuid}
}
