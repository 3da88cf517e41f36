package loader

import (
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Retry returns a middleware that retries the wrapped handler while it fails
// with an error wrapping ErrTransient, up to cfg.MaxRetries times, with
// exponential backoff. Other errors are returned at once. The waits are
// bounded by the message's context. Swallowed attempts are logged at warn
// level; the last error is returned.
func Retry(cfg RetryConfig, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			delay := cfg.InitialInterval
			for attempt := 0; ; attempt++ {
				out, err := h(msg)
				if err == nil || !IsTransient(err) || attempt >= cfg.MaxRetries {
					return out, err
				}
				logger.Warn("transient failure, retrying", "message", msg.UUID,
					"attempt", attempt+1, "max_retries", cfg.MaxRetries, "backoff", delay, "error", err)
				t := time.NewTimer(delay)
				select {
				case <-msg.Context().Done():
					t.Stop()
					return nil, err
				case <-t.C:
				}
				delay = min(time.Duration(float64(delay)*cfg.Multiplier), cfg.MaxInterval)
			}
		}
	}
}
