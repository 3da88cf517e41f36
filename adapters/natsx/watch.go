package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WatchStartTimeout bounds each attempt to start a KV watcher.
const WatchStartTimeout = 10 * time.Second

// ErrWatchStart is returned by Watch when no attempt to start the watcher
// was answered before ctx ended.
var ErrWatchStart = errors.New("no answer from JetStream to starting a KV watcher")

// Watch starts a watcher of keys in kv, like kv.WatchFiltered, but does
// not hang when the request that creates its consumer is never answered.
// nats.go uses the watch's context for that request as well as for the
// watcher's life, so under a context without a deadline a request lost in
// a cluster's leader change (the meta leader died before it answered)
// blocks the caller for ever: found by the cluster fault run, where a
// listing of window states waited six minutes. Here each attempt gets
// WatchStartTimeout; an attempt that runs out is canceled and made again
// until ctx ends. The watcher lives until Stop or ctx ends.
func Watch(ctx context.Context, kv jetstream.KeyValue, keys []string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	return watchBounded(ctx, WatchStartTimeout, func(wctx context.Context) (jetstream.KeyWatcher, error) {
		return kv.WatchFiltered(wctx, keys, opts...)
	})
}

func watchBounded(ctx context.Context, timeout time.Duration, start func(context.Context) (jetstream.KeyWatcher, error)) (jetstream.KeyWatcher, error) {
	for attempt := 1; ; attempt++ {
		wctx, cancel := context.WithCancel(ctx)
		type result struct {
			w   jetstream.KeyWatcher
			err error
		}
		done := make(chan result, 1)
		go func() {
			w, err := start(wctx)
			done <- result{w, err}
		}()
		timer := time.NewTimer(timeout)
		var r result
		timedOut := false
		select {
		case r = <-done:
		case <-timer.C:
			timedOut = true
			cancel() // ends the request in flight
			r = <-done
		}
		timer.Stop()
		if r.err == nil && !timedOut {
			return &boundWatcher{KeyWatcher: r.w, cancel: cancel}, nil
		}
		if r.w != nil {
			_ = r.w.Stop()
		}
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%d attempts of %s): %w", ErrWatchStart, attempt, timeout, ctx.Err())
		}
		if !timedOut && !transient(r.err) {
			return nil, r.err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%d attempts of %s): %w", ErrWatchStart, attempt, timeout, ctx.Err())
		case <-time.After(min(time.Duration(attempt)*200*time.Millisecond, 2*time.Second)):
		}
	}
}

// boundWatcher ends its context when stopped.
type boundWatcher struct {
	jetstream.KeyWatcher
	cancel context.CancelFunc
}

func (w *boundWatcher) Stop() error {
	err := w.KeyWatcher.Stop()
	w.cancel()
	return err
}

// ListKeys returns the keys in kv that match filter (">" for all) and are
// not deleted, like kv.ListKeysFiltered, with the watcher started by Watch.
// Unlike the lister of nats.go, it fails rather than return part of the
// keys when the listing ends early.
func ListKeys(ctx context.Context, kv jetstream.KeyValue, filter string) ([]string, error) {
	w, err := Watch(ctx, kv, []string{filter}, jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop() //nolint:errcheck // best effort: the listing is complete
	var keys []string
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("list keys %s of %s: the watcher ended after %d keys, before the last", filter, kv.Bucket(), len(keys))
			}
			if e == nil {
				return keys, nil // every current key delivered
			}
			keys = append(keys, e.Key())
		case <-ctx.Done():
			return nil, fmt.Errorf("list keys %s of %s: %w", filter, kv.Bucket(), ctx.Err())
		}
	}
}
