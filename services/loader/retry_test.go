package loader

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// TestRetry pins the retry middleware: only ErrTransient is retried, waits
// follow RetryConfig exactly (InitialInterval, ×Multiplier, capped at
// MaxInterval), and a permanent error ends the retries at once.
func TestRetry(t *testing.T) {
	transient := fmt.Errorf("file locked: %w", ErrTransient)
	permanent := errors.New("checksum mismatch")
	ms := time.Millisecond
	tests := []struct {
		name       string
		maxRetries int
		errs       []error // error of each attempt; later attempts succeed
		wantErr    error
		wantWaits  []time.Duration
	}{
		{"transient then success", 5, []error{transient, transient, transient}, nil, []time.Duration{10 * ms, 20 * ms, 40 * ms}},
		{"transient outlasts retries, capped backoff", 5, slices.Repeat([]error{transient}, 6), ErrTransient,
			[]time.Duration{10 * ms, 20 * ms, 40 * ms, 50 * ms, 50 * ms}},
		{"permanent is not retried", 5, []error{permanent}, permanent, nil},
		{"permanent after transient", 5, []error{transient, permanent}, permanent, []time.Duration{10 * ms}},
		{"retries disabled", -1, []error{transient}, ErrTransient, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := RetryConfig{MaxRetries: tt.maxRetries, InitialInterval: 10 * ms, MaxInterval: 50 * ms, Multiplier: 2}
				var at []time.Time
				h := retry(cfg, watermill.NopLogger{})(func(*message.Message) ([]*message.Message, error) {
					at = append(at, time.Now())
					if n := len(at); n <= len(tt.errs) {
						return nil, tt.errs[n-1]
					}
					return nil, nil
				})
				_, err := h(message.NewMessage("m", nil))
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				var waits []time.Duration
				for i := 1; i < len(at); i++ {
					waits = append(waits, at[i].Sub(at[i-1]))
				}
				if !slices.Equal(waits, tt.wantWaits) {
					t.Errorf("waits between attempts = %v, want %v", waits, tt.wantWaits)
				}
			})
		})
	}
}
