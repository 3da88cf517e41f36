// Package inspect answers operators' questions from what windrow keeps in
// NATS: window states, dead-letter and late counts, consumer lag. It only
// reads; `windrow status`, `windrow demo` and the tests use it.
package inspect

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/dlq"
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
	// Discarded counts dead letters and late-drop markers discarded by
	// `windrow dlq discard` whose events are nowhere else; Recovered those
	// discarded because their events were loaded after all (a rebuild from
	// the stream). Neither is in Total, ByReason or LateByWindow.
	Discarded, Recovered int64
}

// CountDeadLetters reads the policy's dead letters and late-drop markers,
// headers only.
func CountDeadLetters(ctx context.Context, js jetstream.JetStream, policy string) (*DeadLetters, error) {
	out := &DeadLetters{ByReason: map[string]int64{}, LateByWindow: map[string]int64{}}
	n, err := dlq.CountRedriven(ctx, js, policy)
	if err != nil {
		return nil, err
	}
	out.Redriven = n
	err = dlq.Entries(ctx, js, dlq.Filter{Policy: policy, Discarded: true}, false, func(e *dlq.Entry) error {
		switch {
		case e.Discard != nil && e.Discard.Loaded:
			out.Recovered++
			return nil
		case e.Discard != nil:
			out.Discarded++
			return nil
		}
		out.ByReason[e.Reason]++
		switch e.Kind {
		case dlq.KindLateMarker:
			out.LateByWindow[lateWindow(policy, e)]++
		case dlq.KindDeadLetter:
			out.Total++
			if e.Reason == messages.ReasonLate {
				out.LateByWindow[e.Window]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count dead letters of %s: %w", policy, err)
	}
	return out, nil
}

// lateWindow is the window of a late-drop marker: its header, or its subject
// (windrow.late.<policy>.<window>[.<source seq>]).
func lateWindow(policy string, e *dlq.Entry) string {
	if e.Window != "" {
		return e.Window
	}
	rest := strings.TrimPrefix(e.Subject, messages.LateSubject(policy, ""))
	win, _, _ := strings.Cut(rest, ".")
	return win
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

// Bytes is the size of a window's batches.
func Bytes(st *messages.WindowState) int64 { return st.BatchBytes }

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

// Retirement reads a policy's retirement record (window.retain); a zero
// record with the policy's name when no window was retired.
func Retirement(ctx context.Context, js jetstream.JetStream, policy string) (messages.Retirement, error) {
	kv, err := js.KeyValue(ctx, messages.BucketWatermarks)
	if err != nil {
		return messages.Retirement{}, fmt.Errorf("retirement of %s: %w", policy, err)
	}
	r, _, err := statestore.NewWatermarks(kv).Retirement(ctx, policy)
	return r, err
}
