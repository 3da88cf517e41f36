package natsx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
)

// Retention of windrow's own streams.
const (
	loadMaxAge = 14 * 24 * time.Hour
	dlqMaxAge  = 30 * 24 * time.Hour
	// dedupWindow is how long JetStream remembers Nats-Msg-Id values of
	// windrow's messages: longer than any retry of a publish.
	dedupWindow = 20 * time.Minute
)

// Topology is what Provision created or found.
type Topology struct {
	Windows    jetstream.KeyValue
	Policies   jetstream.KeyValue
	Watermarks jetstream.KeyValue
}

// Provision creates or updates windrow's streams and KV buckets, with
// WithReplicas replicas (default 1). Each JetStream API call is bounded by
// the call timeout and retried while the server cannot answer yet (a
// cluster electing its meta leader), until ctx ends: bound ctx.
func Provision(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Topology, error) {
	o := newOptions(opts)
	streams := []jetstream.StreamConfig{
		// No age limit: a registration must outlive its window, however long;
		// compactors purge a window's subject once the window is loaded.
		{Name: messages.StreamSegments, Subjects: []string{messages.SubjectsSegments}, Storage: jetstream.FileStorage, Duplicates: dedupWindow,
			Description: "windrow: staged Parquet segments, one subject per policy and window"},
		{Name: messages.StreamLoad, Subjects: []string{messages.SubjectsLoad}, Storage: jetstream.FileStorage, MaxAge: loadMaxAge, Duplicates: dedupWindow,
			Description: "windrow: load commands, one per batch, msg id = batch id"},
		{Name: messages.StreamResults, Subjects: []string{messages.SubjectsResults}, Storage: jetstream.FileStorage, MaxAge: loadMaxAge, Duplicates: dedupWindow,
			Description: "windrow: load results"},
		{Name: messages.StreamDLQ, Subjects: messages.SubjectsDLQ, Storage: jetstream.FileStorage, MaxAge: dlqMaxAge, Duplicates: dedupWindow,
			Description: "windrow: dead-lettered events (with reason) and late-drop markers"},
		{Name: messages.StreamEvents, Subjects: []string{messages.SubjectsEvents}, Storage: jetstream.FileStorage, MaxAge: loadMaxAge, Duplicates: dedupWindow,
			Description: "windrow: window lifecycle notices"},
	}
	for _, cfg := range streams {
		if err := ensureStream(ctx, o, js, cfg); err != nil {
			return nil, err
		}
	}
	windows, err := ensureKV(ctx, o, js, jetstream.KeyValueConfig{Bucket: messages.BucketWindows, History: 1, Storage: jetstream.FileStorage,
		Description: "windrow: window states, key <policy>.<window id>"})
	if err != nil {
		return nil, err
	}
	policies, err := ensureKV(ctx, o, js, jetstream.KeyValueConfig{Bucket: messages.BucketPolicies, History: 16, Storage: jetstream.FileStorage,
		Description: "windrow: window policies, key <policy>, versioned by revision"})
	if err != nil {
		return nil, err
	}
	watermarks, err := ensureKV(ctx, o, js, jetstream.KeyValueConfig{Bucket: messages.BucketWatermarks, History: 1, Storage: jetstream.FileStorage,
		Description: "windrow: policy watermarks, key <policy>"})
	if err != nil {
		return nil, err
	}
	return &Topology{Windows: windows, Policies: policies, Watermarks: watermarks}, nil
}

// BucketLocks holds short-lived locks (see EnsureSourceStream).
const BucketLocks = "windrow_locks"

// ErrSubjectsNotCovered is returned when an existing source stream does not
// hold a policy's subjects.
var ErrSubjectsNotCovered = errors.New("stream does not cover the policy's subjects")

// managedDescription marks source streams windrow created; only those does
// it change.
const managedDescription = "events collected by windrow"

