package windows

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// propertySlides are slides that align (divide 24h or are whole days).
var propertySlides = []time.Duration{
	time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
	2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour,
}

func mustHopping(t fataler, size, slide time.Duration, zone string) *HoppingAssigner {
	t.Helper()
	h, err := NewHoppingAssigner(WindowSpec{Kind: Hopping, Size: Duration(size), Slide: Duration(slide), Timezone: zone})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// referenceHopping computes the hopping windows of t from the tumbling
// Assigner of size slide, pane by pane: the n windows that start at t's pane
// and the n-1 panes before it, each n panes long.
func referenceHopping(panes *Assigner, n int, t time.Time) []Window {
	starts := []Window{panes.Assign(t)}
	for len(starts) < n {
		starts = append(starts, panes.Assign(starts[len(starts)-1].Start.Add(-time.Microsecond)))
	}
	slices.Reverse(starts)
	out := make([]Window, 0, n)
	for _, first := range starts {
		last := first
		for range n - 1 {
			last = panes.Assign(last.End)
		}
		out = append(out, Window{Start: first.Start, End: last.End})
	}
	return out
}

func microsOf(ws []Window) []WindowMicros {
	out := make([]WindowMicros, len(ws))
	for i, w := range ws {
		out[i] = WindowMicros{w.Start.UnixMicro(), w.End.UnixMicro()}
	}
	return out
}

func TestHoppingAssignerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		slide := rapid.SampledFrom(propertySlides).Draw(t, "slide")
		maxN := 48
		if slide >= 24*time.Hour {
			maxN = 8
		}
		n := rapid.IntRange(1, maxN).Draw(t, "n")
		size := time.Duration(n) * slide
		zone := rapid.SampledFrom(propertyZones).Draw(t, "zone")
		us := rapid.Int64Range(minPropertyTime, maxPropertyTime).Draw(t, "us")
		tm := time.UnixMicro(us)
		h := mustHopping(t, size, slide, zone)
		panes := mustAssigner(t, slide, zone)

		ws := h.AssignAll(tm, nil)
		if len(ws) != n || h.WindowsPerEvent() != n {
			t.Fatalf("%d windows (WindowsPerEvent %d), want size/slide = %d", len(ws), h.WindowsPerEvent(), n)
		}
		if want := referenceHopping(panes, n, tm); !slices.Equal(ws, want) {
			t.Fatalf("AssignAll(%v) = %v, want %v", tm.UTC(), ws, want)
		}
		ids := map[string]bool{}
		for i, w := range ws {
			// Every window covers the event, is in UTC, starts on a pane and is n panes long.
			if !w.Contains(tm) {
				t.Fatalf("window %v does not contain %v", w, tm.UTC())
			}
			if w.Start.Location() != time.UTC || w.End.Location() != time.UTC {
				t.Fatalf("window %v is not in UTC", w)
			}
			if p := panes.Assign(w.Start); !p.Start.Equal(w.Start) {
				t.Fatalf("window %v does not start on a pane (pane %v)", w, p)
			}
			if p := panes.Assign(w.End); !p.Start.Equal(w.End) {
				t.Fatalf("window %v does not end on a pane boundary (pane %v)", w, p)
			}
			if got, ok := h.WindowAt(w.Start); !ok || got != w {
				t.Fatalf("WindowAt(%v) = %v, %v; want %v", w.Start, got, ok, w)
			}
			if d := w.End.Sub(w.Start); d < size-2*time.Hour*time.Duration(min(n, 2)) || d > size+2*time.Hour*time.Duration(min(n, 2)) {
				t.Fatalf("window %v lasts %v, far from size %v", w, d, size)
			}
			if ids[w.ID()] {
				t.Fatalf("ID %s twice in %v", w.ID(), ws)
			}
			ids[w.ID()] = true
			// Consecutive: the next window starts one pane later.
			if i > 0 {
				if prev := ws[i-1]; !panes.Assign(prev.Start).End.Equal(w.Start) {
					t.Fatalf("windows %v and %v do not start on consecutive panes", prev, w)
				}
			}
		}
		// Exactly n: the windows starting one pane before the first and one pane
		// after the event's pane do not contain it.
		if before, ok := h.WindowAt(panes.Assign(ws[0].Start.Add(-time.Microsecond)).Start); !ok || before.Contains(tm) {
			t.Fatalf("window %v (ok %v) before the first also contains %v", before, ok, tm.UTC())
		}
		if after, ok := h.WindowAt(panes.Assign(tm).End); !ok || after.Contains(tm) {
			t.Fatalf("window %v (ok %v) after the last also contains %v", after, ok, tm.UTC())
		}
		// The micros form agrees: fresh, then warm, then with a reused buffer.
		want := microsOf(ws)
		buf := make([]WindowMicros, 0, n)
		for _, a := range []*HoppingAssigner{mustHopping(t, size, slide, zone), h, h} {
			if got := a.AssignAllMicros(us, buf[:0]); !slices.Equal(got, want) {
				t.Fatalf("AssignAllMicros(%d) = %v, want %v", us, got, want)
			}
		}
		// The pane is the last window's first pane.
		if p := h.Pane(tm); !p.Start.Equal(ws[n-1].Start) || !p.Contains(tm) {
			t.Fatalf("Pane(%v) = %v, want the pane starting at %v", tm.UTC(), p, ws[n-1].Start)
		}
		if s, e := h.PaneMicros(us); s != ws[n-1].Start.UnixMicro() || e != panes.Assign(tm).End.UnixMicro() {
			t.Fatalf("PaneMicros(%d) = [%d, %d)", us, s, e)
		}
		if _, ok := h.WindowAt(ws[0].Start.Add(time.Microsecond)); ok && slide > time.Microsecond {
			t.Fatalf("WindowAt accepts %v, which is not a pane start", ws[0].Start.Add(time.Microsecond))
		}
	})
}

