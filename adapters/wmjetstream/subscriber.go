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
// its messages, up to Workers at once (see SubscriberConfig.Key). topic is only used for logging. The channel is
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

// Close stops fetching, naks the messages held back, waits for handed-out
// messages to be acked or nacked (or for their Subscribe ctx to end) and
// closes the output channels. It is
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

	// slots bounds the messages held: handed out plus waiting. A slot is
	// taken before a fetch and given back when its message is settled.
	slots := make(chan struct{}, s.cfg.Workers+s.cfg.MaxWaiting)
	fetched := make(chan jetstream.Msg)
	fetcherDone := make(chan struct{})
	go func() {
		defer close(fetcherDone)
		s.fetch(fetchCtx, cons, slots, fetched, logger)
	}()
	d := dispatcher{s: s, slots: slots, ctx: ctx, out: out, logger: logger, busy: map[string]bool{}, done: make(chan string, s.cfg.Workers)}
	d.loop(slots, fetched, fetcherDone)
}

// fetch pulls one message per free slot and passes it on, until fetchCtx
// ends or the connection closes.
func (s *Subscriber) fetch(fetchCtx context.Context, cons jetstream.Consumer, slots chan struct{}, fetched chan<- jetstream.Msg, logger watermill.LoggerAdapter) {
	for {
		select {
		case slots <- struct{}{}:
		case <-fetchCtx.Done():
			return
		}
		msg, err := cons.Next(jetstream.FetchContext(fetchCtx))
		if err != nil {
			<-slots
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
		select {
		case fetched <- msg:
		case <-fetchCtx.Done():
			// Not handed out: let it go back at once rather than after AckWait.
			if err := msg.Nak(); err != nil {
				logger.Error("Nak of undelivered message failed", err, nil)
			}
			return
		}
	}
}

// waiting is a fetched message not yet handed out.
type waiting struct {
	jm  jetstream.Msg
	key string
}

// dispatcher hands fetched messages to the handler: at most Workers at
// once, one per Key at a time, the oldest waiting message first. Only its
// loop goroutine touches its fields but done.
type dispatcher struct {
	s      *Subscriber
	ctx    context.Context // the Subscribe ctx: the messages' context
	out    chan<- *message.Message
	logger watermill.LoggerAdapter

	waiting  []waiting       // fetched, in fetch order
	busy     map[string]bool // keys with a message in the handler
	inFlight int             // messages in the handler
	done     chan string     // the key of each settled message
	slots    chan struct{}   // see run
	stopped  bool            // no more hand-outs: ctx ended or Close
}

func (d *dispatcher) loop(slots chan struct{}, fetched <-chan jetstream.Msg, fetcherDone <-chan struct{}) {
	ticker := time.NewTicker(d.s.cfg.InProgressEvery)
	defer ticker.Stop()
	for {
		select {
		case jm := <-fetched:
			key := ""
			if d.s.cfg.Key != nil {
				key = d.s.cfg.Key(jm)
			}
			d.waiting = append(d.waiting, waiting{jm: jm, key: key})
		case key := <-d.done:
			d.inFlight--
			delete(d.busy, key)
			<-slots
		case <-ticker.C:
			for _, w := range d.waiting {
				if err := w.jm.InProgress(); err != nil {
					d.logger.Error("InProgress of waiting message failed", err, watermill.LogFields{"subject": w.jm.Subject()})
				}
			}
		case <-fetcherDone:
			fetcherDone = nil // fetching ended (Close, ctx or connection): stop handing out
			d.stopped = true
		}
		if !d.stopped {
			d.dispatch()
		}
		if d.stopped {
			// Hand back what never reached the handler, then wait for the
			// messages in the handler to be settled.
			for _, w := range d.waiting {
				if err := w.jm.Nak(); err != nil {
					d.logger.Error("Nak of undelivered message failed", err, watermill.LogFields{"subject": w.jm.Subject()})
				}
				<-slots
			}
			d.waiting = nil
			// A hand-out fails only when ctx ended or Close began, and
			// either ends fetchCtx, so the fetcher stops too.
			if d.inFlight == 0 && fetcherDone == nil {
				return
			}
		}
	}
}

// dispatch hands out waiting messages, oldest first, while a worker is free,
// skipping those whose key is busy.
func (d *dispatcher) dispatch() {
	for i := 0; i < len(d.waiting) && d.inFlight < d.s.cfg.Workers; {
		w := d.waiting[i]
		if d.s.cfg.Key != nil && d.busy[w.key] {
			i++
			continue
		}
		d.waiting = append(d.waiting[:i], d.waiting[i+1:]...)
		wm, fields := toMessage(d.ctx, w.jm)
		select {
		case d.out <- wm:
		case <-d.ctx.Done():
			d.giveBack(w.jm, fields)
			return
		case <-d.s.closing:
			d.giveBack(w.jm, fields)
			return
		}
		d.inFlight++
		if d.s.cfg.Key != nil {
			d.busy[w.key] = true
		}
		go func() {
			d.s.settle(d.ctx, w.jm, wm, fields, d.logger)
			d.done <- w.key
		}()
	}
}

// giveBack naks a message that could not be handed out (ctx ended or Close
// began), so that it goes back at once rather than after AckWait, and stops
// the hand-outs.
func (d *dispatcher) giveBack(jm jetstream.Msg, fields watermill.LogFields) {
	if err := jm.Nak(); err != nil {
		d.logger.Error("Nak of undelivered message failed", err, fields)
	}
	<-d.slots
	d.stopped = true
}

// settle waits for the handler's verdict on a handed-out message and
// settles it, sending InProgress while the handler works. It returns when
// the message is acked, nacked or terminated, or when ctx ends (then it is
// nacked: abandoned mid-work).
func (s *Subscriber) settle(ctx context.Context, jm jetstream.Msg, wm *message.Message, fields watermill.LogFields, logger watermill.LoggerAdapter) {
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
				return
			}
			// The work is done: confirm the ack even when ctx just ended.
			ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := jm.DoubleAck(ackCtx)
			cancel()
			if err != nil {
				logger.Error("Ack failed; the message may be delivered again", err, fields)
			}
			return
		case <-wm.Nacked():
			if err := jm.NakWithDelay(s.cfg.NakDelay); err != nil {
				logger.Error("Nak failed; the message is redelivered after AckWait", err, fields)
			}
			return
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
			return
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
