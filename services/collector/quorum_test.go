package collector

import "testing"

// addNext adds an event at the next source sequence.
func addNext(q *wmQuorum, t, ingest int64) { q.add(t, ingest, q.maxSeq+1) }

func TestWatermarkQuorum(t *testing.T) {
	var q wmQuorum
	if _, _, ok := q.cap(); ok {
		t.Fatal("cap of no events")
	}
	// One event: its time (a slow stream).
	addNext(&q, 7, 0)
	if got, _, _ := q.cap(); got != 7 {
		t.Fatalf("cap of one event = %d, want 7", got)
	}
	// Fewer than 100 events: the newest, as before the quorum; the
	// sequence behind the cap is the highest one taken.
	q = wmQuorum{}
	const day = int64(86_400_000_000)
	for i := range 50 {
		addNext(&q, int64(i), 0)
	}
	if got, seq, _ := q.cap(); got != 49 || seq != 50 {
		t.Fatalf("cap of 50 events = %d (sequence %d), want the newest 49 and the highest sequence 50", got, seq)
	}
	// 5,000 events in order and 40 from a day ahead (0.8%): the outliers
	// do not count.
	q = wmQuorum{}
	for i := range 5000 {
		addNext(&q, int64(i), 0)
		if i%125 == 0 {
			addNext(&q, day+int64(i), 0)
		}
	}
	if got, _, _ := q.cap(); got >= day || got < 4900 {
		t.Fatalf("cap = %d, want below the outliers and within 1%% of the newest in-order event (4999)", got)
	}
	// The ring forgets: after quorumEvents newer events the old outliers are gone.
	for i := range quorumEvents {
		addNext(&q, 10_000+int64(i), 0)
	}
	if got, _, _ := q.cap(); got < 10_000+quorumEvents*98/100 {
		t.Fatalf("cap after a full ring of newer events = %d", got)
	}
	// Only events ingested within quorumSpan of the newest count: a slow
	// stream's old events do not hold the offer back.
	q = wmQuorum{}
	for i := range 500 {
		addNext(&q, int64(i), 0)
	}
	for i := range 10 {
		addNext(&q, 1000+int64(i), quorumSpan+1)
	}
	if got, _, _ := q.cap(); got != 1009 {
		t.Fatalf("cap after the old events left the span = %d, want the newest 1009", got)
	}
	// A share of outliers above 1% does count (the quorum moves).
	q = wmQuorum{}
	for i := range 1000 {
		addNext(&q, int64(i), 0)
		if i%20 == 0 {
			addNext(&q, day, 0)
		}
	}
	if got, _, _ := q.cap(); got != day {
		t.Fatalf("cap with 5%% outliers = %d, want %d", got, day)
	}
}

// TestOfferGate: a segment whose offer the quorum lowers (events from a
// clock that runs ahead) is gated on the highest sequence behind the
// quorum; one whose own newest event is below the cap is gated on its own
// sequences (0: the registration's MaxSourceSeq).
func TestOfferGate(t *testing.T) {
	b := &batch{wmCap: 100, wmCapSeq: 42, wmCapped: true}
	if got, gate := (&windowBuf{wmEvt: 5_000}).offer(b); got != 100 || gate != 42 {
		t.Errorf("ahead segment: offer %d gate %d, want 100 and 42", got, gate)
	}
	if got, gate := (&windowBuf{wmEvt: 90}).offer(b); got != 90 || gate != 0 {
		t.Errorf("in-order segment: offer %d gate %d, want 90 and 0", got, gate)
	}
	if got, gate := (&windowBuf{wmEvt: 5_000}).offer(&batch{}); got != 5_000 || gate != 0 {
		t.Errorf("no quorum yet: offer %d gate %d, want 5000 and 0", got, gate)
	}
}
