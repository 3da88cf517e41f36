package windows

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func tumblingSpec(size time.Duration, zone string) WindowSpec {
	return WindowSpec{Kind: Tumbling, Size: Duration(size), Timezone: zone}
}

func hoppingSpec(size, slide time.Duration, zone string) WindowSpec {
	return WindowSpec{Kind: Hopping, Size: Duration(size), Slide: Duration(slide), Timezone: zone}
}

func mustZone(t fataler, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestSwitchInstant(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	floor := time.Date(2026, 11, 26, 2, 55, 19, 0, time.UTC)
	sixDays := time.Unix((floor.Unix()/86400/6+1)*6*86400, 0).UTC()
	tests := []struct {
		name      string
		old, next WindowSpec
		floor     time.Time
		want      time.Time
		wantErr   error
		wantMsg   string
	}{
		{name: "1h to 2h: the next even hour", old: tumblingSpec(time.Hour, "UTC"), next: tumblingSpec(2*time.Hour, "UTC"),
			floor: floor, want: time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)},
		{name: "1h to 1d: the next midnight", old: tumblingSpec(time.Hour, "UTC"), next: tumblingSpec(24*time.Hour, "UTC"),
			floor: floor, want: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)},
		{name: "2h to 1h: the next 2h boundary", old: tumblingSpec(2*time.Hour, "UTC"), next: tumblingSpec(time.Hour, "UTC"),
			floor: floor, want: time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)},
		{name: "a floor on a common boundary is T", old: tumblingSpec(time.Hour, "UTC"), next: tumblingSpec(30*time.Minute, "UTC"),
			floor: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), want: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)},
		{name: "whole days: lcm of 2 and 3 days", old: tumblingSpec(48*time.Hour, "UTC"), next: tumblingSpec(72*time.Hour, "UTC"),
			floor: floor, want: sixDays}, // days since 1970 a multiple of 2 and of 3
		{name: "hourly UTC to daily New York: New York midnight", old: tumblingSpec(time.Hour, "UTC"), next: tumblingSpec(24*time.Hour, "America/New_York"),
			floor: floor, want: time.Date(2026, 11, 26, 0, 0, 0, 0, ny).UTC()},
		{name: "hopping 1h/15m to 2h/30m: a 30m boundary", old: hoppingSpec(time.Hour, 15*time.Minute, "UTC"), next: hoppingSpec(2*time.Hour, 30*time.Minute, "UTC"),
			floor: floor, want: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)},
		{name: "tumbling 1h to hopping 1h/15m", old: tumblingSpec(time.Hour, "UTC"), next: hoppingSpec(time.Hour, 15*time.Minute, "UTC"),
			floor: floor, want: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)},
		{name: "daily UTC to daily New York never meet", old: tumblingSpec(24*time.Hour, "UTC"), next: tumblingSpec(24*time.Hour, "America/New_York"),
			floor: floor, wantErr: ErrInvalidPolicy, wantMsg: "window.timezone: no instant within 100000 windows after 2026-11-26T02:55:19Z is both a boundary of the current 24h0m0s tumbling windows in UTC and of the new 24h0m0s tumbling windows in America/New_York"},
		{name: "session windows have no boundaries", old: tumblingSpec(time.Hour, "UTC"), next: WindowSpec{Kind: SessionWindows, Gap: Duration(time.Minute), Timezone: "UTC"},
			floor: floor, wantErr: ErrInvalidPolicy, wantMsg: "window.kind: session windows have no fixed boundaries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Policy{Window: tt.old}
			got, err := p.SwitchInstant(tt.next, tt.floor)
			if !errors.Is(err, tt.wantErr) || (err != nil && !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Fatalf("SwitchInstant: %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			if tt.wantErr != nil {
				return
			}
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Fatalf("SwitchInstant = %v, want %v (UTC)", got, tt.want)
			}
		})
	}
}