// TestHoppingAssignerMicrosStreams checks the cached AssignAllMicros against
// the reference AssignAll along in-order and random streams (the cache's
// same-pane, next-pane and jump paths).
func TestHoppingAssignerMicrosStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	specs := []struct{ size, slide time.Duration }{
		{time.Hour, 15 * time.Minute}, {24 * time.Hour, time.Hour}, {24 * time.Hour, 6 * time.Hour},
		{2 * time.Hour, 2 * time.Hour}, {48 * time.Hour, 24 * time.Hour}, {7 * 24 * time.Hour, 24 * time.Hour},
		{36 * time.Hour, 12 * time.Hour},
	}
	for _, zone := range propertyZones {
		for _, sp := range specs {
			h := mustHopping(t, sp.size, sp.slide, zone)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
			us := start
			var buf []WindowMicros
			for i := range 1500 {
				if i%3 == 0 {
					us = start + rng.Int64N(int64(366*24*time.Hour/time.Microsecond))
				} else {
					us += rng.Int64N(int64(3 * time.Hour / time.Microsecond))
				}
				buf = h.AssignAllMicros(us, buf[:0])
				want := microsOf(h.AssignAll(time.UnixMicro(us), nil))
				if !slices.Equal(buf, want) {
					t.Fatalf("%s %v/%v: AssignAllMicros(%d) = %v, want %v", zone, sp.size, sp.slide, us, buf, want)
				}
			}
			// Walk pane boundaries exactly: the last instant of a pane, the
			// first of the next, and the first of the one after it.
			panes := mustAssigner(t, sp.slide, zone)
			us = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
			for range 400 {
				_, end := panes.AssignMicros(us)
				switch rng.IntN(3) {
				case 0:
					us = end - 1
				case 1:
					us = end
				default:
					_, us = panes.AssignMicros(end)
				}
				buf = h.AssignAllMicros(us, buf[:0])
				if want := microsOf(h.AssignAll(time.UnixMicro(us), nil)); !slices.Equal(buf, want) {
					t.Fatalf("%s %v/%v: AssignAllMicros(%d) on a boundary = %v, want %v", zone, sp.size, sp.slide, us, buf, want)
				}
			}
		}
	}
}

