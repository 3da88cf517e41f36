// Package inspect answers operators' questions from what windrow keeps in
// NATS: window states, dead-letter and late counts, consumer lag. It only
// reads; `windrow status`, `windrow demo` and the tests use it.
package inspect

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
)

// DeadLetters counts a policy's dead-lettered records.
type DeadLetters struct {
	ByReason map[string]int64
	// LateByWindow counts late records per window id: dead-lettered ones
	// (late: dlq) and drop markers (late: drop).
	LateByWindow map[string]int64
	Total        int64
	// Redriven counts dead letters that `windrow dlq redrive` re-published
	// (and removed from the DLQ); they are not in Total.
	Redriven int64
}

// CountDeadLetters reads the policy's DLQ and late subjects.
func CountDeadLetters(ctx context.Context, js jetstream.JetStream, policy string) (*DeadLetters, error) {
	out := &DeadLetters{ByReason: map[string]int64{}, LateByWindow: map[string]int64{}}
	stream, err := js.Stream(ctx, messages.StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("dlq stream: %w", err)
	}
	// Late-drop markers: one subject per window, counted by the stream.
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(messages.LateFilter(policy)))
	if err != nil {
		return nil, fmt.Errorf("dlq stream info: %w", err)
	}
	for subj, n := range info.State.Subjects {
		win := subj[len(messages.LateSubject(policy, "")):]
		out.LateByWindow[win] += int64(n)
		out.ByReason["late_dropped"] += int64(n)
	}
	redriven := messages.RedrivenSubject(policy)
	info, err = stream.Info(ctx, jetstream.WithSubjectFilter(redriven))
	if err != nil {
		return nil, fmt.Errorf("dlq stream info: %w", err)
	}
	out.Redriven = int64(info.State.Subjects[redriven])
	// Dead letters: headers say reason and window.
	subject := messages.DLQSubject(policy)
	info, err = stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, fmt.Errorf("dlq stream info: %w", err)
	}
	total := info.State.Subjects[subject]
	if total == 0 {
		return out, nil
	}
	cons, err := js.OrderedConsumer(ctx, messages.StreamDLQ, jetstream.OrderedConsumerConfig{InactiveThreshold: 10 * time.Second, FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy, HeadersOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read dlq: %w", err)
	}
	var seen uint64
	for seen < total {
		batch, err := cons.Fetch(int(min(total-seen, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read dlq: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			seen++
			h := m.Headers()
			reason := h.Get(messages.HeaderReason)
			out.ByReason[reason]++
			out.Total++
			if reason == messages.ReasonLate {
				out.LateByWindow[h.Get(messages.HeaderWindow)]++
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read dlq: %w", err)
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

// Lag is how far a policy's collectors are behind.
type Lag struct {
	Pending    uint64 // messages not yet delivered
	AckPending int    // delivered, not yet staged and acked
	AckFloor   uint64
}

// CollectorLag reads the collectors' consumer of a policy.
func CollectorLag(ctx context.Context, js jetstream.JetStream, stream, policy string) (*Lag, error) {
	cons, err := js.Consumer(ctx, stream, messages.CollectorConsumer(policy))
	if err != nil {
		return nil, fmt.Errorf("collector consumer of %s: %w", policy, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &Lag{Pending: info.NumPending, AckPending: info.NumAckPending, AckFloor: info.AckFloor.Stream}, nil
}

// Windows returns a policy's window states, oldest first.
func Windows(ctx context.Context, states *statestore.Store, policy string) ([]*messages.WindowState, error) {
	ws, err := states.List(ctx, policy)
	if err != nil {
		return nil, err
	}
	sort.Slice(ws, func(i, j int) bool {
		if ws[i].Policy != ws[j].Policy {
			return ws[i].Policy < ws[j].Policy
		}
		return ws[i].WindowStart.Before(ws[j].WindowStart)
	})
	return ws, nil
}

// Bytes sums a window's batch sizes.
func Bytes(st *messages.WindowState) int64 {
	var n int64
	for _, b := range st.Batches {
		n += b.Bytes
	}
	return n
}

// HumanBytes renders a size as B, KiB, MiB or GiB.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