// TestSwitchInstantLeavesAWholeWindow: a shape that began at a switch
// instant keeps at least one whole window before the next switch.
func TestSwitchInstantLeavesAWholeWindow(t *testing.T) {
	t1 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	p := &Policy{Window: hoppingSpec(6*time.Hour, time.Hour, "UTC"), WindowHistory: []PastShape{tumblingSpec(time.Hour, "UTC").PastShape(t1)}}
	got, err := p.SwitchInstant(tumblingSpec(time.Hour, "UTC"), t1.Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := t1.Add(6 * time.Hour); !got.Equal(want) {
		t.Fatalf("SwitchInstant = %v, want %v: the first 6h window after %v", got, want, t1)
	}
}

// epochCase is a shape change at T, drawn for the property test.
type epochCase struct {
	old, next WindowSpec
	floor, t  time.Time
	x         *EpochAssigner
}

var epochSizes = []time.Duration{
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 72 * time.Hour,
}

func drawShape(t *rapid.T, label, zone string) WindowSpec {
	size := rapid.SampledFrom(epochSizes).Draw(t, label+" size")
	if !rapid.Bool().Draw(t, label+" hopping") {
		return tumblingSpec(size, zone)
	}
	// The slide divides size and aligns: a size from the list, at most 48 slides.
	var slides []time.Duration
	for _, s := range epochSizes {
		if s <= size && size%s == 0 && size/s <= 48 {
			slides = append(slides, s)
		}
	}
	return hoppingSpec(size, rapid.SampledFrom(slides).Draw(t, label+" slide"), zone)
}

func drawEpochCase(t *rapid.T) epochCase {
	zone := rapid.SampledFrom([]string{"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"}).Draw(t, "zone")
	nextZone := zone
	if rapid.IntRange(0, 3).Draw(t, "other zone") == 0 {
		nextZone = "UTC"
	}
	c := epochCase{old: drawShape(t, "old", zone), next: drawShape(t, "next", nextZone)}
	c.floor = time.UnixMicro(rapid.Int64Range(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()).Draw(t, "floor"))
	p := &Policy{Window: c.old}
	var err error
	if c.t, err = p.SwitchInstant(c.next, c.floor); err != nil {
		if zone != nextZone && errors.Is(err, ErrInvalidPolicy) && strings.Contains(err.Error(), "no instant within") {
			t.Skipf("no common boundary: %v", err)
		}
		t.Fatalf("SwitchInstant(%v → %v, %v): %v", c.old, c.next, c.floor, err)
	}
	q := &Policy{Window: c.next, WindowHistory: []PastShape{c.old.PastShape(c.t)}}
	if ps := q.historyProblems(); len(ps) > 0 {
		t.Fatalf("the recorded history is invalid: %v", ps)
	}
	if c.x, err = NewEpochAssigner(q); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEpochAssignerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawEpochCase(t)
		tu := c.t.UnixMicro()
		if c.t.Before(c.floor) || c.t.Sub(c.floor) > 1000*72*time.Hour {
			t.Fatalf("T %v is before the floor %v or far past it", c.t, c.floor)
		}
		oldA, err := NewWindowAssigner(c.old)
		if err != nil {
			t.Fatal(err)
		}
		newA, err := NewWindowAssigner(c.next)
		if err != nil {
			t.Fatal(err)
		}
		// Windows on both sides meet at T: an old window ends there, a new one starts there.
		if !slices.ContainsFunc(oldA.AssignAll(c.t.Add(-time.Microsecond), nil), func(w Window) bool { return w.End.Equal(c.t) }) {
			t.Fatalf("no old window ends at T %v", c.t)
		}
		if !slices.ContainsFunc(newA.AssignAll(c.t, nil), func(w Window) bool { return w.Start.Equal(c.t) }) {
			t.Fatalf("no new window starts at T %v", c.t)
		}
		micros := make([]WindowMicros, 0, c.x.WindowsPerEvent())
		if c.x.WindowsPerEvent() != max(oldA.WindowsPerEvent(), newA.WindowsPerEvent()) {
			t.Fatalf("WindowsPerEvent %d", c.x.WindowsPerEvent())
		}
		span := 10 * 24 * time.Hour.Microseconds()
		for i := range 20 {
			us := rapid.Int64Range(tu-span, tu+span).Draw(t, "event")
			if i%5 == 0 { // near T too
				us = tu + rapid.Int64Range(-3*time.Hour.Microseconds(), 3*time.Hour.Microseconds()).Draw(t, "near")
			}
			tm := time.UnixMicro(us)
			got := c.x.AssignAll(tm, nil)
			micros = c.x.AssignAllMicros(us, micros[:0])
			if !slices.Equal(microsOf(got), micros) {
				t.Fatalf("AssignAllMicros(%v) = %v, AssignAll %v", tm.UTC(), micros, got)
			}
			if len(got) == 0 {
				t.Fatalf("event %v is in no window", tm.UTC())
			}
			shape, a := c.next, newA
			if us < tu {
				shape, a = c.old, oldA
			}
			var want []Window
			for _, w := range a.AssignAll(tm, nil) {
				if us < tu && !w.End.After(c.t) || us >= tu && !w.Start.Before(c.t) {
					want = append(want, w)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("event %v (T %v): windows %v, want those of %v that stay on its side of T: %v", tm.UTC(), c.t, got, shape, want)
			}
			for _, w := range got {
				if w.Start.Before(c.t) && w.End.After(c.t) {
					t.Fatalf("window %v crosses T %v", w, c.t)
				}
			}
			if shape.Kind == Tumbling && len(got) != 1 {
				t.Fatalf("tumbling: event %v in %d windows", tm.UTC(), len(got))
			}
		}
	})
}

