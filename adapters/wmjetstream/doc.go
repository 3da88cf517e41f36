// Package wmjetstream is a watermill message.Subscriber over a JetStream
// durable pull consumer, built on the nats.go jetstream package.
//
// # Consumer
//
// Subscribe creates or updates the durable consumer named in the
// SubscriberConfig (explicit ack policy) and pulls from it. The consumer
// configuration, not the watermill topic, decides which subjects are read;
// the topic is only used in log fields. Several Subscribe calls, in one
// process or many, share the durable and compete for its messages.
//
// # Mapping
//
// A JetStream message becomes a watermill message with
//   - UUID: the Nats-Msg-Id header if present, else the stream sequence;
//   - Metadata: every NATS header (its first value), plus "nats_subject",
//     "nats_stream_seq" and "nats_num_delivered";
//   - Payload: the message data;
//   - Context: the ctx given to Subscribe.
//
// # Ack contract
//
// Each subscription hands out up to Workers messages at once (default 1:
// the next one is fetched only after the previous one was acked or
// nacked). With a Key, messages of one key are handed out one at a time,
// in fetch order, and messages of other keys overtake those waiting. Up to
// MaxWaiting messages are fetched ahead and held until they can be handed
// out (default 0: none); they are sent InProgress like the handed-out
// ones, so no held message is redelivered while it waits.
//
//   - The handler owns the outcome. Ack() on the watermill message becomes a
//     JetStream DoubleAck (the server confirms it), bounded by the Subscribe
//     ctx; Nack() becomes NakWithDelay(NakDelay), and the server redelivers
//     the message after the delay (within the consumer's MaxDeliver).
//   - While the handler works, the subscriber sends InProgress every
//     InProgressEvery (default AckWait/3), so long work is not redelivered to
//     another instance.
//   - If the Subscribe ctx ends before the handler decided, the message is
//     neither acked nor nacked: JetStream redelivers it after AckWait. Handlers
//     must therefore be idempotent (at-least-once delivery).
//   - Ack and nak errors are never ignored: each is logged once through the
//     configured logger with the message's subject and stream sequence (the
//     subscriber has nobody to return them to). A failed DoubleAck means the
//     message may be delivered again.
//
// # Shutdown
//
// Close stops fetching, naks the messages held (they are redelivered at
// once), waits until every handed-out message was acked or nacked (or its
// Subscribe ctx ended), then closes the output channels.
// Canceling the Subscribe ctx stops at once, without acking. Close is
// idempotent.
package wmjetstream
