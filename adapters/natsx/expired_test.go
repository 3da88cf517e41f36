package natsx

import "testing"

func TestExpiredRecord(t *testing.T) {
	var e Expired
	// 30 published, the stream keeps 10: first sequence 21, no consumer.
	e = e.Add(21, 0)
	if e != (Expired{Count: 20, Through: 20}) {
		t.Fatalf("after the first gap: %+v; want 20 through 20", e)
	}
	if e.Add(21, 0) != e || e.Add(21, 30) != e {
		t.Errorf("the same gap counted twice")
	}
	// The consumer delivered through 30; the stream then removed 31..40.
	if got := e.Add(41, 30); got != (Expired{Count: 30, Through: 40}) {
		t.Errorf("after a second gap: %+v; want 30 through 40", got)
	}
	if got := ParseExpired(e.Set(nil)); got != e {
		t.Errorf("round trip: %+v; want %+v", got, e)
	}
	if got := (Expired{}).Gap(1, 0); got != 0 {
		t.Errorf("nothing removed: gap %d", got)
	}
}

func TestHoldsOnly(t *testing.T) {
	for _, tc := range []struct {
		stream, policy []string
		want           bool
	}{
		{[]string{"ev.>"}, []string{"ev.>"}, true},
		{[]string{"ev.a", "ev.b"}, []string{"ev.>"}, true},
		{[]string{"ev.>"}, []string{"ev.a"}, false},
		{[]string{"ev.>", "other"}, []string{"ev.>"}, false},
		{nil, []string{"ev.>"}, false},
	} {
		if got := HoldsOnly(tc.stream, tc.policy); got != tc.want {
			t.Errorf("HoldsOnly(%v, %v) = %v; want %v", tc.stream, tc.policy, got, tc.want)
		}
	}
}
