package natsx

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/messages"
)

// Publish stores one windrow message synchronously, idempotently by its MsgID.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, m messages.Message, hdr nats.Header) (*jetstream.PubAck, error) {
	data, err := messages.Encode(m)
	if err != nil {
		return nil, err
	}
	out := nats.NewMsg(subject)
	out.Data = data
	for k, v := range hdr {
		out.Header[k] = v
	}
	out.Header.Set(messages.HeaderType, m.Type())
	telemetry.Inject(ctx, out.Header) // the span of ctx, if any, becomes the receiver's parent
	ack, err := js.PublishMsg(ctx, out, jetstream.WithMsgID(m.MsgID()))
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", m.Type(), err)
	}
	return ack, nil
}
