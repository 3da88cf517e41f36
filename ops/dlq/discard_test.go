package dlq

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// TestDiscardDryRunChangesNothing: a dry run lists what would go and
// records nothing.
func TestDiscardDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.publish(t, nil, goodEvent("a", 1), wrongType("w1", 2), wrongType("w2", 3), []byte(`{"id":`))
	before := f.dlqMsgs(t)
	rep, err := Discard(ctx, f.env.JS, DiscardRequest{Policy: "shop", Reason: messages.ReasonWrongType, DryRun: true})
	if err != nil || len(rep.Discarded) != 2 {
		t.Fatalf("dry run: %v, %+v; want 2 listed", err, rep)
	}
	if after := f.dlqMsgs(t); after != before {
		t.Errorf("dry run changed the DLQ: %d messages, was %d", after, before)
	}
	sum, err := List(ctx, f.env.JS, Filter{Policy: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Groups) != 2 || sum.Discarded["shop"] != 0 {
		t.Errorf("after a dry run: groups %+v, discarded %v; want both reasons, none discarded", sum.Groups, sum.Discarded)
	}
}

// TestDiscardByReasonAndWindow: discarded dead letters are recorded once,
// leave `ls`, are not redriven, and late ones are selected by window.
func TestDiscardByReasonAndWindow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.publish(t, nil, goodEvent("a", 1), wrongType("w1", 2), wrongType("w2", 3), []byte(`{"id":`))
	// A sealed window: its events are late.
	sealed := windows.Window{Start: hour.Add(-time.Hour), End: hour}
	if _, err := f.env.States.Update(ctx, messages.WindowKey("shop", sealed.ID()), func(*messages.WindowState) (*messages.WindowState, error) {
		return &messages.WindowState{Policy: "shop", WindowStart: sealed.Start, WindowEnd: sealed.End, Status: messages.StatusSealed}, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.publish(t, nil, []byte(`{"id":"l1","n":1,"at":"2026-05-01T00:10:00Z"}`), []byte(`{"id":"l2","n":2,"at":"2026-05-01T00:20:00Z"}`))
	before := f.dlqMsgs(t)

	rep, err := Discard(ctx, f.env.JS, DiscardRequest{Policy: "shop", Reason: messages.ReasonWrongType, Why: "test data"})
	if err != nil || len(rep.Discarded) != 2 {
		t.Fatalf("discard by reason: %v, %+v; want 2", err, rep)
	}
	rep, err = Discard(ctx, f.env.JS, DiscardRequest{Policy: "shop", Window: sealed.ID(), Loaded: true})
	if err != nil || len(rep.Discarded) != 2 {
		t.Fatalf("discard by window: %v, %+v; want 2", err, rep)
	}
	for _, e := range rep.Discarded {
		if e.Reason != messages.ReasonLate || e.Window != sealed.ID() {
			t.Errorf("discarded by window: dlq seq %d reason %s window %s", e.Seq, e.Reason, e.Window)
		}
	}
	if after := f.dlqMsgs(t); after != before+4 {
		t.Errorf("DLQ holds %d messages, want %d + 4 records", after, before)
	}
	// --all takes the one left; a repeat records nothing new.
	rep, err = Discard(ctx, f.env.JS, DiscardRequest{Policy: "shop", All: true})
	if err != nil || len(rep.Discarded) != 1 || rep.Already != 4 {
		t.Fatalf("discard --all: %v, %+v; want only the malformed one new", err, rep)
	}
	rep, err = Discard(ctx, f.env.JS, DiscardRequest{Policy: "shop", Reason: messages.ReasonWrongType})
	if err != nil || len(rep.Discarded) != 0 || rep.Already != 2 {
		t.Fatalf("discard repeated: %v, %+v; want 2 discarded before", err, rep)
	}
	if after := f.dlqMsgs(t); after != before+5 {
		t.Errorf("DLQ holds %d messages, want %d + 5 records", after, before)
	}
	sum, err := List(ctx, f.env.JS, Filter{Policy: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Groups) != 0 || sum.Discarded["shop"] != 5 || sum.Recovered["shop"] != 2 {
		t.Errorf("list: groups %+v, discarded %v, recovered %v; want none listed, 5 discarded, 2 recovered", sum.Groups, sum.Discarded, sum.Recovered)
	}
	var all []*Entry
	if err := Entries(ctx, f.env.JS, Filter{Policy: "shop", Discarded: true}, false, func(e *Entry) error {
		all = append(all, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range all {
		if e.Discard == nil {
			t.Errorf("dlq seq %d not marked discarded", e.Seq)
		} else if e.Reason == messages.ReasonWrongType && e.Discard.Reason != "test data" {
			t.Errorf("dlq seq %d discarded for %q, want the recorded why", e.Seq, e.Discard.Reason)
		}
		if e.Reason == messages.ReasonWrongType {
			seqs = append(seqs, e.Seq)
		}
	}
	// A redrive leaves discarded dead letters alone.
	widened := f.widened(t)
	red, err := Redrive(ctx, f.env.JS, Request{Policy: widened, Seqs: seqs})
	if err != nil || red.Count(OutcomeDiscarded) != 2 || red.Count(OutcomeSent) != 0 {
		t.Fatalf("redrive of discarded: %v, %+v", err, red.Items)
	}
}

func TestDiscardRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  DiscardRequest
	}{
		{"no policy", DiscardRequest{All: true}},
		{"no selector", DiscardRequest{Policy: "shop"}},
		{"all and reason", DiscardRequest{Policy: "shop", All: true, Reason: "late"}},
	} {
		if err := tc.req.Validate(); !errors.Is(err, ErrRequest) {
			t.Errorf("%s: %v, want ErrRequest", tc.name, err)
		}
	}
}

// dlqMsgs counts the messages WINDROW_DLQ holds.
func (f *fixture) dlqMsgs(t *testing.T) uint64 {
	t.Helper()
	info, err := f.dlq.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// widened is the shop policy with n a string: wrong_type events pass.
func (f *fixture) widened(t *testing.T) *windows.Policy {
	t.Helper()
	return testkit.Policy(t, strings.Replace(policySrc, "{name: n, type: int64", "{name: n, type: string", 1))
}