// TestEpochAssignerTilesAcrossT walks tumbling windows across T: each starts
// where the one before ended, the old size before T, the new one from T.
func TestEpochAssignerTilesAcrossT(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		zone := rapid.SampledFrom(propertyZones[:4]).Draw(t, "zone")
		old := tumblingSpec(rapid.SampledFrom(epochSizes).Draw(t, "old size"), zone)
		next := tumblingSpec(rapid.SampledFrom(epochSizes).Draw(t, "next size"), zone)
		floor := time.UnixMicro(rapid.Int64Range(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()).Draw(t, "floor"))
		tt, err := (&Policy{Window: old}).SwitchInstant(next, floor)
		if err != nil {
			t.Fatal(err)
		}
		x, err := NewEpochAssigner(&Policy{Window: next, WindowHistory: []PastShape{old.PastShape(tt)}})
		if err != nil {
			t.Fatal(err)
		}
		oldA, newA := mustAssigner(t, old.Size.D(), zone), mustAssigner(t, next.Size.D(), zone)
		w := x.AssignAll(tt.Add(-old.Size.D()*4), nil)[0]
		for range 10 {
			want := oldA.Assign(w.Start)
			if !w.Start.Before(tt) {
				want = newA.Assign(w.Start)
			}
			if w != want {
				t.Fatalf("window %v, want %v (T %v)", w, want, tt)
			}
			nw := x.AssignAll(w.End, nil)[0]
			if !nw.Start.Equal(w.End) {
				t.Fatalf("window %v follows %v: a gap or an overlap", nw, w)
			}
			w = nw
		}
		if !w.Start.After(tt) {
			t.Fatalf("the walk did not pass T %v", tt)
		}
	})
}

