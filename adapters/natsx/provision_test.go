package natsx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
)

func TestProvisionCreatesTopologyAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	_, js := testnats.Connect(t, testnats.RunServer(t))

	for run := 1; run <= 2; run++ {
		topo, err := Provision(ctx, js)
		if err != nil {
			t.Fatalf("Provision run %d: %v", run, err)
		}
		if topo.Windows == nil || topo.Policies == nil || topo.Watermarks == nil {
			t.Fatalf("Provision run %d: topology has nil buckets: %+v", run, topo)
		}
	}

	streams := []struct {
		name     string
		subjects []string
		maxAge   time.Duration
	}{
		{messages.StreamSegments, []string{messages.SubjectsSegments}, 0}, // registrations outlive any window
		{messages.StreamLoad, []string{messages.SubjectsLoad}, 14 * 24 * time.Hour},
		{messages.StreamResults, []string{messages.SubjectsResults}, 14 * 24 * time.Hour},
		{messages.StreamDLQ, messages.SubjectsDLQ, 30 * 24 * time.Hour},
		{messages.StreamEvents, []string{messages.SubjectsEvents}, 14 * 24 * time.Hour},
	}
	for _, want := range streams {
		s, err := js.Stream(ctx, want.name)
		if err != nil {
			t.Errorf("stream %s: %v", want.name, err)
			continue
		}
		cfg := s.CachedInfo().Config
		if !slices.Equal(cfg.Subjects, want.subjects) {
			t.Errorf("stream %s subjects = %v, want %v", want.name, cfg.Subjects, want.subjects)
		}
		if cfg.MaxAge != want.maxAge {
			t.Errorf("stream %s MaxAge = %s, want %s", want.name, cfg.MaxAge, want.maxAge)
		}
		if cfg.Duplicates != dedupWindow {
			t.Errorf("stream %s duplicate window = %s, want %s", want.name, cfg.Duplicates, dedupWindow)
		}
		if cfg.Storage != jetstream.FileStorage {
			t.Errorf("stream %s storage = %v, want file", want.name, cfg.Storage)
		}
	}

	buckets := []struct {
		name    string
		history int64
	}{
		{messages.BucketWindows, 1},
		{messages.BucketPolicies, 16},
		{messages.BucketWatermarks, 1},
	}
	for _, want := range buckets {
		kv, err := js.KeyValue(ctx, want.name)
		if err != nil {
			t.Errorf("bucket %s: %v", want.name, err)
			continue
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Errorf("bucket %s status: %v", want.name, err)
			continue
		}
		if st.History() != want.history {
			t.Errorf("bucket %s history = %d, want %d", want.name, st.History(), want.history)
		}
	}
}

// TestProvisionRestoresDriftedConfig: provisioning is create-or-update, so a
// changed stream setting is put back.
func TestProvisionRestoresDriftedConfig(t *testing.T) {
	ctx := context.Background()
	_, js := testnats.Connect(t, testnats.RunServer(t))
	if _, err := Provision(ctx, js); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	s, err := js.Stream(ctx, messages.StreamLoad)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = time.Minute
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("drift the stream: %v", err)
	}
	if _, err := Provision(ctx, js); err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Duplicates != dedupWindow {
		t.Fatalf("duplicate window after Provision = %s, want %s", info.Config.Duplicates, dedupWindow)
	}
}

