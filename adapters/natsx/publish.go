package natsx

import (
	"context"
	"errors"
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

// PublishOnce stores m on its subject only if the subject holds no message
// yet (Nats-Expected-Last-Subject-Sequence: 0), so that a record written
// once per subject stays single for as long as the stream keeps it, beyond
// any duplicate window. stored is false when the subject already had a
// message: not an error, the record is there.
func PublishOnce(ctx context.Context, js jetstream.JetStream, m *nats.Msg) (stored bool, err error) {
	_, err = js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0))
	if IsWrongLastSequence(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("publish to %s: %w", m.Subject, err)
	}
	return true, nil
}

// IsWrongLastSequence reports whether a publish was refused because its
// expected last sequence (of the stream or of the subject) did not match:
// for a publish that expects an empty subject, the subject holds a message.
func IsWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
