package wmjetstream

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of SubscriberConfig.
const (
	DefaultAckWait  = 30 * time.Second
	DefaultNakDelay = time.Second
)

// SubscriberConfig configures a Subscriber. Zero values take the documented defaults.
type SubscriberConfig struct {
	// JS is the JetStream context. Required.
	JS jetstream.JetStream
	// Stream is the stream the consumer reads. Required; the stream must exist.
	Stream string
	// Durable is the durable consumer name. Required; no '.', '*', '>' or whitespace.
	Durable string
	// FilterSubjects restricts the consumer to these subjects; empty reads the whole stream.
	FilterSubjects []string
	// AckWait is how long the server waits for an ack before redelivering.
	// Default 30s. With BackOff set, the server uses BackOff[0] for the first redelivery.
	AckWait time.Duration
	// MaxDeliver caps deliveries of one message; 0 or -1 means unlimited.
	MaxDeliver int
	// BackOff is the server's redelivery delay after an ack timeout, per
	// delivery; optional. MaxDeliver must exceed its length when both are set.
	BackOff []time.Duration
	// MaxAckPending caps unacknowledged messages over all subscribers of the
	// durable; 0 means the server default (1000).
	MaxAckPending int
	// InProgressEvery is how often InProgress is sent while a handler works.
	// Default AckWait/3; it must be shorter than AckWait.
	InProgressEvery time.Duration
	// NakDelay is the redelivery delay after a Nack. Default 1s.
	NakDelay time.Duration
	// Workers is how many messages of one subscription are handed to the
	// handler at once (delivered and not yet acked or nacked). Default 1.
	Workers int
	// Key, if set, is a message's ordering key: messages with the same key
	// are handed out one at a time, in the order they were fetched, while
	// messages of other keys go to the other workers. Nil: no ordering
	// beyond Workers.
	Key func(jetstream.Msg) string
	// MaxWaiting caps the messages fetched ahead and held back, per
	// subscription, until a worker is free and no message with the same Key
	// is in the handler; they get InProgress every InProgressEvery too.
	// Holding them lets a message of another key overtake a long run of one
	// key. Default 0: a message is fetched only when a worker is free. The
	// consumer's MaxAckPending caps the sum over all subscriptions.
	MaxWaiting int
	// Logger receives fetch and ack errors. Default: no logging.
	Logger watermill.LoggerAdapter
}

func (c *SubscriberConfig) setDefaults() {
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.InProgressEvery == 0 {
		c.InProgressEvery = c.AckWait / 3
	}
	if c.NakDelay == 0 {
		c.NakDelay = DefaultNakDelay
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
	if c.Workers == 0 {
		c.Workers = 1
	}
}

// Validate reports every problem of the configuration at once.
func (c *SubscriberConfig) Validate() error {
	var errs []error
	if c.JS == nil {
		errs = append(errs, errors.New("JS: required"))
	}
	if c.Stream == "" {
		errs = append(errs, errors.New("Stream: required"))
	}
	if c.Durable == "" {
		errs = append(errs, errors.New("Durable: required"))
	} else if strings.ContainsAny(c.Durable, ".*> \t\r\n") {
		errs = append(errs, fmt.Errorf("Durable: %q must not contain '.', '*', '>' or whitespace", c.Durable))
	}
	for i, s := range c.FilterSubjects {
		if s == "" {
			errs = append(errs, fmt.Errorf("FilterSubjects[%d]: empty", i))
		}
	}
	if c.AckWait < 0 {
		errs = append(errs, fmt.Errorf("AckWait: %s, want > 0", c.AckWait))
	}
	if c.MaxDeliver < -1 {
		errs = append(errs, fmt.Errorf("MaxDeliver: %d, want -1, 0 (unlimited) or > 0", c.MaxDeliver))
	}
	if len(c.BackOff) > 0 && c.MaxDeliver > 0 && c.MaxDeliver <= len(c.BackOff) {
		errs = append(errs, fmt.Errorf("MaxDeliver: %d, must exceed the %d BackOff steps", c.MaxDeliver, len(c.BackOff)))
	}
	for i, d := range c.BackOff {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("BackOff[%d]: %s, want > 0", i, d))
		}
	}
	if c.MaxAckPending < -1 {
		errs = append(errs, fmt.Errorf("MaxAckPending: %d, want -1, 0 (server default) or > 0", c.MaxAckPending))
	}
	if c.InProgressEvery <= 0 || (c.AckWait > 0 && c.InProgressEvery >= c.AckWait) {
		errs = append(errs, fmt.Errorf("InProgressEvery: %s, want > 0 and < AckWait (%s)", c.InProgressEvery, c.AckWait))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("Workers: %d, want >= 1", c.Workers))
	}
	if c.MaxWaiting < 0 {
		errs = append(errs, fmt.Errorf("MaxWaiting: %d, want >= 0", c.MaxWaiting))
	}
	if c.NakDelay < 0 {
		errs = append(errs, fmt.Errorf("NakDelay: %s, want >= 0", c.NakDelay))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wmjetstream config: %w", err)
	}
	return nil
}

func (c *SubscriberConfig) consumerConfig() jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:       c.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		BackOff:       c.BackOff,
		MaxAckPending: c.MaxAckPending,
	}
	switch len(c.FilterSubjects) {
	case 0:
	case 1:
		cc.FilterSubject = c.FilterSubjects[0]
	default:
		cc.FilterSubjects = c.FilterSubjects
	}
	return cc
}
