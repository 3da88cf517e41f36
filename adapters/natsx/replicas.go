package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Option changes how Provision and EnsureSourceStream create and update
// streams and buckets.
type Option func(*options)

type options struct {
	replicas    int
	callTimeout time.Duration
}

func newOptions(opts []Option) options {
	o := options{replicas: 1, callTimeout: DefaultCallTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// DefaultCallTimeout bounds each JetStream API call of provisioning.
const DefaultCallTimeout = 3 * time.Second

// WithReplicas sets the replica count (the `nats.replicas` setting) of
// every stream and KV bucket windrow creates: 1 for a single server, 3 for a
// cluster; n < 1 means 1. An existing stream or bucket with fewer replicas
// is scaled up; one with more keeps them (windrow never lowers a replica
// count: a client command run with the default must not shrink a
// cluster's streams).
func WithReplicas(n int) Option {
	return func(o *options) { o.replicas = max(n, 1) }
}

// WithCallTimeout bounds each JetStream API call (default
// DefaultCallTimeout); a call that times out is retried until the context
// of the whole operation ends.
func WithCallTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.callTimeout = d
		}
	}
}

// ErrReplicas is returned when the server cannot hold the replica count
// asked for: a single server asked for more than one, or a cluster with
// too few JetStream nodes.
var ErrReplicas = errors.New("the NATS server cannot hold the replicas asked for")

// JetStream API error codes provisioning handles.
const (
	errCodeClusterNoPeers        jetstream.ErrorCode = 10005 // no suitable peers for placement
	errCodeClusterNotAvailable   jetstream.ErrorCode = 10008 // JetStream system temporarily unavailable
	errCodeInsufficientResources jetstream.ErrorCode = 10023
	errCodeReplicasNotSupported  jetstream.ErrorCode = 10074 // replicas > 1 on a single server
)

// retryCall calls call with a context bounded by the call timeout, again
// and again (backoff 100ms doubling to 1s) while the error is transient,
// until ctx ends. A JetStream cluster that has not elected its meta leader
// yet (start-up, a lost quorum) does not answer API requests: without a
// per-call bound the first call would hang until ctx ends, and a request
// the leader never saw is never answered.
func retryCall[T any](ctx context.Context, o options, call func(context.Context) (T, error)) (T, error) {
	backoff := 100 * time.Millisecond
	start := time.Now()
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, o.callTimeout)
		v, err := call(cctx)
		cancel()
		if err == nil || !transient(err) {
			return v, err
		}
		if ctx.Err() != nil {
			var zero T
			return zero, fmt.Errorf("no answer from JetStream after %d attempts in %s (is the cluster up, with a meta leader elected?): %w",
				attempt, time.Since(start).Round(time.Millisecond), err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// transient reports whether a JetStream API error may pass by itself: no
// answer in time, no responders (a server restarting), or a cluster that
// is electing a leader or has not met its peers yet.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionReconnecting) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case errCodeClusterNotAvailable, errCodeClusterNoPeers, errCodeInsufficientResources:
			return true
		}
		return apiErr.Code == 503
	}
	return false
}

// replicasError explains a refused replica count.
func replicasError(have, want int, err error) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch apiErr.ErrorCode {
	case errCodeReplicasNotSupported:
		return fmt.Errorf("%w: nats.replicas is %d, but the server is a single server, not a cluster: set nats.replicas to 1 (--nats-replicas 1) or connect to a JetStream cluster of at least %d nodes (%v)",
			ErrReplicas, want, want, err)
	case errCodeClusterNoPeers, errCodeInsufficientResources:
		now := ""
		if have > 0 {
			now = fmt.Sprintf(" (it has %d now)", have)
		}
		return fmt.Errorf("%w: nats.replicas is %d%s, but the cluster has too few JetStream nodes up to place them: start the missing nodes, or lower nats.replicas (%v)",
			ErrReplicas, want, now, err)
	}
	return err
}

// currentReplicas is the replica count of an existing stream, 0 if there
// is none.
func currentReplicas(ctx context.Context, o options, js jetstream.JetStream, stream string) (int, error) {
	s, err := retryCall(ctx, o, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, stream) })
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	return max(s.CachedInfo().Config.Replicas, 1), nil
}

// kvStream is the name of a KV bucket's stream.
func kvStream(bucket string) string { return "KV_" + bucket }

// ensureKV creates or updates a KV bucket with the wanted replicas, or
// more if it has more.
func ensureKV(ctx context.Context, o options, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	have, err := currentReplicas(ctx, o, js, kvStream(cfg.Bucket))
	if err != nil {
		return nil, fmt.Errorf("provision kv %s: %w", cfg.Bucket, err)
	}
	cfg.Replicas = max(o.replicas, have)
	kv, err := retryCall(ctx, o, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, cfg)
	})
	if err != nil {
		return nil, fmt.Errorf("provision kv %s: %w", cfg.Bucket, replicasError(have, cfg.Replicas, err))
	}
	return kv, nil
}

// ensureStream creates or updates a stream with the wanted replicas, or
// more if it has more.
func ensureStream(ctx context.Context, o options, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	have, err := currentReplicas(ctx, o, js, cfg.Name)
	if err != nil {
		return fmt.Errorf("provision stream %s: %w", cfg.Name, err)
	}
	cfg.Replicas = max(o.replicas, have)
	_, err = retryCall(ctx, o, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, cfg)
	})
	if err != nil {
		return fmt.Errorf("provision stream %s: %w", cfg.Name, replicasError(have, cfg.Replicas, err))
	}
	return nil
}

// ReplicaWarning says, in one sentence, when a source stream windrow did
// not create (and so does not change) has fewer replicas than want; "" if
// it has enough.
func ReplicaWarning(cfg jetstream.StreamConfig, want int) string {
	have := max(cfg.Replicas, 1)
	if have >= want {
		return ""
	}
	return fmt.Sprintf("stream %s has %d replica(s), nats.replicas is %d: windrow does not change streams it did not create; raise it with `nats stream edit %s --replicas %d`, or the stream's events are lost with the node that holds them",
		cfg.Name, have, want, cfg.Name, want)
}
