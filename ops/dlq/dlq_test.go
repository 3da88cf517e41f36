package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/services/collector"
	"github.com/windrow/windrow/windows"
)

const policySrc = `name: shop
source: {stream: SRC, subjects: [ev.>]}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: n, type: int64, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h, max_out_of_order: 1m, late: dlq}
segment: {max_rows: 1000, max_age: 100ms}
load: {table: shop}
`

var hour = time.Date(2026, 5, 1, 1, 0, 0, 0, time.UTC)

func goodEvent(id string, n int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"n":%d,"at":%q}`, id, n, hour.Add(time.Duration(n)*time.Second).Format(time.RFC3339))
}

func wrongType(id string, n int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"n":"%d pieces","at":%q}`, id, n, hour.Add(time.Duration(n)*time.Second).Format(time.RFC3339))
}

// fixture is a NATS server with windrow's streams and a real collector of
// the shop policy, which dead-letters bad events the way production does.
type fixture struct {
	env *testkit.Env
	p   *windows.Policy
	src jetstream.Stream
	dlq jetstream.Stream
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := testkit.New(t)
	p := testkit.Policy(t, policySrc)
	ctx := context.Background()
	src, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects)
	if err != nil {
		t.Fatal(err)
	}
	dlqStream, err := env.JS.Stream(ctx, messages.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	c, err := collector.New(collector.Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "t"})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("collector run: %v", err)
		}
	})
	return &fixture{env: env, p: p, src: src, dlq: dlqStream}
}

