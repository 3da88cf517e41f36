package inspect

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/dlq"
)

const policySrc = `name: shop
source: {stream: SRC, subjects: [ev.>]}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h, late: dlq}
load: {table: shop}
`

// TestReconcileCountsDiscardedOnce guards the balance after dead letters
// were discarded: a discarded dead letter whose event was loaded after all
// (a rebuild took the late event) counts once, as loaded; one whose event
// is nowhere counts as discarded.
func TestReconcileCountsDiscardedOnce(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, policySrc)
	ctx := context.Background()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	win := messages.WindowID(start)
	// Three events: one loaded, one bad, one late that a rebuild loaded.
	for _, data := range []string{`{"id":"a","at":"2026-05-01T00:01:00Z"}`, `{"id":`, `{"id":"l","at":"2026-05-01T00:02:00Z"}`} {
		if _, err := env.JS.Publish(ctx, "ev.a", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.States.Update(ctx, messages.WindowKey(p.Name, win), func(*messages.WindowState) (*messages.WindowState, error) {
		return &messages.WindowState{Policy: p.Name, WindowStart: start, WindowEnd: start.Add(time.Hour), Status: messages.StatusLoaded,
			StagedRows: 2, Rows: 2, LoadedRows: 2, BatchCount: 1}, nil
	}); err != nil {
		t.Fatal(err)
	}
	deadLetter := func(seq uint64, reason, window string) {
		t.Helper()
		m := nats.NewMsg(messages.DeadLetterSubject(p.Name, seq, ""))
		for k, v := range map[string]string{messages.HeaderPolicy: p.Name, messages.HeaderReason: reason, messages.HeaderWindow: window,
			messages.HeaderSourceStream: p.Source.Stream, messages.HeaderSourceSubject: "ev.a", messages.HeaderSourceSeq: strconv.FormatUint(seq, 10)} {
			m.Header.Set(k, v)
		}
		if _, err := env.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	deadLetter(2, messages.ReasonMalformedJSON, "")
	deadLetter(3, messages.ReasonLate, win)

	reconcile := func() *Reconciliation {
		t.Helper()
		r, err := Reconcile(ctx, env.JS, env.States, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := reconcile(); r.OK() {
		t.Fatalf("the late event counted as loaded and dead-lettered must be flagged: %s", r.Summary())
	}
	if _, err := dlq.Discard(ctx, env.JS, dlq.DiscardRequest{Policy: p.Name, Window: win, Why: dlq.ReasonRecovered, Loaded: true}); err != nil {
		t.Fatal(err)
	}
	r := reconcile()
	if !r.OK() || r.DeadLetters != 1 || r.Recovered != 1 || r.Discarded != 0 {
		t.Errorf("after the late dead letter was discarded as loaded: %s %v; dead letters %d, recovered %d, discarded %d",
			r.Summary(), r.Problems, r.DeadLetters, r.Recovered, r.Discarded)
	}
	if _, err := dlq.Discard(ctx, env.JS, dlq.DiscardRequest{Policy: p.Name, Reason: messages.ReasonMalformedJSON}); err != nil {
		t.Fatal(err)
	}
	r = reconcile()
	if !r.OK() || r.DeadLetters != 0 || r.Discarded != 1 || !strings.Contains(r.Summary(), "discarded 1") {
		t.Errorf("after the bad event's dead letter was discarded: %s %v; dead letters %d, discarded %d", r.Summary(), r.Problems, r.DeadLetters, r.Discarded)
	}
}

// TestReconcileCountsEventsTheStreamRemovedAsExpired guards issue 12 item 2:
// a source stream that keeps at most 10 messages was sent 30 before any
// collector ran; reconcile must count the 20 it pushed out as expired and
// not call the balance "published 10 = loaded 10" ok.
func TestReconcileCountsEventsTheStreamRemovedAsExpired(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, policySrc)
	ctx := context.Background()
	if _, err := env.JS.CreateStream(ctx, jetstream.StreamConfig{Name: p.Source.Stream, Subjects: p.Source.Subjects, MaxMsgs: 10}); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := env.JS.Publish(ctx, "ev.a", []byte(`{"id":"`+strconv.Itoa(i)+`","at":"2026-05-01T00:01:00Z"}`)); err != nil {
			t.Fatal(err)
		}
	}
	// The 10 the stream kept, loaded: the balance the issue reported as
	// "published 10 = loaded 10 — ok".
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if _, err := env.States.Update(ctx, messages.WindowKey(p.Name, messages.WindowID(start)), func(*messages.WindowState) (*messages.WindowState, error) {
		return &messages.WindowState{Policy: p.Name, WindowStart: start, WindowEnd: start.Add(time.Hour), Status: messages.StatusLoaded,
			StagedRows: 10, Rows: 10, LoadedRows: 10, BatchCount: 1}, nil
	}); err != nil {
		t.Fatal(err)
	}
	r, err := Reconcile(ctx, env.JS, env.States, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Expired != 20 {
		t.Errorf("expired %d; want 20 (30 published, the stream keeps 10)", r.Expired)
	}
	if r.OK() {
		t.Errorf("reconcile says ok with 20 events lost upstream: %s", r.Summary())
	}
	if !strings.Contains(r.Summary(), "expired 20") {
		t.Errorf("summary %q; want it to show expired 20", r.Summary())
	}
}
