package inspect

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// SourceLoss is what a policy's source stream no longer holds.
type SourceLoss struct {
	// Removed is the messages the stream no longer holds, on any subject:
	// those below its first sequence and the deleted ones above it.
	Removed int64
	// Expired is the removed messages the collectors' consumer never
	// delivered: recorded by the collectors as they start (the consumer's
	// metadata) plus those below the first sequence and deleted above the
	// consumer's position now.
	Expired int64
	// Exact: the stream holds the policy's subjects only, so Removed and
	// Expired are the policy's events. Otherwise they count any subject's
	// messages and Expired is not recorded by the collectors.
	Exact bool
	// Limits are the stream's limits that remove messages
	// (natsx.SourceStreamWarnings).
	Limits []string
}

// SourceExpired reads what a policy's source stream removed before the
// collectors reached it: one stream info (two with interior deletes) and
// one consumer info. See docs/decisions/0009-source-stream-limits.md
// for what is exact.
func SourceExpired(ctx context.Context, js jetstream.JetStream, p *windows.Policy) (*SourceLoss, error) {
	stream, err := js.Stream(ctx, p.Source.Stream)
	if err != nil {
		return nil, fmt.Errorf("source stream %s: %w", p.Source.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err == nil && info.State.NumDeleted > 0 {
		info, err = stream.Info(ctx, jetstream.WithDeletedDetails(true))
	}
	if err != nil {
		return nil, fmt.Errorf("source stream %s: %w", p.Source.Stream, err)
	}
	st := info.State
	out := &SourceLoss{Exact: natsx.HoldsOnly(info.Config.Subjects, p.Source.Subjects), Limits: natsx.SourceStreamWarnings(info.Config)}
	if st.LastSeq >= st.Msgs {
		out.Removed = int64(st.LastSeq - st.Msgs)
	}
	var rec natsx.Expired
	var delivered uint64
	cons, err := stream.Consumer(ctx, messages.CollectorConsumer(p.Name))
	switch {
	case err == nil:
		ci := cons.CachedInfo()
		delivered = ci.Delivered.Stream
		if out.Exact {
			rec = natsx.ParseExpired(ci.Config.Metadata)
		}
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("collector consumer of %s: %w", p.Name, err)
	}
	n := rec.Count + rec.Gap(st.FirstSeq, delivered)
	from := max(delivered, rec.Through)
	for _, seq := range st.Deleted {
		if seq > from {
			n++
		}
	}
	out.Expired = int64(n)
	return out, nil
}

// heldMessages counts the stream's messages on the policy's subjects.
func heldMessages(ctx context.Context, js jetstream.JetStream, p *windows.Policy) (int64, error) {
	stream, err := js.Stream(ctx, p.Source.Stream)
	if err != nil {
		return 0, fmt.Errorf("source stream %s: %w", p.Source.Stream, err)
	}
	var n int64
	for _, subject := range p.Source.Subjects {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return 0, fmt.Errorf("source stream %s: %w", p.Source.Stream, err)
		}
		for _, c := range info.State.Subjects {
			n += int64(c)
		}
	}
	return n, nil
}