func TestHoppingAssignerUTC(t *testing.T) {
	h := mustHopping(t, time.Hour, 15*time.Minute, "UTC")
	at := func(hh, mm int) time.Time { return time.Date(2026, 3, 8, hh, mm, 0, 0, time.UTC) }
	got := h.AssignAll(at(10, 7), nil)
	want := []Window{
		{at(9, 15), at(10, 15)}, {at(9, 30), at(10, 30)}, {at(9, 45), at(10, 45)}, {at(10, 0), at(11, 0)},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("AssignAll(10:07) = %v, want %v", got, want)
	}
	var ids []string
	for _, w := range got {
		ids = append(ids, w.ID())
	}
	if want := []string{"20260308T091500Z", "20260308T093000Z", "20260308T094500Z", "20260308T100000Z"}; !slices.Equal(ids, want) {
		t.Errorf("IDs = %v, want %v", ids, want)
	}
	// On a boundary the event is in the windows starting there and before, not in the one ending there.
	got = h.AssignAll(at(10, 0), nil)
	if got[0].Start != at(9, 15) || got[3].Start != at(10, 0) {
		t.Errorf("AssignAll(10:00) = %v", got)
	}
	// Negative times.
	if got := h.AssignAllMicros(-1, nil); got[3] != (WindowMicros{-15 * 60 * usPerSecond, 45 * 60 * usPerSecond}) {
		t.Errorf("AssignAllMicros(-1) = %v", got)
	}
}

