package windows

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var (
	propertySizes = []time.Duration{
		time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 2 * time.Hour,
		3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour,
	}
	// The first five are the brief's; the rest skip or repeat local midnight
	// (Havana, Santiago, Cairo) or skipped a whole day (Apia, 2011-12-30).
	propertyZones = []string{
		"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe",
		"America/Havana", "America/Santiago", "Africa/Cairo", "Pacific/Apia",
	}
	minPropertyTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxPropertyTime = time.Date(2100, 12, 31, 23, 59, 59, 0, time.UTC).UnixMicro()
)

// fataler is what testing.TB and *rapid.T have in common.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

func mustAssigner(t fataler, size time.Duration, zone string) *Assigner {
	t.Helper()
	a, err := NewAssigner(WindowSpec{Size: Duration(size), Timezone: zone})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAssignerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.SampledFrom(propertySizes).Draw(t, "size")
		zone := rapid.SampledFrom(propertyZones).Draw(t, "zone")
		us := rapid.Int64Range(minPropertyTime, maxPropertyTime).Draw(t, "us")
		a := mustAssigner(t, size, zone)
		tm := time.UnixMicro(us)

		w := a.Assign(tm)
		if !w.Contains(tm) {
			t.Fatalf("window %v does not contain %v", w, tm.UTC())
		}
		if !w.Start.Before(w.End) {
			t.Fatalf("window %v is empty", w)
		}
		if w.End.Sub(w.Start) > size+2*time.Hour {
			t.Fatalf("window %v is longer than %v plus a DST shift", w, size)
		}
		if w.Start.Location() != time.UTC || w.End.Location() != time.UTC {
			t.Fatalf("window %v is not in UTC", w)
		}
		// Fresh assigner (no cache), then the same assigner again (cache warm).
		for _, b := range []*Assigner{mustAssigner(t, size, zone), a, a} {
			s, e := b.AssignMicros(us)
			if s != w.Start.UnixMicro() || e != w.End.UnixMicro() {
				t.Fatalf("AssignMicros(%d) = [%d, %d), Assign = %v", us, s, e, w)
			}
		}
		// Tiling: the next window starts where this one ends, and the previous one ends where it starts.
		if next := a.Assign(w.End); !next.Start.Equal(w.End) {
			t.Fatalf("Assign(%v) = %v, want a window starting at %v", w.End, next, w.End)
		}
		if prev := a.Assign(w.Start.Add(-time.Microsecond)); !prev.End.Equal(w.Start) {
			t.Fatalf("window before %v is %v, want it to end at %v", w, prev, w.Start)
		}
		// Every instant inside maps to the same window.
		inside := rapid.Int64Range(w.Start.UnixMicro(), w.End.UnixMicro()-1).Draw(t, "inside")
		if s, e := a.AssignMicros(inside); s != w.Start.UnixMicro() || e != w.End.UnixMicro() {
			t.Fatalf("AssignMicros(%d) = [%d, %d), want %v", inside, s, e, w)
		}
		// Sub-day windows start at local midnight plus a multiple of size.
		if size <= 24*time.Hour && zone != "Pacific/Apia" {
			local := w.Start.In(a.loc)
			y, m, d := local.Date()
			midnight := time.Date(y, m, d, 0, 0, 0, 0, a.loc)
			if off := w.Start.Sub(midnight); off%size != 0 && midnight.In(a.loc).Day() == d {
				t.Fatalf("window %v starts %v after local midnight %v", w, off, midnight)
			}
		}
	})
}

func TestAssignerInOrderStreamMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, zone := range propertyZones {
		for _, size := range propertySizes {
			a := mustAssigner(t, size, zone)
			us := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
			for range 2000 {
				us += rng.Int64N(int64(2 * time.Hour / time.Microsecond))
				s, e := a.AssignMicros(us)
				w := a.Assign(time.UnixMicro(us))
				if s != w.Start.UnixMicro() || e != w.End.UnixMicro() {
					t.Fatalf("%s %v: AssignMicros(%d) = [%d, %d), Assign = %v", zone, size, us, s, e, w)
				}
			}
		}
	}
}