// TestEpochAssignerDST switches hourly New York windows to daily ones on the
// day the clocks fall back (25h) and daily ones to hourly ones on the day they
// spring forward (23h): T is New York midnight, and each side keeps its own
// DST rules.
func TestEpochAssignerDST(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	hourly, daily := tumblingSpec(time.Hour, "America/New_York"), tumblingSpec(24*time.Hour, "America/New_York")

	// Fall back: 2026-11-01 is 25h long in New York.
	tt, err := (&Policy{Window: hourly}).SwitchInstant(daily, time.Date(2026, 11, 1, 0, 30, 0, 0, ny))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 2, 0, 0, 0, 0, ny); !tt.Equal(want) {
		t.Fatalf("T = %v, want New York midnight %v", tt, want)
	}
	x, err := NewEpochAssigner(&Policy{Window: daily, WindowHistory: []PastShape{hourly.PastShape(tt)}})
	if err != nil {
		t.Fatal(err)
	}
	// Hourly before T: the last window of the 25h day lasts 2h and ends at T.
	last := x.AssignAll(tt.Add(-time.Microsecond), nil)
	if len(last) != 1 || !last[0].End.Equal(tt) || last[0].End.Sub(last[0].Start) != 2*time.Hour {
		t.Fatalf("last window before T: %v, want 2h ending at %v", last, tt)
	}
	hours := 0
	for at := time.Date(2026, 11, 1, 0, 0, 0, 0, ny); at.Before(tt); hours++ {
		at = x.AssignAll(at, nil)[0].End
	}
	if hours != 24 {
		t.Fatalf("%d hourly windows on 2026-11-01, want 24", hours)
	}
	// Daily from T.
	if w := x.AssignAll(tt, nil); len(w) != 1 || !w[0].Start.Equal(tt) || !w[0].End.Equal(time.Date(2026, 11, 3, 0, 0, 0, 0, ny)) {
		t.Fatalf("first window from T: %v", w)
	}

	// Spring forward: 2027-03-14 is 23h long in New York.
	tt, err = (&Policy{Window: daily}).SwitchInstant(hourly, time.Date(2027, 3, 13, 12, 0, 0, 0, ny))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2027, 3, 14, 0, 0, 0, 0, ny); !tt.Equal(want) {
		t.Fatalf("T = %v, want %v", tt, want)
	}
	x, err = NewEpochAssigner(&Policy{Window: hourly, WindowHistory: []PastShape{daily.PastShape(tt)}})
	if err != nil {
		t.Fatal(err)
	}
	if w := x.AssignAll(tt.Add(-time.Microsecond), nil); len(w) != 1 || !w[0].Start.Equal(time.Date(2027, 3, 13, 0, 0, 0, 0, ny)) || !w[0].End.Equal(tt) {
		t.Fatalf("last window before T: %v, want the day 2027-03-13", w)
	}
	hours = 0
	next := time.Date(2027, 3, 15, 0, 0, 0, 0, ny)
	for at := tt; at.Before(next); hours++ {
		at = x.AssignAll(at, nil)[0].End
	}
	if hours != 23 {
		t.Fatalf("%d hourly windows on the 23h day 2027-03-14, want 23", hours)
	}
}

func TestEpochAssignerAllocs(t *testing.T) {
	t1 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for _, zone := range []string{"UTC", "America/New_York"} {
		p := &Policy{Window: hoppingSpec(2*time.Hour, 30*time.Minute, zone), WindowHistory: []PastShape{tumblingSpec(time.Hour, zone).PastShape(t1)}}
		if zone != "UTC" {
			p.WindowHistory[0].Until = time.Date(2026, 11, 27, 0, 0, 0, 0, mustZone(t, zone))
		}
		x, err := NewEpochAssigner(p)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]WindowMicros, 0, x.WindowsPerEvent())
		us := t1.Add(-3 * time.Hour).UnixMicro()
		step := time.Minute.Microseconds()
		x.AssignAllMicros(us, dst) // warm the caches
		if n := testing.AllocsPerRun(1000, func() {
			dst = x.AssignAllMicros(us, dst[:0])
			us += step
		}); n != 0 {
			t.Errorf("%s: AssignAllMicros allocates %.1f times per event", zone, n)
		}
	}
}