func TestHoppingAssignerDailyPanesOnDSTDays(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	day := func(s string) time.Time {
		d, err := time.ParseInLocation("2006-01-02", s, ny)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Slide of a day: panes are local days, 23h and 25h on DST days, and a
	// 2-day window spans two local days.
	h := mustHopping(t, 48*time.Hour, 24*time.Hour, "America/New_York")
	for _, tt := range []struct {
		day  string
		pane time.Duration
	}{
		{"2026-03-07", 24 * time.Hour}, {"2026-03-08", 23 * time.Hour}, {"2026-03-09", 24 * time.Hour},
		{"2026-10-31", 24 * time.Hour}, {"2026-11-01", 25 * time.Hour}, {"2026-11-02", 24 * time.Hour},
	} {
		t.Run("48h/24h "+tt.day, func(t *testing.T) {
			d := day(tt.day)
			noon := d.Add(12 * time.Hour)
			p := h.Pane(noon)
			if !p.Start.Equal(d) || p.End.Sub(p.Start) != tt.pane {
				t.Errorf("pane %v, want %v lasting %v", p, d, tt.pane)
			}
			ws := h.AssignAll(noon, nil)
			prev := d.AddDate(0, 0, -1)
			want := []Window{{prev, d.AddDate(0, 0, 1)}, {d, d.AddDate(0, 0, 2)}}
			for i := range want {
				want[i].Start, want[i].End = want[i].Start.UTC(), want[i].End.UTC()
			}
			if !slices.Equal(ws, want) {
				t.Errorf("AssignAll(%v) = %v, want %v", noon, ws, want)
			}
		})
	}
	// Size a day, slide 6h or 12h: the window starting at local midnight is exactly the local day.
	for _, slide := range []time.Duration{2 * time.Hour, 6 * time.Hour, 12 * time.Hour} {
		h := mustHopping(t, 24*time.Hour, slide, "America/New_York")
		for _, tt := range []struct {
			day  string
			want time.Duration
		}{{"2026-03-08", 23 * time.Hour}, {"2026-11-01", 25 * time.Hour}, {"2026-07-01", 24 * time.Hour}} {
			d := day(tt.day)
			w, ok := h.WindowAt(d)
			if !ok || !w.End.Equal(d.AddDate(0, 0, 1)) || w.End.Sub(w.Start) != tt.want {
				t.Errorf("24h/%v: window at %s midnight = %v (ok %v), want the local day (%v)", slide, tt.day, w, ok, tt.want)
			}
		}
	}
	// Size a day, slide 1h: the 25h day keeps 24 panes, so its midnight window is the
	// day (25h); the 23h day has 23 panes, so its 24-pane midnight window runs to 01:00.
	h = mustHopping(t, 24*time.Hour, time.Hour, "America/New_York")
	if w, _ := h.WindowAt(day("2026-11-01")); !w.End.Equal(day("2026-11-02")) || w.End.Sub(w.Start) != 25*time.Hour {
		t.Errorf("24h/1h window at 2026-11-01 midnight = %v, want the 25h local day", w)
	}
	if w, _ := h.WindowAt(day("2026-03-08")); !w.End.Equal(day("2026-03-09").Add(time.Hour)) || w.End.Sub(w.Start) != 24*time.Hour {
		t.Errorf("24h/1h window at 2026-03-08 midnight = %v, want 24 panes to 2026-03-09 01:00", w)
	}
	// Every instant of the DST days is still in exactly 24 windows.
	for _, s := range []string{"2026-03-08", "2026-11-01"} {
		for tm := day(s); tm.Before(day(s).AddDate(0, 0, 1)); tm = tm.Add(20 * time.Minute) {
			ws := h.AssignAll(tm, nil)
			for _, w := range ws {
				if !w.Contains(tm) {
					t.Fatalf("%v not in %v", tm, w)
				}
			}
			if len(ws) != 24 {
				t.Fatalf("%v is in %d windows", tm, len(ws))
			}
		}
	}
}

// TestHoppingAssignerMaxWindows runs the largest allowed fan-out, 24h/1m,
// across a DST change.
func TestHoppingAssignerMaxWindows(t *testing.T) {
	h := mustHopping(t, 24*time.Hour, time.Minute, "America/New_York")
	panes := mustAssigner(t, time.Minute, "America/New_York")
	var buf []WindowMicros
	for _, tm := range []time.Time{
		time.Date(2026, 3, 8, 6, 59, 30, 0, time.UTC), time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), time.Date(2026, 11, 1, 6, 0, 1, 0, time.UTC),
	} {
		want := referenceHopping(panes, MaxHoppingWindowsPerEvent, tm)
		if got := h.AssignAll(tm, nil); !slices.Equal(got, want) {
			t.Fatalf("AssignAll(%v): %d windows, differ from the reference", tm, len(got))
		}
		if buf = h.AssignAllMicros(tm.UnixMicro(), buf[:0]); !slices.Equal(buf, microsOf(want)) {
			t.Fatalf("AssignAllMicros(%v) differs from the reference", tm)
		}
	}
}

func TestNewHoppingAssignerRejectsBadSpec(t *testing.T) {
	h := func(size, slide time.Duration) WindowSpec {
		return WindowSpec{Kind: Hopping, Size: Duration(size), Slide: Duration(slide)}
	}
	tests := []struct {
		name string
		spec WindowSpec
		want string
	}{
		{"no slide", h(time.Hour, 0), "window.slide: is required"},
		{"no size", h(0, time.Minute), "window.size: is required"},
		{"slide longer than size", h(time.Hour, 2*time.Hour), "is longer than size"},
		{"size not a multiple", h(time.Hour, 25*time.Minute), "neither divides 24h"},
		{"size not a multiple of an aligned slide", h(50*time.Minute, 20*time.Minute), "does not divide size"},
		{"fractional slide", h(time.Hour, 1500*time.Millisecond), "not whole seconds"},
		{"negative slide", h(time.Hour, -time.Minute), "must be positive"},
		{"too many windows", h(48*time.Hour, time.Minute), "2880 windows"},
		{"bad zone", WindowSpec{Kind: Hopping, Size: Duration(time.Hour), Slide: Duration(time.Minute), Timezone: "Nowhere/Town"}, "window.timezone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHoppingAssigner(tt.spec)
			if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewHoppingAssigner(%+v) error = %v, want ErrInvalidPolicy containing %q", tt.spec, err, tt.want)
			}
		})
	}
}

