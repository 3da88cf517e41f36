package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
)

// Watermarks keeps each policy's watermark in messages.BucketWatermarks. The
// compactor writes it; collectors read it to tell late events.
type Watermarks struct {
	kv jetstream.KeyValue
}

// NewWatermarks returns a store over the watermarks bucket.
func NewWatermarks(kv jetstream.KeyValue) *Watermarks { return &Watermarks{kv: kv} }

// Put records a policy's watermark.
func (w *Watermarks) Put(ctx context.Context, wm messages.Watermark) error {
	wm.UpdatedAt = time.Now().UTC()
	data, err := json.Marshal(wm)
	if err != nil {
		return err
	}
	if _, err := w.kv.Put(ctx, wm.Policy, data); err != nil {
		return fmt.Errorf("put watermark of %s: %w", wm.Policy, err)
	}
	return nil
}

// Get returns a policy's watermark; ok is false when none was recorded.
func (w *Watermarks) Get(ctx context.Context, policy string) (wm messages.Watermark, ok bool, err error) {
	e, err := w.kv.Get(ctx, policy)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return wm, false, nil
	}
	if err != nil {
		return wm, false, fmt.Errorf("get watermark of %s: %w", policy, err)
	}
	if err := json.Unmarshal(e.Value(), &wm); err != nil {
		return wm, false, fmt.Errorf("decode watermark of %s: %w", policy, err)
	}
	return wm, true, nil
}