func TestWindowHistoryValidation(t *testing.T) {
	t1 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	base := func(h ...PastShape) *Policy {
		p := &Policy{Window: tumblingSpec(24*time.Hour, "UTC"), WindowHistory: h}
		return p
	}
	tests := []struct {
		name    string
		p       *Policy
		wantMsg string // "" is valid
	}{
		{"one entry at a common boundary", base(tumblingSpec(time.Hour, "UTC").PastShape(t1)), ""},
		{"two entries in order", base(tumblingSpec(time.Hour, "UTC").PastShape(t1), tumblingSpec(2*time.Hour, "UTC").PastShape(t1.AddDate(0, 0, 1))), ""},
		{"until not a boundary of the next shape", base(tumblingSpec(time.Hour, "UTC").PastShape(t1.Add(time.Hour))),
			"window_history[0].until: 2026-11-27T01:00:00Z is not a boundary of both 1h0m0s tumbling windows in UTC and the next 24h0m0s tumbling windows in UTC"},
		{"until not a boundary of its own shape", base(tumblingSpec(48*time.Hour, "UTC").PastShape(t1.AddDate(0, 0, 1))), "is not a boundary of both"},
		{"out of order", base(tumblingSpec(time.Hour, "UTC").PastShape(t1), tumblingSpec(2*time.Hour, "UTC").PastShape(t1)),
			"window_history[1].until: 2026-11-27T00:00:00Z is not after the previous entry's 2026-11-27T00:00:00Z"},
		{"a hopping epoch shorter than its window", base(tumblingSpec(time.Hour, "UTC").PastShape(t1), hoppingSpec(48*time.Hour, 24*time.Hour, "UTC").PastShape(t1.AddDate(0, 0, 1))),
			"window_history[1].until: 2026-11-28T00:00:00Z leaves 48h0m0s hopping windows sliding by 24h0m0s in UTC no whole window after they began at 2026-11-27T00:00:00Z (valid: at or after 2026-11-29T00:00:00Z)"},
		{"a bad size", base(PastShape{Until: t1, Kind: Tumbling, Size: Duration(7 * time.Minute), Timezone: "UTC"}), "window_history[0].size: 7m0s neither divides 24h"},
		{"a session shape", base(PastShape{Until: t1, Kind: SessionWindows, Timezone: "UTC"}), "window_history[0].kind"},
		{"no until", base(PastShape{Kind: Tumbling, Size: Duration(time.Hour), Timezone: "UTC"}), "window_history[0].until: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := tt.p.historyProblems()
			if tt.wantMsg == "" {
				if len(ps) > 0 {
					t.Fatalf("problems: %v", ps)
				}
				return
			}
			var msgs []string
			for _, p := range ps {
				msgs = append(msgs, p.Error())
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tt.wantMsg) {
				t.Fatalf("problems %q, want one containing %q", msgs, tt.wantMsg)
			}
		})
	}
}

func TestParseWindowHistory(t *testing.T) {
	src := `name: orders
source: {subjects: [events.orders.*]}
schema: {fields: [{name: created_at, type: timestamp, required: true}]}
time: {field: created_at}
window: {size: 2h}
load: {table: orders}
window_history:
  - {until: 2026-11-27T00:00:00Z, kind: tumbling, size: 1h, timezone: UTC}
`
	p, err := ParsePolicy("orders.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []PastShape{{Until: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), Kind: Tumbling, Size: Duration(time.Hour), Timezone: "UTC"}}
	if !slices.Equal(p.WindowHistory, want) {
		t.Fatalf("WindowHistory = %+v, want %+v", p.WindowHistory, want)
	}
	bad := strings.Replace(src, "2026-11-27T00:00:00Z", "2026-11-27T01:00:00Z", 1)
	if _, err := ParsePolicy("orders.yaml", []byte(bad)); !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "orders.yaml:8: window_history[0].until: 2026-11-27T01:00:00Z is not a boundary of both") {
		t.Fatalf("a history entry off the 2h grid: %v", err)
	}
	notTime := strings.Replace(src, "2026-11-27T00:00:00Z", "tomorrow", 1)
	if _, err := ParsePolicy("orders.yaml", []byte(notTime)); !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), `orders.yaml:8: window_history[0].until: "tomorrow" is not an RFC 3339 time`) {
		t.Fatalf("an until that is not a time: %v", err)
	}
}

func TestShapeFloor(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 4, h, m, 0, 0, time.UTC) }
	p := &Policy{Window: tumblingSpec(time.Hour, "UTC")}
	p.Window.MaxOutOfOrder = Duration(5 * time.Minute)
	tests := []struct {
		name      string
		now, wm   time.Time
		stored    []time.Time
		want      time.Time
		wantError bool
	}{
		{name: "now's window ends it", now: at(10, 30), want: at(11, 0)},
		{name: "a boundary now is its window's end", now: at(10, 0), want: at(11, 0)},
		{name: "the watermark's newest event time leads", now: at(10, 30), wm: at(12, 10), want: at(13, 0)},
		{name: "max_out_of_order counts: a watermark 5m before a boundary", now: at(10, 30), wm: at(11, 55), want: at(13, 0)},
		{name: "a watermark behind now does not lower it", now: at(10, 30), wm: at(8, 0), want: at(11, 0)},
		{name: "a stored window further out leads", now: at(10, 30), wm: at(12, 10), stored: []time.Time{at(9, 0), at(15, 0)}, want: at(15, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.ShapeFloor(tt.now, tt.wm, tt.stored)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("ShapeFloor = %s, want %s", got, tt.want)
			}
		})
	}
}
