package loader

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/windrow/windrow/adapters/wmjetstream"
	"github.com/windrow/windrow/messages"
)

// maxErrorLen caps the error text carried in a failed LoadResult.
const maxErrorLen = 2000

// poison is the middleware that gives up on permanently failing commands:
// for an error that does not wrap ErrTransient (bad message, checksum
// mismatch, missing file, a warehouse error that is not transient, a panic)
// it publishes a LoadResult with status failed (the reason: the error text),
// counts it, and returns nil with the message marked for termination, so
// the command is settled with Term and never redelivered. Transient errors, and errors after
// the message's context ended (shutdown), pass through: the command is nacked
// or left to redelivery. If the failed result cannot be published, that
// error (transient) is returned and the command is redelivered.
//
// Why not watermill's middleware.PoisonQueue(WithFilter): it can only
// republish the failed message itself to a topic, while windrow's contract
// for a poison command is a failed LoadResult on the results stream (the
// compactor marks the window FAILED from it), so this middleware would stay
// anyway. A copy of the command in a poison subject adds nothing: WINDROW_LOAD
// keeps acked commands (limits retention) and the failed result names the
// batch id, which is the command's msg id. It would also need a home:
// windrow.dlq.<policy> subjects hold dead-lettered events that `windrow dlq`
// counts and replays per policy, so windrow.dlq.loader would pass for the
// dead letters of a policy named "loader". And its filter sees only the
// error, not the message, so it cannot leave a command whose context ended
// (shutdown) to redelivery as this middleware does.
func (s *Service) poison(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil || IsTransient(err) || msg.Context().Err() != nil {
			return out, err
		}
		res, ok := failedResult(msg, err, s.cfg.Instance)
		if !ok {
			// Not even policy and window can be read: nothing to report on
			// the results stream. The log is the only trace; ack it anyway.
			s.failed.Add(1)
			s.log.ErrorContext(runContext(msg), "unreadable load command terminated", "message", msg.UUID,
				"subject", msg.Metadata.Get("nats_subject"), "error", err)
			msg.Metadata.Set(wmjetstream.MetaTerminate, "unreadable load command")
			return nil, nil
		}
		if perr := s.publishResult(runContext(msg), res); perr != nil {
			return nil, fmt.Errorf("report failure of %s: %w (failure: %w)", res.BatchID, perr, err)
		}
		s.failed.Add(1)
		s.log.ErrorContext(runContext(msg), "load command failed permanently; reported and terminated", "batch", res.BatchID,
			"policy", res.Policy, "error", err)
		msg.Metadata.Set(wmjetstream.MetaTerminate, "load failed permanently")
		return nil, nil
	}
}

// failedResult builds the failed LoadResult of msg from whatever of the
// command can be decoded; ok is false when that is not a valid result.
func failedResult(msg *message.Message, cause error, instance string) (*messages.LoadResult, bool) {
	var cmd messages.LoadCommand
	_ = json.Unmarshal(msg.Payload, &cmd) // best effort: cause already says what was wrong
	if cmd.BatchID == "" {
		cmd.BatchID = msg.UUID
	}
	text := cause.Error()
	if len(text) > maxErrorLen {
		text = text[:maxErrorLen] + "…"
	}
	res := &messages.LoadResult{
		BatchID: cmd.BatchID, Policy: cmd.Policy, WindowStart: cmd.WindowStart, WindowEnd: cmd.WindowEnd,
		Revision: cmd.Revision, Part: cmd.Part, Parts: cmd.Parts, Table: cmd.Table,
		Status: messages.LoadFailed, Error: text, LoadedAt: time.Now().UTC(), Loader: instance, Replay: cmd.Replay,
	}
	return res, res.Validate() == nil
}
