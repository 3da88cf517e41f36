package staging_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/staging"
)

var day0 = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// registration is a valid SegmentRegistered of policy's window starting at start.
func registration(policy string, start time.Time, segmentID string, minSeq uint64) *messages.SegmentRegistered {
	return &messages.SegmentRegistered{
		Policy: policy, PolicyVersion: 1, WindowStart: start, WindowEnd: start.Add(24 * time.Hour),
		SegmentID: segmentID, Object: staging.SegmentKey(policy, messages.WindowID(start), segmentID),
		Rows: 10, Bytes: 1000, MinSourceSeq: minSeq, MaxSourceSeq: minSeq + 9,
		MinEventTime: start, MaxEventTime: start.Add(time.Hour), Collector: "c1", CreatedAt: start,
	}
}

// register publishes r with natsx.Publish and checks its stream sequence.
func register(t *testing.T, js jetstream.JetStream, r *messages.SegmentRegistered, wantSeq uint64) {
	t.Helper()
	ack, err := natsx.Publish(context.Background(), js, messages.SegmentSubject(r.Policy, messages.WindowID(r.WindowStart)), r, nil)
	if err != nil {
		t.Fatalf("publish %s: %v", r.SegmentID, err)
	}
	if wantSeq != 0 && ack.Sequence != wantSeq {
		t.Fatalf("registration %s stored at seq %d, want %d", r.SegmentID, ack.Sequence, wantSeq)
	}
}

// reregister stores r again under another Nats-Msg-Id, as a collector's retry
// after the duplicate window would.
func reregister(t *testing.T, js jetstream.JetStream, r *messages.SegmentRegistered, wantSeq uint64) {
	t.Helper()
	data, err := messages.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(messages.SegmentSubject(r.Policy, messages.WindowID(r.WindowStart)))
	m.Data = data
	m.Header.Set(messages.HeaderType, r.Type())
	ack, err := js.PublishMsg(context.Background(), m, jetstream.WithMsgID(r.MsgID()+"-retry"))
	if err != nil {
		t.Fatalf("republish %s: %v", r.SegmentID, err)
	}
	if ack.Sequence != wantSeq {
		t.Fatalf("republished %s stored at seq %d, want %d", r.SegmentID, ack.Sequence, wantSeq)
	}
}

type segSeq struct {
	seg string
	seq uint64
}

func summarize(regs []staging.Registration) []segSeq {
	var out []segSeq
	for _, r := range regs {
		out = append(out, segSeq{r.SegmentID, r.Seq})
	}
	return out
}

func TestReadRegistrations(t *testing.T) {
	ctx := context.Background()
	js := testkit.New(t).JS
	w, w2 := day0, day0.AddDate(0, 0, 1)
	register(t, js, registration("p", w, "a", 1), 1)
	register(t, js, registration("p", w2, "x", 100), 2)  // another window
	register(t, js, registration("q", w, "qa", 200), 3)  // another policy, same window id
	register(t, js, registration("p", w, "b", 11), 4)    //
	register(t, js, registration("p", w, "b", 11), 0)    // a retried publish: the stream drops it
	reregister(t, js, registration("p", w, "a", 1), 5)   // the same segment registered again
	register(t, js, registration("p", w, "c", 21), 6)    //
	register(t, js, registration("q", w2, "qx", 300), 7) //

	a, b, c := segSeq{"a", 1}, segSeq{"b", 4}, segSeq{"c", 6}
	tests := []struct {
		name   string
		policy string
		window time.Time
		cutoff uint64
		want   []segSeq
		after  uint64 // a revision's lower bound
	}{
		{"cutoff 0", "p", w, 0, nil, 0},
		{"cutoff at first", "p", w, 1, []segSeq{a}, 0},
		{"cutoff between own registrations", "p", w, 3, []segSeq{a}, 0},
		{"cutoff at second", "p", w, 4, []segSeq{a, b}, 0},
		{"cutoff at re-registration", "p", w, 5, []segSeq{a, b}, 0},
		{"cutoff at last", "p", w, 6, []segSeq{a, b, c}, 0},
		{"cutoff past the stream", "p", w, 1000, []segSeq{a, b, c}, 0},
		{"cutoff max", "p", w, math.MaxUint64, []segSeq{a, b, c}, 0},
		{"other window", "p", w2, math.MaxUint64, []segSeq{{"x", 2}}, 0},
		{"other window, cutoff before it", "p", w2, 1, nil, 0},
		{"other policy", "q", w, math.MaxUint64, []segSeq{{"qa", 3}}, 0},
		{"window without registrations", "p", day0.AddDate(0, 0, 5), math.MaxUint64, nil, 0},
		{"policy without registrations", "r", w, math.MaxUint64, nil, 0},
		{"revision after the first", "p", w, 6, []segSeq{b, {"a", 5}, c}, 1},
		{"revision after the second", "p", w, 6, []segSeq{{"a", 5}, c}, 4},
		{"revision after the re-registration", "p", w, 6, []segSeq{c}, 5},
		{"revision with nothing new", "p", w, 6, nil, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			regs, err := staging.ReadRegistrations(ctx, js, tt.policy, messages.WindowID(tt.window), tt.after, tt.cutoff)
			if err != nil {
				t.Fatalf("ReadRegistrations: %v", err)
			}
			if got := summarize(regs); !slices.Equal(got, tt.want) {
				t.Fatalf("ReadRegistrations(%s, %s, cutoff %d) = %v, want %v", tt.policy, messages.WindowID(tt.window), tt.cutoff, got, tt.want)
			}
			if tt.want == nil && regs != nil {
				t.Fatalf("ReadRegistrations = %#v, want nil", regs)
			}
			for _, r := range regs {
				if r.Policy != tt.policy || !r.WindowStart.Equal(tt.window) || r.Object != staging.SegmentKey(tt.policy, messages.WindowID(tt.window), r.SegmentID) || r.Rows != 10 {
					t.Errorf("registration %d decoded as %+v", r.Seq, r.SegmentRegistered)
				}
			}
		})
	}
}

