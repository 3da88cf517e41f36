package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnsafeSourceStream is returned for a source stream windrow refuses to
// collect from: one that removes events by itself as they are consumed
// (work-queue retention).
var ErrUnsafeSourceStream = errors.New("unsafe source stream")

// CheckSourceStream returns an error wrapping ErrUnsafeSourceStream if
// stream exists and windrow refuses to collect from it; nil if it is fine
// or does not exist yet. Callers check before storing a policy, so that a
// refused one is not stored.
func CheckSourceStream(ctx context.Context, js jetstream.JetStream, stream string) error {
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("source stream %s: %w", stream, err)
	}
	return checkSourceStream(s.CachedInfo().Config)
}

// checkSourceStream refuses a source stream windrow cannot collect from
// safely (see docs/decisions/0009-source-stream-limits.md).
func checkSourceStream(cfg jetstream.StreamConfig) error {
	if cfg.Retention == jetstream.WorkQueuePolicy {
		return fmt.Errorf("%w: stream %s has work-queue retention: each message goes to one consumer and is removed once acknowledged, "+
			"so windrow and any other consumer of the policy's subjects would split the events between them, and reconcile and "+
			"replay --from-stream could not see what was collected; use limits retention (mirror the stream into one if it must stay a work queue)",
			ErrUnsafeSourceStream, cfg.Name)
	}
	return nil
}

// SourceStreamWarnings says, one sentence each, how a source stream's
// limits and retention can remove events before windrow collected them.
// It is empty for a stream that keeps what it was sent, like the ones
// EnsureSourceStream creates. A limit with discard new is no loss: the
// stream refuses the publish and the producer sees the error.
func SourceStreamWarnings(cfg jetstream.StreamConfig) []string {
	const lost = "events not collected before they are pushed out are lost"
	var out []string
	if cfg.Retention == jetstream.InterestPolicy {
		out = append(out, fmt.Sprintf("stream %s has interest retention: a message is removed once every bound consumer acknowledged it, "+
			"and at once while none is bound: events published before windrow's collector consumer exists are lost, and reconcile "+
			"cannot count events the stream no longer holds; use limits retention", cfg.Name))
	}
	if cfg.Discard == jetstream.DiscardOld {
		if cfg.MaxMsgs > 0 {
			out = append(out, fmt.Sprintf("stream %s keeps at most %d messages (discard old): %s; raise max_msgs or use discard new", cfg.Name, cfg.MaxMsgs, lost))
		}
		if cfg.MaxBytes > 0 {
			out = append(out, fmt.Sprintf("stream %s keeps at most %d bytes (discard old): %s; raise max_bytes or use discard new", cfg.Name, cfg.MaxBytes, lost))
		}
	}
	if cfg.MaxMsgsPerSubject > 0 && (cfg.Discard != jetstream.DiscardNew || !cfg.DiscardNewPerSubject) {
		out = append(out, fmt.Sprintf("stream %s keeps at most %d messages per subject (discard old): %s; raise max_msgs_per_subject or use discard new per subject",
			cfg.Name, cfg.MaxMsgsPerSubject, lost))
	}
	if cfg.MaxAge > 0 {
		out = append(out, fmt.Sprintf("stream %s removes messages older than %s (max_age, whatever the discard policy): events not collected within %s "+
			"(collectors down or that far behind) are lost; raise max_age", cfg.Name, cfg.MaxAge, cfg.MaxAge))
	}
	return out
}

// RetainWarning says, in one sentence, when a source stream keeps events
// longer than a policy keeps loaded windows (window.retain): a consumer
// reset then delivers events of retired windows again. Collectors take
// those at or below the ack floor recorded when the windows were retired
// for redeliveries, and late ones were dead-lettered once per sequence, so
// nothing is loaded or dead-lettered twice while the stream keeps its
// sequences; a stream rebuilt with other sequences (restored into a new
// stream) would turn them into late dead letters. "" when the stream
// removes messages within retain.
func RetainWarning(cfg jetstream.StreamConfig, retain time.Duration) string {
	if cfg.MaxAge > 0 && cfg.MaxAge <= retain {
		return ""
	}
	keeps := "forever (no max_age)"
	if cfg.MaxAge > 0 {
		keeps = "for " + cfg.MaxAge.String()
	}
	return fmt.Sprintf("stream %s keeps messages %s, longer than the policy keeps loaded windows (window.retain %s): after a consumer reset, events of retired windows "+
		"are delivered again; they are recognised by their stream sequences, so a stream restored under other sequences would dead-letter them as late", cfg.Name, keeps, retain)
}
