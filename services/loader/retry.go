package loader

import (
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// retry returns watermill's middleware.Retry configured from cfg, retrying
// only errors that wrap ErrTransient; any other error is returned after one
// attempt. Waits are InitialInterval, ×Multiplier, capped at MaxInterval,
// without jitter, and end with the message's context. Each retried failure is
// logged by the middleware; the last error is returned.
//
// Why not Retry.ShouldRetry, which v1.5.1 has: the middleware fills
// RetryParams.Delay by calling NextBackOff on its backoff, so with ShouldRetry
// set each failed attempt advances the backoff twice: the waits start at
// InitialInterval×Multiplier and grow by Multiplier² (defaults: 1s, 4s, 16s,
// 30s, 30s = 81s instead of 0.5s … 8s = 15.5s; fix pending upstream in
// ThreeDotsLabs/watermill#690). Instead the inner wrapper below hides a
// permanent error from Retry (it reports success, so Retry stops at once) and
// the outer one returns it. TestRetry pins the schedule: once watermill is
// fixed, ShouldRetry can replace the wrappers if it still passes.
func retry(cfg RetryConfig, logger watermill.LoggerAdapter) message.HandlerMiddleware {
	r := middleware.Retry{
		MaxRetries:      max(cfg.MaxRetries, 0), // -1 (none) means one attempt
		InitialInterval: cfg.InitialInterval,
		MaxInterval:     cfg.MaxInterval,
		Multiplier:      cfg.Multiplier,
		Logger:          logger,
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			var permanent error
			out, err := r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
				out, err := h(msg)
				if err != nil && !IsTransient(err) {
					permanent = err
					return out, nil
				}
				return out, err
			})(msg)
			if permanent != nil {
				return out, permanent
			}
			return out, err
		}
	}
}