func TestAssignerDailyWindowsOnDSTDays(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	a := mustAssigner(t, 24*time.Hour, "America/New_York")
	tests := []struct {
		day  string
		want time.Duration
	}{
		{"2026-03-07", 24 * time.Hour},
		{"2026-03-08", 23 * time.Hour}, // spring forward
		{"2026-03-09", 24 * time.Hour},
		{"2026-10-31", 24 * time.Hour},
		{"2026-11-01", 25 * time.Hour}, // fall back
		{"2026-11-02", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.day, func(t *testing.T) {
			day, err := time.ParseInLocation("2006-01-02", tt.day, ny)
			if err != nil {
				t.Fatal(err)
			}
			noon := day.Add(12 * time.Hour)
			w := a.Assign(noon)
			if got := w.End.Sub(w.Start); got != tt.want {
				t.Errorf("window %v lasts %v, want %v", w, got, tt.want)
			}
			if !w.Start.Equal(day) {
				t.Errorf("window starts %v, want local midnight %v", w.Start, day)
			}
			s, e := a.AssignMicros(noon.UnixMicro())
			if s != w.Start.UnixMicro() || e != w.End.UnixMicro() {
				t.Errorf("AssignMicros = [%d, %d), want %v", s, e, w)
			}
		})
	}
}

func TestAssignerHourlyWindowsOnDSTDay(t *testing.T) {
	a := mustAssigner(t, time.Hour, "America/New_York")
	start := time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC) // local midnight
	n := 0
	for w := a.Assign(start); w.Start.Before(start.Add(23 * time.Hour)); w = a.Assign(w.End) {
		if w.End.Sub(w.Start) != time.Hour {
			t.Errorf("window %v is not 1h", w)
		}
		n++
	}
	if n != 23 {
		t.Errorf("got %d hourly windows on 2026-03-08 in New York, want 23", n)
	}
}

func TestAssignerHourlyWindowsOnFallBackDay(t *testing.T) {
	a := mustAssigner(t, time.Hour, "America/New_York")
	start := time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC) // local midnight (EDT)
	end := time.Date(2026, 11, 2, 5, 0, 0, 0, time.UTC)   // next local midnight (EST)
	var got []time.Duration
	for w := a.Assign(start); w.Start.Before(end); w = a.Assign(w.End) {
		got = append(got, w.End.Sub(w.Start))
	}
	if len(got) != 24 || got[23] != 2*time.Hour {
		t.Errorf("hourly windows on 2026-11-01 in New York last %v, want 23 of 1h and a last one of 2h", got)
	}
}

func TestAssignerMultiDayAlignment(t *testing.T) {
	a := mustAssigner(t, 48*time.Hour, "UTC")
	w := a.Assign(time.Date(1970, 1, 2, 12, 0, 0, 0, time.UTC))
	if want := time.Unix(0, 0).UTC(); !w.Start.Equal(want) {
		t.Errorf("48h window starts %v, want %v", w.Start, want)
	}
	berlin := mustAssigner(t, 7*24*time.Hour, "Europe/Berlin")
	w = berlin.Assign(time.Date(2026, 3, 30, 12, 0, 0, 0, time.UTC))
	// 2026-03-26 is day 20538 = 7*2934 since the epoch, and DST starts on 2026-03-29.
	wantStart := time.Date(2026, 3, 26, 0, 0, 0, 0, berlin.loc)
	if !w.Start.Equal(wantStart) || w.End.Sub(w.Start) != 7*24*time.Hour-time.Hour {
		t.Errorf("7-day Berlin window = %v, want start %v and 167h", w, wantStart)
	}
	y, m, d := w.Start.In(berlin.loc).Date()
	if dn := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400; dn%7 != 0 {
		t.Errorf("window starts on local day %d, not a multiple of 7", dn)
	}
}

