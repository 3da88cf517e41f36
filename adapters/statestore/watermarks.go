package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
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

// RequestFlush records a flush request for a policy (messages.FlushRequest,
// key messages.FlushKey): its input is complete up to req.At.
func (w *Watermarks) RequestFlush(ctx context.Context, req messages.FlushRequest) error {
	if req.Policy == "" || req.At.IsZero() {
		return fmt.Errorf("flush request: policy and time are required")
	}
	req.At = req.At.UTC()
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := w.kv.Put(ctx, messages.FlushKey(req.Policy), data); err != nil {
		return fmt.Errorf("put flush request of %s: %w", req.Policy, err)
	}
	return nil
}

// WatchFlush calls fn with the policy's flush request now (if any) and with
// every later one, from a KV watcher, until ctx ends; rev is the entry's
// revision, which grows with every request.
func (w *Watermarks) WatchFlush(ctx context.Context, policy string, fn func(req messages.FlushRequest, rev uint64)) error {
	watcher, err := natsx.Watch(ctx, w.kv, []string{messages.FlushKey(policy)})
	if err != nil {
		return fmt.Errorf("watch flush requests of %s: %w", policy, err)
	}
	go func() {
		defer watcher.Stop() //nolint:errcheck // best effort on the way out
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-watcher.Updates():
				if !ok {
					return
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue // nil: the initial values are all delivered
				}
				var req messages.FlushRequest
				if err := json.Unmarshal(e.Value(), &req); err != nil || req.At.IsZero() {
					continue // not a request this version understands
				}
				fn(req, e.Revision())
			}
		}
	}()
	return nil
}
