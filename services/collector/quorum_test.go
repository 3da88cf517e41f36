package collector

import "testing"

func TestWatermarkQuorum(t *testing.T) {
	var q wmQuorum
	if _, ok := q.cap(); ok {
		t.Fatal("cap of no events")
	}
	// Fewer than 100 events: the newest, as before.
	for i := range 50 {
		q.add(int64(i), 0)
	}
	if got, _ := q.cap(); got != 49 {
		t.Fatalf("cap of 50 events = %d, want the newest 49", got)
	}
	// 5,000 events in order and 40 from a day ahead (0.8%): the outliers
	// do not count.
	q = wmQuorum{}
	const day = int64(86_400_000_000)
	for i := range 5000 {
		q.add(int64(i), 0)
		if i%125 == 0 {
			q.add(day+int64(i), 0)
		}
	}
	if got, _ := q.cap(); got >= day || got < 4900 {
		t.Fatalf("cap = %d, want below the outliers and within 1%% of the newest in-order event (4999)", got)
	}
	// The ring forgets: after quorumEvents newer events the old outliers are gone.
	for i := range quorumEvents {
		q.add(10_000+int64(i), 0)
	}
	if got, _ := q.cap(); got < 10_000+quorumEvents*98/100 {
		t.Fatalf("cap after a full ring of newer events = %d", got)
	}
	// Only events ingested within quorumSpan of the newest count: a slow
	// stream's old events do not hold the offer back.
	q = wmQuorum{}
	for i := range 500 {
		q.add(int64(i), 0)
	}
	for i := range 10 {
		q.add(1000+int64(i), quorumSpan+1)
	}
	if got, _ := q.cap(); got != 1009 {
		t.Fatalf("cap after the old events left the span = %d, want the newest 1009", got)
	}
	// A share of outliers above 1% does count (the quorum moves).
	q = wmQuorum{}
	for i := range 1000 {
		q.add(int64(i), 0)
		if i%20 == 0 {
			q.add(day, 0)
		}
	}
	if got, _ := q.cap(); got != day {
		t.Fatalf("cap with 5%% outliers = %d, want %d", got, day)
	}
}