func TestNewWindowAssigner(t *testing.T) {
	for _, tt := range []struct {
		spec WindowSpec
		want string // the type, or "" for an error
		n    int
	}{
		{WindowSpec{Size: Duration(time.Hour)}, "*windows.Assigner", 1},
		{WindowSpec{Kind: Tumbling, Size: Duration(time.Hour)}, "*windows.Assigner", 1},
		{WindowSpec{Kind: Hopping, Size: Duration(time.Hour), Slide: Duration(10 * time.Minute)}, "*windows.HoppingAssigner", 6},
		{WindowSpec{Kind: SessionWindows, Gap: Duration(time.Minute)}, "", 0},
		{WindowSpec{Kind: "sliding", Size: Duration(time.Hour)}, "", 0},
		{WindowSpec{Kind: Hopping, Size: Duration(time.Hour)}, "", 0},
	} {
		a, err := NewWindowAssigner(tt.spec)
		if tt.want == "" {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("NewWindowAssigner(%+v) = %v, %v; want ErrInvalidPolicy", tt.spec, a, err)
			}
			continue
		}
		if err != nil || fmt.Sprintf("%T", a) != tt.want || a.WindowsPerEvent() != tt.n {
			t.Errorf("NewWindowAssigner(%+v) = %T, %v; want %s with %d windows per event", tt.spec, a, err, tt.want, tt.n)
		}
	}
	// Tumbling through the interface: one window, the same as Assign.
	a := mustAssigner(t, time.Hour, "Europe/Berlin")
	tm := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	if got := a.AssignAll(tm, nil); len(got) != 1 || got[0] != a.Assign(tm) {
		t.Errorf("AssignAll = %v, want [%v]", got, a.Assign(tm))
	}
	if got := a.AssignAllMicros(tm.UnixMicro(), nil); len(got) != 1 || got[0].Window() != a.Assign(tm) || got[0].ID() != a.Assign(tm).ID() {
		t.Errorf("AssignAllMicros = %v, want [%v]", got, a.Assign(tm))
	}
}

func TestAssignAllMicrosDoesNotAllocate(t *testing.T) {
	for _, zone := range []string{"UTC", "America/New_York"} {
		h := mustHopping(t, 24*time.Hour, time.Hour, zone)
		buf := make([]WindowMicros, 0, h.WindowsPerEvent())
		us := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC).UnixMicro()
		allocs := testing.AllocsPerRun(1000, func() {
			us += 7 * 60 * usPerSecond
			buf = h.AssignAllMicros(us, buf[:0])
		})
		if allocs != 0 {
			t.Errorf("%s: AssignAllMicros allocates %.1f times per call", zone, allocs)
		}
	}
}

func BenchmarkAssignAllHopping(b *testing.B) {
	const n = 1 << 16
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	rng := rand.New(rand.NewPCG(3, 4))
	inOrder := make([]int64, n)
	random := make([]int64, n)
	for i := range n {
		inOrder[i] = base + int64(i)*10_000 // 100 events a second
		random[i] = base + rng.Int64N(int64(60*24*time.Hour/time.Microsecond))
	}
	for _, sp := range []struct {
		name        string
		size, slide time.Duration
	}{{"1h-15m", time.Hour, 15 * time.Minute}, {"24h-1h", 24 * time.Hour, time.Hour}} {
		for _, zone := range []string{"UTC", "America/New_York"} {
			for _, c := range []struct {
				name  string
				times []int64
			}{{"in-order", inOrder}, {"random", random}} {
				b.Run(sp.name+"/"+zone+"/"+c.name, func(b *testing.B) {
					h := mustHopping(b, sp.size, sp.slide, zone)
					dst := make([]WindowMicros, 0, h.WindowsPerEvent())
					var sink int64
					i := 0
					b.ReportAllocs()
					for b.Loop() {
						dst = h.AssignAllMicros(c.times[i&(n-1)], dst[:0])
						sink += dst[0].StartUs
						i++
					}
					_ = sink
				})
			}
		}
	}
}
