package loadtest

import (
	"context"
	"testing"
	"time"

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
