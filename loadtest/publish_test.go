package loadtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/internal/testnats"
)

// TestPublisherReportsDuplicateAcks guards OnAck: a publish the stream
// dropped as a duplicate is reported as such, with the sequence of the
// message it repeats, so that callers can count what was not stored.
func TestPublisherReportsDuplicateAcks(t *testing.T) {
	_, js := testnats.Connect(t, testnats.RunServer(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	ids := []string{"a", "b", "a", "c", "b"}
	type answer struct {
		dup bool
		seq uint64
	}
	got := make([]answer, len(ids))
	seen := 0
	pub := &Publisher{JS: js, OnAck: func(i int, ack *jetstream.PubAck, retried bool) {
		if retried {
			t.Errorf("event %d was retried", i)
		}
		got[i] = answer{ack.Duplicate, ack.Sequence}
		seen++
	}}
	err := pub.Publish(ctx, len(ids), func(i int) (string, []byte, string) {
		return "t.x", []byte(ids[i]), ids[i]
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []answer{{false, 1}, {false, 2}, {true, 1}, {false, 3}, {true, 2}}
	if seen != len(ids) {
		t.Fatalf("OnAck called %d times, want %d", seen, len(ids))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d (id %s): duplicate=%v seq=%d, want duplicate=%v seq=%d", i, ids[i], got[i].dup, got[i].seq, want[i].dup, want[i].seq)
		}
	}
}

// lossyJS is a stream that loses the first publish of some events, as a
// connection that breaks loses what it had not yet delivered: the event's
// PubAckFuture reports an error and the Publisher sends it again. It
// stores the rest in arrival order, dropping repeated msg ids.
type lossyJS struct {
	jetstream.JetStream // only PublishMsgAsync is used
	mu                  sync.Mutex
	lose                map[string]bool
	stored              []string
	seq                 map[string]uint64
}

type doneFuture struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *doneFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *doneFuture) Err() <-chan error            { return f.err }
func (f *doneFuture) Msg() *nats.Msg               { return f.msg }

func (j *lossyJS) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f := &doneFuture{msg: m, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	id := m.Header.Get(jetstream.MsgIDHeader)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.lose[id] {
		delete(j.lose, id)
		f.err <- nats.ErrDisconnected
		return f, nil
	}
	if seq, ok := j.seq[id]; ok {
		f.ok <- &jetstream.PubAck{Stream: "T", Sequence: seq, Duplicate: true}
		return f, nil
	}
	j.stored = append(j.stored, id)
	j.seq[id] = uint64(len(j.stored))
	f.ok <- &jetstream.PubAck{Stream: "T", Sequence: uint64(len(j.stored))}
	return f, nil
}

// TestPublisherBoundsReorderingOfRetriedEvents: an event whose publish
// failed is sent again after the events published while it was in flight.
// Without MaxOutOfOrder those can be hours newer (the whole window of
// in-flight publishes), and a pipeline whose watermark came from them
// drops the re-sent event as late (TestMergeModeKeepsTheNewestRowPerKey
// once sealed hour 8 with 54 of its 300 events); with it, no event is
// stored after one more than MaxOutOfOrder newer.
func TestPublisherBoundsReorderingOfRetriedEvents(t *testing.T) {
	h0 := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	var events []Event
	for i := range 300 { // hour 8, then hours 9 and 10
		events = append(events, Event{Subject: "t.x", Time: h0.Add(time.Duration(i) * time.Second)})
	}
	for i := range 100 {
		events = append(events, Event{Subject: "t.x", Time: h0.Add(time.Hour + time.Duration(i)*time.Second)})
	}
	for i := range 20 {
		events = append(events, Event{Subject: "t.x", Time: h0.Add(2*time.Hour + time.Duration(i)*time.Second)})
	}
	lost := []int{0, 1, 2, 150, 299, 399, 419}
	// worstLag is how much older than the newest event stored before it
	// the most belated stored event is.
	worstLag := func(stored []string) (time.Duration, string) {
		var newest time.Time
		var worst time.Duration
		var which string
		for _, id := range stored {
			var i int
			if _, err := fmt.Sscanf(id, "e-%d", &i); err != nil {
				t.Fatal(err)
			}
			at := events[i].Time
			if lag := newest.Sub(at); lag > worst {
				worst, which = lag, fmt.Sprintf("event %d (%s) stored after one of %s", i, at.Format(time.TimeOnly), newest.Format(time.TimeOnly))
			}
			if at.After(newest) {
				newest = at
			}
		}
		return worst, which
	}
	for _, bound := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprintf("MaxOutOfOrder=%s", bound), func(t *testing.T) {
			js := &lossyJS{lose: map[string]bool{}, seq: map[string]uint64{}}
			for _, i := range lost {
				js.lose[fmt.Sprintf("e-%d", i)] = true
			}
			retried := 0
			pub := &Publisher{JS: js, MaxOutOfOrder: bound, OnAck: func(_ int, _ *jetstream.PubAck, r bool) {
				if r {
					retried++
				}
			}}
			if err := pub.PublishEvents(context.Background(), events, "e"); err != nil {
				t.Fatal(err)
			}
			if len(js.stored) != len(events) || retried != len(lost) {
				t.Fatalf("stored %d events (want %d), %d retried (want %d)", len(js.stored), len(events), retried, len(lost))
			}
			lag, which := worstLag(js.stored)
			t.Logf("worst lag %s: %s", lag, which)
			if bound == 0 && lag < time.Hour {
				t.Errorf("without MaxOutOfOrder the re-sent events lag only %s; the test no longer shows the reordering", lag)
			}
			if bound > 0 && lag > bound {
				t.Errorf("%s: %s behind, more than MaxOutOfOrder %s", which, lag, bound)
			}
		})
	}
}