// TestProvisionConcurrently: every service provisions at start, possibly at
// the same moment.
func TestProvisionConcurrently(t *testing.T) {
	ctx := context.Background()
	srv := testnats.RunServer(t)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		_, js := testnats.Connect(t, srv)
		wg.Go(func() {
			if _, err := Provision(ctx, js); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Provision: %v", err)
	}
}

func streamConfig(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo().Config
}

// uncovered returns the subjects that cfg does not cover.
func uncovered(cfg jetstream.StreamConfig, subjects []string) []string {
	var missing []string
	for _, want := range subjects {
		if !slices.ContainsFunc(cfg.Subjects, func(have string) bool { return SubjectCovers(have, want) }) {
			missing = append(missing, want)
		}
	}
	return missing
}

func TestEnsureSourceStreamCreatesMissingStream(t *testing.T) {
	ctx := context.Background()
	_, js := testnats.Connect(t, testnats.RunServer(t))
	subjects := []string{"events.sales.>", "events.returns.*"}
	s, err := EnsureSourceStream(ctx, js, "EVENTS", subjects)
	if err != nil {
		t.Fatalf("EnsureSourceStream: %v", err)
	}
	if s == nil {
		t.Fatal("EnsureSourceStream returned a nil stream")
	}
	cfg := streamConfig(t, js, "EVENTS")
	if !slices.Equal(cfg.Subjects, subjects) {
		t.Errorf("subjects = %v, want %v", cfg.Subjects, subjects)
	}
	if cfg.Description != managedDescription {
		t.Errorf("description = %q, want %q", cfg.Description, managedDescription)
	}
	if cfg.Duplicates != 2*time.Minute {
		t.Errorf("duplicate window = %s, want 2m", cfg.Duplicates)
	}
	if cfg.Storage != jetstream.FileStorage {
		t.Errorf("storage = %v, want file", cfg.Storage)
	}

	// Again with the same and with covered subjects: nothing changes.
	for _, subs := range [][]string{subjects, {"events.sales.eu"}, {"events.returns.x"}} {
		if _, err := EnsureSourceStream(ctx, js, "EVENTS", subs); err != nil {
			t.Fatalf("EnsureSourceStream(%v) on the existing stream: %v", subs, err)
		}
	}
	if got := streamConfig(t, js, "EVENTS").Subjects; !slices.Equal(got, subjects) {
		t.Fatalf("subjects after covered re-ensures = %v, want %v unchanged", got, subjects)
	}
}

func TestEnsureSourceStreamAddsSubjectsToManagedStream(t *testing.T) {
	ctx := context.Background()
	_, js := testnats.Connect(t, testnats.RunServer(t))
	if _, err := EnsureSourceStream(ctx, js, "EVENTS", []string{"events.sales.>"}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := EnsureSourceStream(ctx, js, "EVENTS", []string{"events.sales.eu", "events.returns.>"}); err != nil {
		t.Fatalf("add subjects: %v", err)
	}
	cfg := streamConfig(t, js, "EVENTS")
	if want := []string{"events.sales.>", "events.returns.>"}; !slices.Equal(cfg.Subjects, want) {
		t.Fatalf("subjects = %v, want %v (only the uncovered one added)", cfg.Subjects, want)
	}
	// The added subject stores messages.
	if _, err := js.Publish(ctx, "events.returns.x", []byte("{}")); err != nil {
		t.Fatalf("publish on the added subject: %v", err)
	}
}

func TestEnsureSourceStreamRefusesToChangeUserStream(t *testing.T) {
	ctx := context.Background()
	_, js := testnats.Connect(t, testnats.RunServer(t))
	userCfg := jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Description: "owned by the orders team"}
	if _, err := js.CreateStream(ctx, userCfg); err != nil {
		t.Fatalf("create user stream: %v", err)
	}

	// Covered subjects are fine.
	if _, err := EnsureSourceStream(ctx, js, "ORDERS", []string{"orders.eu.>", "orders.us"}); err != nil {
		t.Fatalf("EnsureSourceStream with covered subjects: %v", err)
	}

	_, err := EnsureSourceStream(ctx, js, "ORDERS", []string{"orders.eu.>", "events.sales.>", "payments.*"})
	if !errors.Is(err, ErrSubjectsNotCovered) {
		t.Fatalf("err = %v, want ErrSubjectsNotCovered", err)
	}
	for _, want := range []string{"ORDERS", "events.sales.>", "payments.*", "orders.>"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "orders.eu.>") {
		t.Errorf("error %q lists the covered subject orders.eu.> as missing", err)
	}
	cfg := streamConfig(t, js, "ORDERS")
	if !slices.Equal(cfg.Subjects, userCfg.Subjects) || cfg.Description != userCfg.Description {
		t.Fatalf("user stream changed: subjects %v, description %q", cfg.Subjects, cfg.Description)
	}
}

// TestEnsureSourceStreamConcurrent: policies sharing a new source stream
// start together; every call succeeds and the stream ends up covering the
// subjects of all of them.
func TestEnsureSourceStreamConcurrent(t *testing.T) {
	ctx := context.Background()
	srv := testnats.RunServer(t)
	const rounds, workers = 5, 4
	for round := range rounds {
		stream := fmt.Sprintf("EVENTS_%d", round)
		var all []string
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			subjects := []string{fmt.Sprintf("r%d.w%d.a.>", round, w), fmt.Sprintf("r%d.w%d.b", round, w)}
			all = append(all, subjects...)
			_, js := testnats.Connect(t, srv)
			wg.Go(func() {
				if _, err := EnsureSourceStream(ctx, js, stream, subjects); err != nil {
					errs <- fmt.Errorf("subjects %v: %w", subjects, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: EnsureSourceStream: %v", round, err)
		}
		_, js := testnats.Connect(t, srv)
		cfg := streamConfig(t, js, stream)
		if missing := uncovered(cfg, all); len(missing) > 0 {
			t.Fatalf("round %d: every call succeeded, but stream %s has subjects %v and does not cover %v",
				round, stream, cfg.Subjects, missing)
		}
	}
}

// interleavedJS runs another caller's EnsureSourceStream between this
// caller's read of the stream and its UpdateStream: the interleaving that
// concurrent collectors of different policies produce.
type interleavedJS struct {
	jetstream.JetStream
	once    sync.Once
	between func()
}

func (j *interleavedJS) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	j.once.Do(j.between)
	return j.JetStream.UpdateStream(ctx, cfg)
}

// TestEnsureSourceStreamKeepsConcurrentlyAddedSubjects is the deterministic
// form of TestEnsureSourceStreamConcurrent: subjects another caller added
// between our read and our update must survive our update.
func TestEnsureSourceStreamKeepsConcurrentlyAddedSubjects(t *testing.T) {
	ctx := context.Background()
	_, js := testnats.Connect(t, testnats.RunServer(t))
	if _, err := EnsureSourceStream(ctx, js, "EVENTS", []string{"events.a.>"}); err != nil {
		t.Fatalf("create: %v", err)
	}
	// The other caller arrives while this one is between its read and its
	// update; it must wait for it and then add its subject, not be lost.
	var otherErr error
	otherDone := make(chan struct{})
	wrapped := &interleavedJS{JetStream: js, between: func() {
		go func() {
			defer close(otherDone)
			_, otherErr = EnsureSourceStream(ctx, js, "EVENTS", []string{"events.c.>"})
		}()
		time.Sleep(100 * time.Millisecond) // give it time to reach the stream; the lock must hold it off
	}}
	if _, err := EnsureSourceStream(ctx, wrapped, "EVENTS", []string{"events.b.>"}); err != nil {
		t.Fatalf("EnsureSourceStream(events.b.>): %v", err)
	}
	select {
	case <-otherDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the interleaved EnsureSourceStream did not finish")
	}
	if otherErr != nil {
		t.Fatalf("interleaved EnsureSourceStream(events.c.>): %v", otherErr)
	}
	cfg := streamConfig(t, js, "EVENTS")
	if missing := uncovered(cfg, []string{"events.a.>", "events.b.>", "events.c.>"}); len(missing) > 0 {
		t.Fatalf("both calls succeeded, but the stream has subjects %v and lost %v", cfg.Subjects, missing)
	}
}