func TestAssignerNegativeTimes(t *testing.T) {
	a := mustAssigner(t, time.Hour, "UTC")
	s, e := a.AssignMicros(-1)
	if s != -3600*usPerSecond || e != 0 {
		t.Errorf("AssignMicros(-1) = [%d, %d), want [-3600000000, 0)", s, e)
	}
}

func TestNewAssignerRejectsBadSpec(t *testing.T) {
	tests := []struct {
		name string
		spec WindowSpec
	}{
		{"zero size", WindowSpec{}},
		{"unaligned", WindowSpec{Size: Duration(7 * time.Minute)}},
		{"fractional", WindowSpec{Size: Duration(1500 * time.Millisecond)}},
		{"bad zone", WindowSpec{Size: Duration(time.Hour), Timezone: "Nowhere/Town"}},
		{"local zone", WindowSpec{Size: Duration(time.Hour), Timezone: "Local"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewAssigner(tt.spec); !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("NewAssigner(%+v) error = %v, want ErrInvalidPolicy", tt.spec, err)
			}
		})
	}
}

func TestWindowID(t *testing.T) {
	w := Window{Start: time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 9, 4, 0, 0, 0, time.UTC)}
	if got, want := w.ID(), "20260308T050000Z"; got != want {
		t.Errorf("ID = %s, want %s", got, want)
	}
	start, err := ParseWindowID(w.ID())
	if err != nil || !start.Equal(w.Start) || start.Location() != time.UTC {
		t.Errorf("ParseWindowID(%s) = %v, %v", w.ID(), start, err)
	}
	for _, bad := range []string{"", "2026-03-08", "20260308T050000", "20261308T050000Z"} {
		if _, err := ParseWindowID(bad); !errors.Is(err, ErrInvalidWindowID) {
			t.Errorf("ParseWindowID(%q) error = %v, want ErrInvalidWindowID", bad, err)
		}
	}
	if !w.Contains(w.Start) || w.Contains(w.End) || w.Contains(w.Start.Add(-time.Nanosecond)) {
		t.Errorf("Contains is not half-open")
	}
	spec := WindowSpec{AllowedLateness: Duration(30 * time.Minute)}
	if got := spec.ClosesAt(w); !got.Equal(w.End.Add(30 * time.Minute)) {
		t.Errorf("ClosesAt = %v", got)
	}
}

func TestWindowIDRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		us := rapid.Int64Range(minPropertyTime, maxPropertyTime).Draw(t, "us")
		w := mustAssigner(t, time.Second, "UTC").Assign(time.UnixMicro(us))
		start, err := ParseWindowID(w.ID())
		if err != nil || !start.Equal(w.Start) {
			t.Fatalf("ParseWindowID(%s) = %v, %v; want %v", w.ID(), start, err, w.Start)
		}
	})
}

func BenchmarkAssignMicros(b *testing.B) {
	const n = 1 << 16
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	rng := rand.New(rand.NewPCG(3, 4))
	inOrder := make([]int64, n)
	random := make([]int64, n)
	for i := range n {
		inOrder[i] = base + int64(i)*10_000 // 100 events a second
		random[i] = base + rng.Int64N(int64(60*24*time.Hour/time.Microsecond))
	}
	for _, zone := range []string{"UTC", "America/New_York"} {
		for _, c := range []struct {
			name  string
			times []int64
		}{{"in-order", inOrder}, {"random", random}} {
			b.Run(zone+"/"+c.name, func(b *testing.B) {
				a := mustAssigner(b, 5*time.Minute, zone)
				var sink int64
				i := 0
				for b.Loop() {
					s, _ := a.AssignMicros(c.times[i&(n-1)])
					sink += s
					i++
				}
				_ = sink
			})
		}
	}
}