// TestReadRegistrationsManyBatches reads more registrations than one fetch
// returns (1000), interleaved with another window's.
func TestReadRegistrationsManyBatches(t *testing.T) {
	ctx := context.Background()
	js := testkit.New(t).JS
	const n = 1100
	var want []segSeq
	var seq uint64
	for i := range n {
		seq++
		register(t, js, registration("p", day0, fmt.Sprintf("s%04d", i), uint64(i+1)), seq)
		want = append(want, segSeq{fmt.Sprintf("s%04d", i), seq})
		if i%100 == 0 {
			seq++
			register(t, js, registration("p", day0.AddDate(0, 0, 1), fmt.Sprintf("o%04d", i), uint64(i+1)), seq)
		}
	}
	for _, tt := range []struct {
		cutoff uint64
		want   []segSeq
		after  uint64 // a revision's lower bound
	}{
		{math.MaxUint64, want, 0},
		{want[1049].seq, want[:1050], 0},
		{want[999].seq, want[:1000], 0},
		{want[1000].seq, want[:1001], 0},
		{want[1049].seq, want[1000:1050], want[999].seq},
		{math.MaxUint64, want[1:], want[0].seq},
	} {
		regs, err := staging.ReadRegistrations(ctx, js, "p", messages.WindowID(day0), tt.after, tt.cutoff)
		if err != nil {
			t.Fatalf("ReadRegistrations(cutoff %d): %v", tt.cutoff, err)
		}
		if got := summarize(regs); !slices.Equal(got, tt.want) {
			t.Fatalf("ReadRegistrations(cutoff %d): %d registrations (first %v, last %v), want %d (last %v)",
				tt.cutoff, len(got), first(got), last(got), len(tt.want), last(tt.want))
		}
	}
}

func first(s []segSeq) any {
	if len(s) == 0 {
		return nil
	}
	return s[0]
}

func last(s []segSeq) any {
	if len(s) == 0 {
		return nil
	}
	return s[len(s)-1]
}

func TestReadRegistrationsRejectsBadMessages(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		typ     string
		data    []byte
		wantErr error
	}{
		{"other type", messages.TypeLoadCommand, []byte(`{}`), messages.ErrUnknownType},
		{"no type", "", []byte(`{}`), messages.ErrUnknownType},
		{"invalid registration", messages.TypeSegmentRegistered, []byte(`{"policy":"p","segment_id":"s"}`), messages.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := testkit.New(t).JS
			register(t, js, registration("p", day0, "a", 1), 1)
			m := nats.NewMsg(messages.SegmentSubject("p", messages.WindowID(day0)))
			m.Data = tt.data
			if tt.typ != "" {
				m.Header.Set(messages.HeaderType, tt.typ)
			}
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
			regs, err := staging.ReadRegistrations(ctx, js, "p", messages.WindowID(day0), 0, math.MaxUint64)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadRegistrations = %v, %v; want error %v", summarize(regs), err, tt.wantErr)
			}
			// Below the bad message's sequence the window still reads.
			regs, err = staging.ReadRegistrations(ctx, js, "p", messages.WindowID(day0), 0, 1)
			if err != nil || !slices.Equal(summarize(regs), []segSeq{{"a", 1}}) {
				t.Fatalf("ReadRegistrations(cutoff 1) = %v, %v; want [a@1]", summarize(regs), err)
			}
		})
	}
}

func TestReadRegistrationsWithoutStream(t *testing.T) {
	_, js := testnats.Connect(t, testnats.RunServer(t)) // not provisioned
	_, err := staging.ReadRegistrations(context.Background(), js, "p", messages.WindowID(day0), 0, 10)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("err = %v, want jetstream.ErrStreamNotFound", err)
	}
}