// EnsureSourceStream makes sure stream exists and holds subjects. A missing
// stream is created (file storage, 2 minute duplicate window, WithReplicas
// replicas). A stream windrow created gets missing subjects added, and its
// replicas raised to WithReplicas; any other stream that lacks a wanted
// subject is an error naming both: windrow does not change streams it did
// not create (ReplicaWarning says when one has too few replicas). A stream
// with work-queue retention is refused (ErrUnsafeSourceStream); limits that
// can remove events before they are collected are for the caller to report
// (SourceStreamWarnings). API calls are bounded and retried as in
// Provision.
//
// JetStream has no compare-and-set for stream configurations, so changing
// one is a read-modify-write; it runs under a lock (a key in the
// windrow_locks bucket, expiring by itself should its holder die), so that
// policies sharing a stream and starting together cannot drop each other's
// subjects.
func EnsureSourceStream(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, opts ...Option) (jetstream.Stream, error) {
	o := newOptions(opts)
	for attempt := 0; ; attempt++ {
		s, err := retryCall(ctx, o, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, stream) })
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			s, err = retryCall(ctx, o, func(ctx context.Context) (jetstream.Stream, error) {
				return js.CreateStream(ctx, jetstream.StreamConfig{
					Name: stream, Subjects: subjects, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
					Description: managedDescription, Replicas: o.replicas,
				})
			})
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt < 5 {
				continue // another policy created it meanwhile (or a timed-out attempt did)
			}
			if err != nil {
				return nil, fmt.Errorf("create source stream %s: %w", stream, replicasError(0, o.replicas, err))
			}
			return s, nil
		}
		if err != nil {
			return nil, fmt.Errorf("source stream %s: %w", stream, err)
		}
		cfg := s.CachedInfo().Config
		if err := checkSourceStream(cfg); err != nil {
			return nil, err
		}
		missing := missingSubjects(cfg.Subjects, subjects)
		fewReplicas := max(cfg.Replicas, 1) < o.replicas
		if len(missing) == 0 && (!fewReplicas || cfg.Description != managedDescription) {
			return s, nil
		}
		if len(missing) > 0 && cfg.Description != managedDescription {
			return nil, fmt.Errorf("%w: stream %s has subjects %v, policy wants %v; add them to the stream or use another stream", ErrSubjectsNotCovered, stream, cfg.Subjects, missing)
		}
		return updateManaged(ctx, o, js, stream, subjects)
	}
}

func missingSubjects(have, want []string) []string {
	var missing []string
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return SubjectCovers(h, w) }) {
			missing = append(missing, w)
		}
	}
	return missing
}

// lockTTL bounds how long a dead lock holder blocks others.
const lockTTL = 30 * time.Second

// updateManaged adds the uncovered subjects to a windrow-managed stream,
// and raises its replicas to o.replicas, under the stream's lock.
func updateManaged(ctx context.Context, o options, js jetstream.JetStream, stream string, subjects []string) (jetstream.Stream, error) {
	locks, err := ensureKV(ctx, o, js, jetstream.KeyValueConfig{Bucket: BucketLocks, TTL: lockTTL, History: 1,
		Description: "windrow: short-lived locks for read-modify-write of shared configuration"})
	if err != nil {
		return nil, fmt.Errorf("locks bucket: %w", err)
	}
	key := "stream." + stream
	for {
		_, err := retryCall(ctx, o, func(ctx context.Context) (uint64, error) {
			return locks.Create(ctx, key, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
		})
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("lock stream %s: %w", stream, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock stream %s: %w", stream, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	defer locks.Delete(context.WithoutCancel(ctx), key) //nolint:errcheck // the key expires by itself

	s, err := retryCall(ctx, o, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, stream) })
	if err != nil {
		return nil, fmt.Errorf("source stream %s: %w", stream, err)
	}
	cfg := s.CachedInfo().Config
	missing := missingSubjects(cfg.Subjects, subjects)
	have := max(cfg.Replicas, 1)
	if len(missing) == 0 && have >= o.replicas {
		return s, nil
	}
	cfg.Subjects = append(cfg.Subjects, missing...)
	cfg.Replicas = max(have, o.replicas)
	s, err = retryCall(ctx, o, func(ctx context.Context) (jetstream.Stream, error) { return js.UpdateStream(ctx, cfg) })
	if err != nil {
		return nil, fmt.Errorf("update stream %s (add subjects %v, replicas %d): %w", stream, missing, cfg.Replicas, replicasError(have, cfg.Replicas, err))
	}
	return s, nil
}

// SubjectCovers reports whether filter matches every subject that sub matches.
func SubjectCovers(filter, sub string) bool {
	f, s := splitTokens(filter), splitTokens(sub)
	for i, ft := range f {
		if ft == ">" {
			return i < len(s)
		}
		if i >= len(s) {
			return false
		}
		if ft == "*" {
			if s[i] == ">" {
				return false
			}
			continue
		}
		if ft != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

func splitTokens(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
