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
	segmentsMaxAge = 14 * 24 * time.Hour
	loadMaxAge     = 14 * 24 * time.Hour
	dlqMaxAge      = 30 * 24 * time.Hour
	// dedupWindow is how long JetStream remembers Nats-Msg-Id values of
	// windrow's messages: longer than any retry of a publish.
	dedupWindow = 20 * time.Minute
)

// Topology is what Provision created or found.
type Topology struct {
	Windows  jetstream.KeyValue
	Policies jetstream.KeyValue
}

// Provision creates or updates windrow's streams and KV buckets.
func Provision(ctx context.Context, js jetstream.JetStream) (*Topology, error) {
	streams := []jetstream.StreamConfig{
		{Name: messages.StreamSegments, Subjects: []string{messages.SubjectsSegments}, Storage: jetstream.FileStorage, MaxAge: segmentsMaxAge, Duplicates: dedupWindow,
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
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("provision stream %s: %w", cfg.Name, err)
		}
	}
	windows, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: messages.BucketWindows, History: 1, Storage: jetstream.FileStorage,
		Description: "windrow: window states, key <policy>.<window id>"})
	if err != nil {
		return nil, fmt.Errorf("provision kv %s: %w", messages.BucketWindows, err)
	}
	policies, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: messages.BucketPolicies, History: 16, Storage: jetstream.FileStorage,
		Description: "windrow: window policies, key <policy>, versioned by revision"})
	if err != nil {
		return nil, fmt.Errorf("provision kv %s: %w", messages.BucketPolicies, err)
	}
	return &Topology{Windows: windows, Policies: policies}, nil
}

// ErrSubjectsNotCovered is returned when an existing source stream does not
// hold a policy's subjects.
var ErrSubjectsNotCovered = errors.New("stream does not cover the policy's subjects")

// EnsureSourceStream makes sure stream exists and holds subjects. A missing
// stream is created (file storage, 2 minute duplicate window). An existing
// stream whose subjects do not include a wanted one is an error naming both:
// windrow does not change streams it did not create.
func EnsureSourceStream(ctx context.Context, js jetstream.JetStream, stream string, subjects []string) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: stream, Subjects: subjects, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
			Description: "events collected by windrow",
		})
		if err != nil {
			return nil, fmt.Errorf("create source stream %s: %w", stream, err)
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("source stream %s: %w", stream, err)
	}
	have := s.CachedInfo().Config.Subjects
	for _, want := range subjects {
		if !slices.ContainsFunc(have, func(h string) bool { return SubjectCovers(h, want) }) {
			return nil, fmt.Errorf("%w: stream %s has subjects %v, policy wants %q", ErrSubjectsNotCovered, stream, have, want)
		}
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
