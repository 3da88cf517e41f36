package collector

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// staged is the expectation of a bad-input case that must be staged rather
// than dead-lettered.
const staged = "staged"

// badInputPolicy is the policy of the bad-input corpus; its time field reads
// epoch numbers in unit. Events beyond 1h after ingest are "future".
func badInputPolicy(t *testing.T, unit windows.EpochUnit) *windows.Policy {
	return testkit.Policy(t, fmt.Sprintf(`name: bad_%[1]s
source: {stream: SRC, subjects: [in.%[1]s.>]}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: n, type: int64, required: true}
    - {name: amount, type: float64}
    - {name: at, type: timestamp, required: true, unit: %[1]s}
time: {field: at}
window: {size: 1h, future_horizon: 1h}
segment: {max_rows: 1000, max_age: 100ms}
load: {table: bad_%[1]s}
`, unit))
}

// badEvent is an event of the corpus policy with the raw JSON value at as
// its time and the other fields overridden by kv pairs (raw JSON values;
// "-" removes a field).
func badEvent(at string, kv ...string) []byte {
	keys := []string{"id", "n", "amount", "at"}
	vals := map[string]string{"id": `"e"`, "n": "1", "amount": "2.5", "at": at}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := vals[kv[i]]; !ok {
			keys = append(keys, kv[i])
		}
		vals[kv[i]] = kv[i+1]
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for _, k := range keys {
		if vals[k] == "-" {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", k, vals[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// badInputCase is one event of the corpus: what is published, to which
// policy, and what must become of it.
type badInputCase struct {
	name string
	unit windows.EpochUnit // the policy's epoch unit; "" is ms
	data []byte
	want string    // a messages.Reason* the event is dead-lettered with, or staged
	at   time.Time // staged: the event time it must decode to
}

// badInputCases is the corpus: one event of each kind of bad input, and
// every timestamp form that must be staged. Each staged case has an hour of
// its own, so its window's state shows exactly that event and its time.
func badInputCases(now time.Time) []badInputCase {
	base := time.Date(2021, 3, 4, 0, 0, 0, 0, time.UTC)
	hour := func(h int) time.Time { return base.Add(time.Duration(h) * time.Hour) }
	q := strconv.Quote
	ok := `"2021-03-04T00:30:00Z"`
	deep := strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000)
	future := now.Add(30 * time.Minute).Truncate(time.Second)
	return []badInputCase{
		// Malformed JSON.
		{name: "truncated JSON", data: []byte(`{"id":"e","n":1,`), want: messages.ReasonMalformedJSON},
		{name: "not an object", data: []byte(`[1,2,3]`), want: messages.ReasonMalformedJSON},
		{name: "empty payload", data: []byte{}, want: messages.ReasonMalformedJSON},
		{name: "trailing garbage", data: append(badEvent(ok), '}'), want: messages.ReasonMalformedJSON},
		{name: "deep nesting as the event", data: []byte(strings.Repeat(`{"a":`, 10_000) + "1" + strings.Repeat("}", 10_000)), want: messages.ReasonMalformedJSON},
		{name: "deep nesting in an ignored field", data: badEvent(ok, "deep", deep), want: messages.ReasonMalformedJSON},

		// Wrong types.
		{name: "string for int64", data: badEvent(ok, "n", `"1"`), want: messages.ReasonWrongType},
		{name: "number for string", data: badEvent(ok, "id", "5"), want: messages.ReasonWrongType},
		{name: "object for timestamp", data: badEvent(`{"seconds":1}`), want: messages.ReasonWrongType},
		{name: "fraction for int64", data: badEvent(ok, "n", "1.5"), want: messages.ReasonWrongType},

		// Missing and null required fields.
		{name: "missing required field", data: badEvent(ok, "id", "-"), want: messages.ReasonMissingField},
		{name: "missing time field", data: badEvent("-"), want: messages.ReasonMissingField},
		{name: "null required field", data: badEvent(ok, "n", "null"), want: messages.ReasonMissingField},

		// NaN and infinities, as fastjson reads them; numbers out of range.
		{name: "NaN float", data: badEvent(ok, "amount", "NaN"), want: messages.ReasonOutOfRange},
		{name: "-inf float", data: badEvent(ok, "amount", "-inf"), want: messages.ReasonOutOfRange},
		{name: "Inf int64", data: badEvent(ok, "n", "Inf"), want: messages.ReasonOutOfRange},
		{name: "Infinity is not JSON", data: badEvent(ok, "amount", "Infinity"), want: messages.ReasonMalformedJSON},
		{name: "int64 overflow", data: badEvent(ok, "n", "9223372036854775808"), want: messages.ReasonOutOfRange},
		{name: "float 1e400", data: badEvent(ok, "amount", "1e400"), want: messages.ReasonOutOfRange},

		// Invalid UTF-8 and size.
		{name: "invalid UTF-8 in a string", data: badEvent(ok, "id", "\"a\xffb\""), want: messages.ReasonInvalidUTF8},
		{name: "oversized event", data: badEvent(ok, "id", q(strings.Repeat("x", records.MaxEventBytes))), want: messages.ReasonOutOfRange},
		// Just under the server's 8 MiB limit: the dead letter (payload plus
		// windrow's headers) must still fit, cut if need be.
		{name: "event at the server's size limit", data: badEvent(ok, "id", q(strings.Repeat("y", 8<<20-120))), want: messages.ReasonOutOfRange},

		// Every supported timestamp form is staged, at the instant it names.
		{name: "RFC 3339 Z", data: badEvent(`"2021-03-04T01:00:00Z"`), want: staged, at: hour(1)},
		{name: "RFC 3339 positive offset", data: badEvent(`"2021-03-04T04:30:00+02:00"`), want: staged, at: hour(2).Add(30 * time.Minute)},
		{name: "RFC 3339 negative offset", data: badEvent(`"2021-03-03T22:45:00-04:30"`), want: staged, at: hour(3).Add(15 * time.Minute)},
		{name: "RFC 3339 millisecond fraction", data: badEvent(`"2021-03-04T04:00:00.123Z"`), want: staged, at: hour(4).Add(123 * time.Millisecond)},
		{name: "RFC 3339 nanoseconds truncated", data: badEvent(`"2021-03-04T05:00:00.123456789Z"`), want: staged, at: hour(5).Add(123456 * time.Microsecond)},
		{name: "RFC 3339 fraction and offset", data: badEvent(`"2021-03-04T07:00:00.5+01:00"`), want: staged, at: hour(6).Add(500 * time.Millisecond)},
		{name: "RFC 3339 lowercase t and z", data: badEvent(`"2021-03-04t07:00:00z"`), want: staged, at: hour(7)},
		{name: "RFC 3339 space separator", data: badEvent(`"2021-03-04 08:00:00Z"`), want: staged, at: hour(8)},
		{name: "epoch s", unit: windows.UnitSeconds, data: badEvent(strconv.FormatInt(hour(9).Unix(), 10)), want: staged, at: hour(9)},
		{name: "epoch ms", data: badEvent(strconv.FormatInt(hour(10).Add(123*time.Millisecond).UnixMilli(), 10)), want: staged, at: hour(10).Add(123 * time.Millisecond)},
		{name: "epoch us", unit: windows.UnitMicroseconds, data: badEvent(strconv.FormatInt(hour(11).Add(123456*time.Microsecond).UnixMicro(), 10)), want: staged, at: hour(11).Add(123456 * time.Microsecond)},
		{name: "epoch ns", unit: windows.UnitNanoseconds, data: badEvent(strconv.FormatInt(hour(12).Add(123456789).UnixNano(), 10)), want: staged, at: hour(12).Add(123456 * time.Microsecond)},
		{name: "epoch ms before 1970", data: badEvent("-1000"), want: staged, at: time.UnixMilli(-1000).UTC()},
		{name: "RFC 3339 within the future horizon", data: badEvent(q(future.Format(time.RFC3339))), want: staged, at: future},

		// Wrong timestamp forms are dead-lettered.
		{name: "timestamp without zone", data: badEvent(`"2021-03-04T01:00:00"`), want: messages.ReasonWrongType},
		{name: "timestamp date only", data: badEvent(`"2021-03-04"`), want: messages.ReasonWrongType},
		{name: "timestamp in words", data: badEvent(`"yesterday"`), want: messages.ReasonWrongType},
		{name: "timestamp hour 24", data: badEvent(`"2021-03-04T24:00:00Z"`), want: messages.ReasonWrongType},
		{name: "timestamp offset without colon", data: badEvent(`"2021-03-04T01:00:00+0200"`), want: messages.ReasonWrongType},
		{name: "timestamp as bool", data: badEvent("true"), want: messages.ReasonWrongType},
		{name: "epoch with a fraction", data: badEvent("1614816000000.5"), want: messages.ReasonWrongType},
		{name: "epoch ns as a string", unit: windows.UnitNanoseconds, data: badEvent(q(strconv.FormatInt(hour(1).UnixNano(), 10))), want: messages.ReasonWrongType},
		{name: "timestamp year 0", data: badEvent(`"0000-06-01T00:00:00Z"`), want: messages.ReasonOutOfRange},
		{name: "epoch s after year 9999", unit: windows.UnitSeconds, data: badEvent("253402300800"), want: messages.ReasonOutOfRange},

		// Beyond the future horizon (1h after ingest).
		{name: "two days ahead", data: badEvent(q(now.Add(48 * time.Hour).Format(time.RFC3339))), want: messages.ReasonFuture},
		{name: "year 9999", data: badEvent(`"9999-12-31T23:59:59Z"`), want: messages.ReasonFuture},
	}
}

// TestCollectorBadInputCorpus publishes one event of every kind of bad input,
// and every supported timestamp form, through real collectors (one policy
// per epoch unit), each case after a valid event. It checks that every bad
// event is dead-lettered exactly once with its reason and original payload,
// that every valid one is staged in the window of the instant it names, that
// the collectors keep running (a valid event published after the bad ones
// are dead-lettered is staged), and that nothing is left un-acked.
func TestCollectorBadInputCorpus(t *testing.T) {
	env := bigPayloadEnv(t)
	ctx := context.Background()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, "SRC", []string{"in.>"}); err != nil {
		t.Fatal(err)
	}
	units := []windows.EpochUnit{windows.UnitMilliseconds, windows.UnitSeconds, windows.UnitMicroseconds, windows.UnitNanoseconds}
	policies := map[windows.EpochUnit]*windows.Policy{}
	collectors := map[windows.EpochUnit]*Service{}
	for _, u := range units {
		policies[u] = badInputPolicy(t, u)
		collectors[u] = startCollector(t, env, policies[u])
	}

	type stagedWant struct {
		rows     int64
		min, max time.Time
	}
	// Expected window states by policy and window id.
	wantStaged := map[string]map[string]*stagedWant{}
	expectStaged := func(p *windows.Policy, at time.Time) {
		win := windows.Window{Start: at.Truncate(time.Hour)}
		if wantStaged[p.Name] == nil {
			wantStaged[p.Name] = map[string]*stagedWant{}
		}
		w := wantStaged[p.Name][win.ID()]
		if w == nil {
			w = &stagedWant{min: at, max: at}
			wantStaged[p.Name][win.ID()] = w
		}
		w.rows++
		w.min, w.max = minTime(w.min, at), maxTime(w.max, at)
	}
	pub := func(u windows.EpochUnit, data []byte) uint64 {
		t.Helper()
		ack, err := env.JS.Publish(ctx, "in."+string(u)+".x", data)
		if err != nil {
			t.Fatalf("publish %.60q: %v", data, err)
		}
		return ack.Sequence
	}
	// A valid event of the ms policy in the filler window.
	filler := time.Date(2021, 3, 5, 0, 0, 0, 0, time.UTC)
	fillers := 0
	publishFiller := func() {
		at := filler.Add(time.Duration(fillers) * time.Second)
		fillers++
		pub(windows.UnitMilliseconds, badEvent(strconv.Quote(at.Format(time.RFC3339)), "id", strconv.Quote(fmt.Sprintf("filler-%d", fillers))))
		expectStaged(policies[windows.UnitMilliseconds], at)
	}

	cases := badInputCases(time.Now())
	type deadLetter struct {
		c      badInputCase
		policy string
	}
	wantDLQ := map[uint64]deadLetter{} // by source sequence
	bad := map[string]int{}            // dead letters by policy
	for _, c := range cases {
		if c.unit == "" {
			c.unit = windows.UnitMilliseconds
		}
		p := policies[c.unit]
		publishFiller()
		seq := pub(c.unit, c.data)
		if c.want == staged {
			if w := wantStaged[p.Name][windows.Window{Start: c.at.Truncate(time.Hour)}.ID()]; w != nil {
				t.Fatalf("case %q: its window already holds another case: give it an hour of its own", c.name)
			}
			expectStaged(p, c.at)
			continue
		}
		wantDLQ[seq] = deadLetter{c: c, policy: p.Name}
		bad[p.Name]++
	}
	publishFiller()

	// Every bad event is dead-lettered once, with its reason and payload.
	dlq := readDeadLetters(t, env.JS, len(wantDLQ))
	for seq, w := range wantDLQ {
		m, ok := dlq[seq]
		if !ok {
			t.Errorf("case %q (seq %d): not dead-lettered, want reason %s", w.c.name, seq, w.c.want)
			continue
		}
		h := m.Headers()
		if got := h.Get(messages.HeaderReason); got != w.c.want {
			t.Errorf("case %q (seq %d): dead-letter reason %q, want %q (detail: %s)", w.c.name, seq, got, w.c.want, h.Get(messages.HeaderDetail))
		}
		if got := h.Get(messages.HeaderPolicy); got != w.policy {
			t.Errorf("case %q (seq %d): dead-letter policy %q, want %q", w.c.name, seq, got, w.policy)
		}
		if h.Get(messages.HeaderDetail) == "" {
			t.Errorf("case %q (seq %d): dead letter without %s", w.c.name, seq, messages.HeaderDetail)
		}
		switch {
		case h.Get(messages.HeaderTruncated) == "true":
			// Cut to fit the server's maximum message size: a prefix of the
			// original, whose size is recorded.
			if !bytes.HasPrefix(w.c.data, m.Data()) || h.Get(messages.HeaderOriginalSize) != strconv.Itoa(len(w.c.data)) {
				t.Errorf("case %q (seq %d): truncated dead letter of %d bytes is not a prefix of the %d-byte original (original size header %q)",
					w.c.name, seq, len(m.Data()), len(w.c.data), h.Get(messages.HeaderOriginalSize))
			}
		case !bytes.Equal(m.Data(), w.c.data):
			t.Errorf("case %q (seq %d): dead letter carries %d bytes, not the original %d", w.c.name, seq, len(m.Data()), len(w.c.data))
		}
	}
	for seq, m := range dlq {
		if _, ok := wantDLQ[seq]; !ok {
			t.Errorf("seq %d was dead-lettered (%s: %s) but is valid", seq, m.Headers().Get(messages.HeaderReason), m.Headers().Get(messages.HeaderDetail))
		}
	}

	// The collectors went on: a valid event published after every bad one
	// was dead-lettered is staged by each of them.
	for _, u := range units {
		at := filler.Add(time.Hour + time.Duration(len(u))*time.Minute)
		pub(u, badEvent(strconv.Quote(at.Format(time.RFC3339)), "id", `"after-the-bad-ones"`))
		expectStaged(policies[u], at)
	}

	// Every valid event is staged, in the window of the instant it names.
	for _, u := range units {
		p := policies[u]
		want := wantStaged[p.Name]
		testnats.WaitForNil(t, 30*time.Second, func() error {
			states, err := env.States.List(ctx, p.Name)
			if err != nil {
				return err
			}
			got := map[string]*messages.WindowState{}
			for _, st := range states {
				got[windows.Window{Start: st.WindowStart}.ID()] = st
			}
			for id, w := range want {
				st := got[id]
				if st == nil {
					return fmt.Errorf("policy %s window %s: no state, want %d staged rows", p.Name, id, w.rows)
				}
				if st.StagedRows != w.rows || !st.MinEventTime.Equal(w.min) || !st.MaxEventTime.Equal(w.max) {
					return fmt.Errorf("policy %s window %s: %d rows staged, event times %s..%s; want %d rows, %s..%s",
						p.Name, id, st.StagedRows, st.MinEventTime.Format(time.RFC3339Nano), st.MaxEventTime.Format(time.RFC3339Nano),
						w.rows, w.min.Format(time.RFC3339Nano), w.max.Format(time.RFC3339Nano))
				}
			}
			for id, st := range got {
				if want[id] == nil {
					return fmt.Errorf("policy %s: unexpected window %s with %d staged rows", p.Name, id, st.StagedRows)
				}
			}
			return nil
		})
		// Nothing stays un-acked.
		testnats.WaitForNil(t, 10*time.Second, testnats.ConsumerSettled(env.JS, p.Source.Stream, messages.CollectorConsumer(p.Name)))
	}

	for _, u := range units {
		c, p := collectors[u], policies[u]
		if err := c.err(); err != nil {
			t.Errorf("collector %s failed: %v", p.Name, err)
		}
		var rows int64
		for _, w := range wantStaged[p.Name] {
			rows += w.rows
		}
		if got := c.Stats(); got.DeadLettered != int64(bad[p.Name]) || got.Staged != rows || got.LateDropped != 0 {
			t.Errorf("collector %s stats %+v, want %d dead-lettered, %d staged, none late", p.Name, got, bad[p.Name], rows)
		}
	}
}

// bigPayloadEnv is testkit.New on a server whose max payload is that of
// windrow's embedded server (8 MiB), so that an event over
// records.MaxEventBytes (1 MiB, the NATS default max payload) reaches the
// collector at all.
func bigPayloadEnv(t *testing.T) *testkit.Env {
	t.Helper()
	srv := testnats.RunServer(t, func(o *server.Options) { o.MaxPayload = 8 << 20 })
	nc, js := testnats.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := natsx.Provision(ctx, js)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	store, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &testkit.Env{Server: srv, Conn: nc, JS: js, Topology: topo, Store: store,
		States: statestore.New(topo.Windows), Watermarks: statestore.NewWatermarks(topo.Watermarks)}
}

// readDeadLetters waits until the DLQ stream holds n messages and returns
// them by their Windrow-Source-Seq header.
func readDeadLetters(t *testing.T, js jetstream.JetStream, n int) map[uint64]jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	testnats.WaitForNil(t, 30*time.Second, func() error {
		s, err := js.Stream(ctx, messages.StreamDLQ)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs < uint64(n) {
			return fmt.Errorf("%d dead letters, want %d", info.State.Msgs, n)
		}
		return nil
	})
	oc, err := js.OrderedConsumer(ctx, messages.StreamDLQ, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]jetstream.Msg{}
	for read := 0; read < n; {
		mb, err := oc.Fetch(n-read, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range mb.Messages() {
			got++
			seq, err := strconv.ParseUint(m.Headers().Get(messages.HeaderSourceSeq), 10, 64)
			if err != nil {
				t.Fatalf("dead letter on %s without a source sequence: %v", m.Subject(), err)
			}
			if _, dup := out[seq]; dup {
				t.Errorf("seq %d dead-lettered twice", seq)
			}
			out[seq] = m
		}
		if err := mb.Error(); err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			t.Fatalf("read %d of %d dead letters", read, n)
		}
		read += got
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