// publish publishes events to ev.a, optionally with a producer header, and
// waits until the collector has staged or dead-lettered all of them.
func (f *fixture) publish(t *testing.T, hdr nats.Header, events ...[]byte) {
	t.Helper()
	for _, data := range events {
		m := nats.NewMsg("ev.a")
		m.Data = data
		for k, v := range hdr {
			m.Header[k] = v
		}
		if _, err := f.env.JS.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	f.settle(t)
}

// settle waits until the collector has acked every message of the source
// stream. (The consumer's pending count alone can lag a publish.)
func (f *fixture) settle(t *testing.T) {
	t.Helper()
	last := f.lastSourceSeq(t)
	testnats.WaitForNil(t, 10*time.Second, func() error {
		c, err := f.env.JS.Consumer(context.Background(), f.p.Source.Stream, messages.CollectorConsumer(f.p.Name))
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < last || info.NumAckPending != 0 {
			return fmt.Errorf("ack floor %d of %d, %d ack pending", info.AckFloor.Stream, last, info.NumAckPending)
		}
		return nil
	})
}

// deadLetters returns the policy's dead letters with a reason, oldest first.
func (f *fixture) deadLetters(t *testing.T, reason string) []*Entry {
	t.Helper()
	var out []*Entry
	if err := Entries(context.Background(), f.env.JS, Filter{Policy: f.p.Name, Reason: reason}, true, func(e *Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) lastSourceSeq(t *testing.T) uint64 {
	t.Helper()
	info, err := f.src.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// redrivenIn returns, by Windrow-Redrive-Of, the source stream messages a
// redrive published.
func (f *fixture) redrivenIn(t *testing.T) map[uint64][]*jetstream.RawStreamMsg {
	t.Helper()
	out := map[uint64][]*jetstream.RawStreamMsg{}
	for seq := uint64(1); seq <= f.lastSourceSeq(t); seq++ {
		m, err := f.src.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if of, err := strconv.ParseUint(m.Header.Get(HeaderRedriveOf), 10, 64); err == nil {
			out[of] = append(out[of], m)
		}
	}
	return out
}

func seqsOf(es []*Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func TestListCountsByPolicyAndReason(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.publish(t, nil, goodEvent("g1", 1), wrongType("w1", 2), []byte(`{"id":`), wrongType("w2", 3), goodEvent("g2", 4), wrongType("w3", 5))

	sum, err := List(ctx, f.env.JS, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range sum.Groups {
		got = append(got, fmt.Sprintf("%s/%s=%d", g.Policy, g.Reason, g.Count))
		if g.Oldest.IsZero() || g.Newest.Before(g.Oldest) {
			t.Errorf("group %s/%s: oldest %s, newest %s", g.Policy, g.Reason, g.Oldest, g.Newest)
		}
	}
	if want := []string{"shop/wrong_type=3", "shop/malformed_json=1"}; !slices.Equal(got, want) {
		t.Errorf("groups %v, want %v (largest first)", got, want)
	}
	wrong := f.deadLetters(t, messages.ReasonWrongType)
	if len(wrong) != 3 {
		t.Fatalf("%d wrong_type entries, want 3", len(wrong))
	}
	for i, e := range wrong {
		if e.Kind != KindDeadLetter || e.SourceSubject != "ev.a" || e.SourceStream != "SRC" || e.Policy != "shop" || !strings.Contains(e.Detail, "n") {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	if srcSeqs := []uint64{wrong[0].SourceSeq, wrong[1].SourceSeq, wrong[2].SourceSeq}; !slices.Equal(srcSeqs, []uint64{2, 4, 6}) {
		t.Errorf("source seqs %v, want [2 4 6]", srcSeqs)
	}
}

func TestGetReturnsHeadersAndPayload(t *testing.T) {
	f := newFixture(t)
	bad := wrongType("w1", 7)
	f.publish(t, nats.Header{"X-Trace": []string{"abc"}}, bad)
	es := f.deadLetters(t, messages.ReasonWrongType)
	if len(es) != 1 {
		t.Fatalf("%d dead letters, want 1", len(es))
	}
	e, err := Get(context.Background(), f.env.JS, es[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Data) != string(bad) {
		t.Errorf("payload %q, want the original %q", e.Data, bad)
	}
	for k, want := range map[string]string{
		"X-Trace": "abc", messages.HeaderReason: messages.ReasonWrongType, messages.HeaderSourceSeq: "1",
		messages.HeaderSourceSubject: "ev.a", messages.HeaderMsgID: "dlq-shop-1",
	} {
		if got := e.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if _, err := Get(context.Background(), f.env.JS, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(999) = %v, want ErrNotFound", err)
	}
}

// TestRedriveFixedPayloadsOnce guards the no-double-load rule: fixed events
// land in the source stream with the redrive id and lineage header, leave the
// DLQ, are staged by the collector, and a second identical redrive sends
// nothing.
func TestRedriveFixedPayloadsOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.publish(t, nats.Header{"X-Trace": []string{"abc"}}, goodEvent("g1", 1), wrongType("w1", 2), wrongType("w2", 3), []byte(`nope`), wrongType("w3", 4))
	wrong := f.deadLetters(t, messages.ReasonWrongType)
	var file strings.Builder
	for _, e := range wrong {
		fmt.Fprintln(&file, fixLineFor(t, e))
	}
	fixes, err := ReadFixes(strings.NewReader(file.String()))
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Policy: f.p, Others: []*windows.Policy{f.p}, Reason: messages.ReasonWrongType, Fixes: fixes}
	var progressed int
	req.Progress = func(done, total int) { progressed = done }
	rep, err := Redrive(ctx, f.env.JS, req)
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Count(OutcomeSent); n != 3 || progressed != 3 {
		t.Fatalf("sent %d (progress %d), want 3: %+v", n, progressed, rep.Items)
	}
	f.settle(t)
	in := f.redrivenIn(t)
	for _, e := range wrong {
		ms := in[e.Seq]
		if len(ms) != 1 {
			t.Fatalf("dlq seq %d: %d messages in the source stream, want 1", e.Seq, len(ms))
		}
		m := ms[0]
		if m.Subject != "ev.a" || m.Header.Get(messages.HeaderMsgID) != RedriveMsgID("shop", e.Seq) || m.Header.Get(HeaderRedriveFixed) != "true" ||
			m.Header.Get("X-Trace") != "abc" || m.Header.Get(messages.HeaderReason) != "" {
			t.Errorf("dlq seq %d redriven as %s %v", e.Seq, m.Subject, m.Header)
		}
		if !strings.Contains(string(m.Data), `"n":`) || strings.Contains(string(m.Data), "pieces") {
			t.Errorf("dlq seq %d redriven with payload %s, want the fix", e.Seq, m.Data)
		}
	}
	if left := f.deadLetters(t, messages.ReasonWrongType); len(left) != 0 {
		t.Errorf("%d wrong_type dead letters left, want 0", len(left))
	}
	if left := f.deadLetters(t, messages.ReasonMalformedJSON); len(left) != 1 {
		t.Errorf("%d malformed_json dead letters left, want the 1 not selected", len(left))
	}
	sum, err := List(ctx, f.env.JS, Filter{Policy: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Redriven["shop"] != 3 || sum.InDoubt["shop"] != 0 {
		t.Errorf("redriven %v, in doubt %v; want 3 and 0", sum.Redriven, sum.InDoubt)
	}
	if n, err := CountRedriven(ctx, f.env.JS, "shop"); err != nil || n != 3 {
		t.Errorf("CountRedriven = %d, %v; want 3", n, err)
	}
	st, _, err := f.env.States.Get(ctx, "shop", windows.Window{Start: hour, End: hour.Add(time.Hour)}.ID())
	if err != nil {
		t.Fatal(err)
	}
	if st.StagedRows != 4 {
		t.Errorf("%d rows staged, want 1 good + 3 redriven", st.StagedRows)
	}

	// The same redrive again: nothing is sent.
	last := f.lastSourceSeq(t)
	rep, err = Redrive(ctx, f.env.JS, req)
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Count(OutcomeAlreadyRedriven); n != 3 || len(rep.Items) != 3 {
		t.Errorf("second redrive: %d already redriven of %d items, want 3 of 3", n, len(rep.Items))
	}
	if got := f.lastSourceSeq(t); got != last {
		t.Errorf("second redrive published %d messages, want none", got-last)
	}
	// And by reason: there is none left.
	rep, err = Redrive(ctx, f.env.JS, Request{Policy: f.p, Reason: messages.ReasonWrongType})
	if err != nil || len(rep.Items) != 0 || f.lastSourceSeq(t) != last {
		t.Errorf("redrive by reason after the fix: %v, %d items, last seq %d (was %d)", err, len(rep.Items), f.lastSourceSeq(t), last)
	}
}

// fixLineFor writes the fix of a wrong_type test event: n as a number.
func fixLineFor(t *testing.T, e *Entry) string {
	t.Helper()
	fixed := strings.Replace(string(e.Data), " pieces\"", "", 1)
	fixed = strings.Replace(fixed, `"n":"`, `"n":`, 1)
	return fmt.Sprintf(`{"dlq_seq": %d, "reason": %q, "event": %s}`, e.Seq, e.Reason, fixed)
}

// TestRedriveBySeq redrives the originals of chosen dead letters after a
// policy change widened the type; the others stay. Under the unchanged
// policy the same payloads are reported still invalid and not sent.
func TestRedriveBySeq(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.publish(t, nil, wrongType("w1", 1), wrongType("w2", 2), wrongType("w3", 3))
	wrong := f.deadLetters(t, messages.ReasonWrongType)
	pick := []uint64{wrong[0].Seq, wrong[2].Seq}

	last := f.lastSourceSeq(t)
	rep, err := Redrive(ctx, f.env.JS, Request{Policy: f.p, Seqs: pick})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Count(OutcomeInvalid); n != 2 || f.lastSourceSeq(t) != last {
		t.Fatalf("unchanged policy: %d still invalid, want 2, and nothing sent: %+v", n, rep.Items)
	}
	if !strings.Contains(rep.Items[0].Detail, messages.ReasonWrongType) {
		t.Errorf("invalid detail %q, want the reason", rep.Items[0].Detail)
	}

	widened := testkit.Policy(t, strings.Replace(policySrc, "{name: n, type: int64", "{name: n, type: string", 1))
	rep, err = Redrive(ctx, f.env.JS, Request{Policy: widened, Seqs: pick, DryRun: true})
	if err != nil || rep.Count(OutcomeWouldSend) != 2 || f.lastSourceSeq(t) != last {
		t.Fatalf("dry run: %v, %+v; want 2 would send and nothing sent", err, rep)
	}
	rep, err = Redrive(ctx, f.env.JS, Request{Policy: widened, Seqs: pick})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(OutcomeSent) != 2 {
		t.Fatalf("sent %+v, want 2", rep.Items)
	}
	in := f.redrivenIn(t)
	for _, e := range wrong {
		want := 0
		if slices.Contains(pick, e.Seq) {
			want = 1
		}
		if len(in[e.Seq]) != want {
			t.Errorf("dlq seq %d: %d in the source stream, want %d", e.Seq, len(in[e.Seq]), want)
		}
		if want == 1 && string(in[e.Seq][0].Data) != string(e.Data) {
			t.Errorf("dlq seq %d: redriven %q, want the original %q", e.Seq, in[e.Seq][0].Data, e.Data)
		}
	}
	f.settle(t) // the running collector (old policy) dead-letters them anew, with lineage
	left := f.deadLetters(t, messages.ReasonWrongType)
	if !slices.Contains(seqsOf(left), wrong[1].Seq) || len(left) != 3 {
		t.Fatalf("left %v, want the unselected %d and 2 new dead letters", seqsOf(left), wrong[1].Seq)
	}
	for _, e := range left[1:] {
		if e.Header.Get(HeaderRedriveOf) == "" {
			t.Errorf("new dead letter %d has no %s header: %v", e.Seq, HeaderRedriveOf, e.Header)
		}
	}
}

// TestRedriveRefusesLateMarkers: late-drop markers have no payload.
func TestRedriveRefusesLateMarkers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// A marker as the collector publishes it for late: drop.
	m := nats.NewMsg(messages.LateSubject("shop", "20260501T010000Z"))
	m.Header.Set(messages.HeaderMsgID, "late-shop-9")
	m.Header.Set(messages.HeaderPolicy, "shop")
	m.Header.Set(messages.HeaderWindow, "20260501T010000Z")
	m.Header.Set(messages.HeaderSourceSubject, "ev.a")
	m.Header.Set(messages.HeaderSourceSeq, "9")
	ack, err := f.env.JS.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []Request{
		{Policy: f.p, Seqs: []uint64{ack.Sequence}},
		{Policy: f.p, Reason: ReasonLateDropped},
	} {
		if _, err := Redrive(ctx, f.env.JS, req); !errors.Is(err, ErrLateMarker) {
			t.Errorf("redrive %+v: %v, want ErrLateMarker", req, err)
		}
	}
	sum, err := List(ctx, f.env.JS, Filter{Policy: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Groups) != 1 || sum.Groups[0].Reason != ReasonLateDropped || sum.Groups[0].Count != 1 {
		t.Errorf("groups %+v, want 1 late_dropped", sum.Groups)
	}
	if _, err := Redrive(ctx, f.env.JS, Request{Policy: f.p, Seqs: []uint64{ack.Sequence + 100}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("redrive of an unknown seq: %v, want ErrNotFound", err)
	}
}

// TestRedriveRefusesSharedSubject: another policy on the same subjects would
// load the redriven events a second time.
func TestRedriveRefusesSharedSubject(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.publish(t, nil, wrongType("w1", 1))
	other := testkit.Policy(t, strings.Replace(policySrc, "name: shop", "name: audit", 1))
	req := Request{Policy: f.p, Others: []*windows.Policy{f.p, other}, Reason: messages.ReasonWrongType, DryRun: true}
	if _, err := Redrive(ctx, f.env.JS, req); !errors.Is(err, ErrSharedSubject) || !strings.Contains(err.Error(), "audit") {
		t.Errorf("redrive: %v, want ErrSharedSubject naming audit", err)
	}
	req.AllowShared = true
	if _, err := Redrive(ctx, f.env.JS, req); err != nil {
		t.Errorf("redrive with AllowShared: %v", err)
	}
}

// TestRedriveFinishesInterrupted guards the in-doubt path: a redrive that
// stopped after storing its record (and maybe after publishing) is finished
// by the next one without publishing any event twice.
func TestRedriveFinishesInterrupted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.publish(t, nil, wrongType("w1", 1), wrongType("w2", 2), wrongType("w3", 3))
	wrong := f.deadLetters(t, messages.ReasonWrongType)
	fix := func(e *Entry) *pending {
		return &pending{item: &Item{Seq: e.Seq, SourceSubject: e.SourceSubject, Fixed: true}, stream: "SRC", header: e.Header, payload: goodEvent(e.Header.Get(messages.HeaderSourceSeq), 1)}
	}
	// wrong[0]: record and publish done, delete lost. wrong[1]: only the record.
	for i, e := range wrong[:2] {
		pd := fix(e)
		if _, err := f.env.JS.PublishMsg(ctx, recordMsg("shop", pd)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := f.env.JS.PublishMsg(ctx, eventMsg("shop", pd), jetstream.WithExpectStream("SRC")); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.settle(t)
	sum, err := List(ctx, f.env.JS, Filter{Policy: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.InDoubt["shop"] != 2 {
		t.Errorf("in doubt %v, want 2", sum.InDoubt)
	}
	// A redrive of wrong[2] only finishes the other two first.
	rep, err := Redrive(ctx, f.env.JS, Request{Policy: f.p, Fixes: map[uint64][]byte{wrong[2].Seq: fix(wrong[2]).payload}})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[uint64]Outcome{}
	for _, it := range rep.Items {
		outcomes[it.Seq] = it.Outcome
	}
	want := map[uint64]Outcome{wrong[0].Seq: OutcomeFinished, wrong[1].Seq: OutcomeSent, wrong[2].Seq: OutcomeSent}
	for seq, o := range want {
		if outcomes[seq] != o {
			t.Errorf("dlq seq %d: %q, want %q", seq, outcomes[seq], o)
		}
	}
	in := f.redrivenIn(t)
	for _, e := range wrong {
		if len(in[e.Seq]) != 1 {
			t.Errorf("dlq seq %d: %d in the source stream, want exactly 1", e.Seq, len(in[e.Seq]))
		}
	}
	if got := string(in[wrong[1].Seq][0].Data); got != string(fix(wrong[1]).payload) {
		t.Errorf("in-doubt dlq seq %d sent %q, want the recorded payload", wrong[1].Seq, got)
	}
	if left := f.deadLetters(t, messages.ReasonWrongType); len(left) != 0 {
		t.Errorf("%d dead letters left, want 0", len(left))
	}
}

func TestRequestValidate(t *testing.T) {
	p := testkit.Policy(t, policySrc)
	for _, tc := range []struct {
		name    string
		req     Request
		wantErr error
	}{
		{"reason", Request{Policy: p, Reason: "wrong_type"}, nil},
		{"seqs", Request{Policy: p, Seqs: []uint64{1}}, nil},
		{"fixes with a reason guard", Request{Policy: p, Reason: "wrong_type", Fixes: map[uint64][]byte{1: []byte(`{}`)}}, nil},
		{"no policy", Request{Reason: "wrong_type"}, ErrRequest},
		{"nothing selected", Request{Policy: p}, ErrRequest},
		{"reason and seqs", Request{Policy: p, Reason: "wrong_type", Seqs: []uint64{1}}, ErrRequest},
		{"seqs and fixes", Request{Policy: p, Seqs: []uint64{1}, Fixes: map[uint64][]byte{1: []byte(`{}`)}}, ErrRequest},
		{"late markers", Request{Policy: p, Reason: ReasonLateDropped}, ErrLateMarker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Validate() = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestReadFixes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    map[uint64]string
		wantErr error
	}{
		{"lines", "{\"dlq_seq\": 4, \"event\": {\"a\": 1}}\n\n{\"dlq_seq\":7,\"reason\":\"x\",\"event\":{ \"b\" : [1, 2] }}\n", map[uint64]string{4: `{"a":1}`, 7: `{"b":[1,2]}`}, nil},
		{"no event", `{"dlq_seq": 4}`, nil, ErrFixFile},
		{"only raw", `{"dlq_seq": 4, "raw": "{oops"}`, nil, ErrFixFile},
		{"null event", `{"dlq_seq": 4, "event": null}`, nil, ErrFixFile},
		{"no seq", `{"event": {}}`, nil, ErrFixFile},
		{"twice", "{\"dlq_seq\": 4, \"event\": {}}\n{\"dlq_seq\": 4, \"event\": {}}", nil, ErrFixFile},
		{"not json", `dlq_seq=4`, nil, ErrFixFile},
		{"empty", "\n", nil, ErrFixFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFixes(strings.NewReader(tc.in))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ReadFixes: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d fixes, want %d", len(got), len(tc.want))
			}
			for seq, w := range tc.want {
				if string(got[seq]) != w {
					t.Errorf("seq %d: %s, want %s", seq, got[seq], w)
				}
			}
		})
	}
}

func TestExportLineRoundTrip(t *testing.T) {
	for _, data := range []string{`{"id":"a","n":"2 pieces"}`, `{"id":`} {
		line, err := ExportLine(&Entry{Seq: 3, Reason: "r", Detail: "d", Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		fixes, err := ReadFixes(strings.NewReader(string(line)))
		if json := data != `{"id":`; json {
			if err != nil || string(fixes[3]) != data {
				t.Errorf("%s: exported %s, read back %q, %v", data, line, fixes[3], err)
			}
		} else if !errors.Is(err, ErrFixFile) || !strings.Contains(string(line), `"raw":`) {
			t.Errorf("%s: exported %s, read back: %v; want raw, refused", data, line, err)
		}
	}
}

// TestRedriveTruncatedUsesWholeEvent: a dead letter the collector cut to fit
// the stream is redriven with the whole event from the source stream.
func TestRedriveTruncatedUsesWholeEvent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	whole := fmt.Appendf(nil, `{"id":"big","n":"2 pieces","at":%q,"pad":%q}`, hour.Format(time.RFC3339), strings.Repeat("x", 200))
	f.publish(t, nil, whole)
	// A dead letter as the collector writes one that does not fit: cut, with the original size.
	m := nats.NewMsg(messages.DLQSubject("shop"))
	m.Data = whole[:60]
	for k, v := range map[string]string{
		messages.HeaderPolicy: "shop", messages.HeaderReason: messages.ReasonWrongType, messages.HeaderSourceStream: "SRC",
		messages.HeaderSourceSubject: "ev.a", messages.HeaderSourceSeq: "1", messages.HeaderTruncated: "true",
		messages.HeaderOriginalSize: strconv.Itoa(len(whole)),
	} {
		m.Header.Set(k, v)
	}
	ack, err := f.env.JS.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	widened := testkit.Policy(t, strings.Replace(policySrc, "{name: n, type: int64", "{name: n, type: string", 1))
	rep, err := Redrive(ctx, f.env.JS, Request{Policy: widened, Seqs: []uint64{ack.Sequence}})
	if err != nil || rep.Count(OutcomeSent) != 1 {
		t.Fatalf("redrive: %v, %+v", err, rep)
	}
	got := f.redrivenIn(t)[ack.Sequence]
	if len(got) != 1 || string(got[0].Data) != string(whole) || got[0].Header.Get(messages.HeaderTruncated) != "" {
		t.Errorf("redriven %v, want the whole event without the cut headers", got)
	}
}

// TestRedriveRefusesEventRedrivenBefore guards against a double load: the
// dead letter of an event that was redriven (its first dead letter deleted)
// and delivered again from the source stream (a recreated consumer) must
// not be redriven a second time.
func TestRedriveRefusesEventRedrivenBefore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.publish(t, nil, wrongType("w", 1))
	first := f.deadLetters(t, messages.ReasonWrongType)
	if len(first) != 1 {
		t.Fatalf("%d dead letters, want 1", len(first))
	}
	widened := f.widened(t)
	rep, err := Redrive(ctx, f.env.JS, Request{Policy: widened, Seqs: []uint64{first[0].Seq}})
	if err != nil || rep.Count(OutcomeSent) != 1 {
		t.Fatalf("redrive: %v, %+v", err, rep.Items)
	}
	f.settle(t)
	// The original event is dead-lettered again, as a collector does when
	// the source stream is delivered again.
	m := nats.NewMsg(messages.DeadLetterSubject("shop", first[0].SourceSeq, ""))
	m.Data = first[0].Data
	for k, v := range first[0].Header {
		if !strings.HasPrefix(k, "Nats-") {
			m.Header[k] = v
		}
	}
	ack, err := f.env.JS.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = Redrive(ctx, f.env.JS, Request{Policy: widened, Seqs: []uint64{ack.Sequence}})
	if err != nil || rep.Count(OutcomeAlreadyRedriven) != 1 || rep.Count(OutcomeSent) != 0 {
		t.Fatalf("redrive of the event's second dead letter: %v, %+v; want already redriven", err, rep.Items)
	}
	if got := f.redrivenIn(t)[ack.Sequence]; len(got) != 0 {
		t.Errorf("the event was published again: %v", got)
	}
}
