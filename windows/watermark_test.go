package windows

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

func testSpec() WindowSpec {
	return WindowSpec{
		Size:            Duration(time.Hour),
		MaxOutOfOrder:   Duration(10 * time.Minute),
		AllowedLateness: Duration(30 * time.Minute),
		IdleTimeout:     Duration(10 * time.Second),
	}
}

func TestWatermark(t *testing.T) {
	base := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	win := Window{Start: base.Add(-time.Hour), End: base}
	w := NewWatermark(testSpec())
	if _, ok := w.Value(); ok || w.Closed(win) {
		t.Fatal("a new watermark is set or closes windows")
	}

	w.Staged(base.Add(10 * time.Minute))
	if v, ok := w.Value(); !ok || !v.Equal(base) {
		t.Fatalf("after Staged(base+10m): Value = %v, %v; want base", v, ok)
	}
	if w.Closed(win) {
		t.Fatal("window closed before End + AllowedLateness")
	}

	w.Staged(base) // older: ignored
	if v, _ := w.Value(); !v.Equal(base) {
		t.Fatalf("watermark went back to %v", v)
	}

	w.Idle(base.Add(time.Hour), 9*time.Second) // not idle long enough
	if v, _ := w.Value(); !v.Equal(base) {
		t.Fatalf("short idle moved the watermark to %v", v)
	}

	w.Idle(base.Add(40*time.Minute), 10*time.Second) // candidate base+30m: exactly End + AllowedLateness
	if v, _ := w.Value(); !v.Equal(base.Add(30 * time.Minute)) {
		t.Fatalf("after idle: Value = %v, want base+30m", v)
	}
	if !w.Closed(win) {
		t.Fatal("window not closed at End + AllowedLateness")
	}
}

func TestWatermarkIgnoresMonotonicClock(t *testing.T) {
	w := NewWatermark(testSpec())
	now := time.Now() // carries a monotonic reading, as a caller's wall clock would
	w.Idle(now, time.Minute)
	v, _ := w.Value()
	if v != v.Round(0) || v.Location() != time.UTC {
		t.Errorf("watermark %v keeps a monotonic reading or a non-UTC location", v)
	}
}

func TestWatermarkNeverGoesBack(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec := WindowSpec{
			MaxOutOfOrder: Duration(rapid.Int64Range(0, int64(time.Hour)).Draw(t, "max_out_of_order")),
			IdleTimeout:   Duration(rapid.Int64Range(int64(time.Second), int64(time.Minute)).Draw(t, "idle_timeout")),
		}
		w := NewWatermark(spec)
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var prev time.Time
		var wasSet bool
		steps := rapid.IntRange(1, 50).Draw(t, "steps")
		for i := range steps {
			at := base.Add(time.Duration(rapid.Int64Range(-int64(48*time.Hour), int64(48*time.Hour)).Draw(t, "at")))
			if rapid.Bool().Draw(t, "idle") {
				w.Idle(at, time.Duration(rapid.Int64Range(0, int64(2*time.Minute)).Draw(t, "idle_for")))
			} else {
				w.Staged(at)
			}
			v, ok := w.Value()
			if wasSet && (!ok || v.Before(prev)) {
				t.Fatalf("step %d: watermark went from %v to %v (set %v)", i, prev, v, ok)
			}
			prev, wasSet = v, ok
		}
	})
}

func TestSegmentDue(t *testing.T) {
	s := Segment{MaxRows: 100, MaxBytes: 64 * KiB, MaxAge: Duration(5 * time.Second)}
	tests := []struct {
		name  string
		rows  int
		bytes int64
		age   time.Duration
		want  bool
	}{
		{"nothing reached", 99, 64*1024 - 1, 4 * time.Second, false},
		{"rows", 100, 0, 0, true},
		{"bytes", 1, 64 * 1024, 0, true},
		{"age", 1, 1, 5 * time.Second, true},
	}
	for _, tt := range tests {
		if got := s.Due(tt.rows, tt.bytes, tt.age); got != tt.want {
			t.Errorf("%s: Due(%d, %d, %v) = %v, want %v", tt.name, tt.rows, tt.bytes, tt.age, got, tt.want)
		}
	}
	if (Segment{}).Due(1000, 1<<30, time.Hour) {
		t.Error("a zero Segment has triggers")
	}
}

func TestWatermarkRestore(t *testing.T) {
	w := NewWatermark(WindowSpec{MaxOutOfOrder: Duration(time.Minute)})
	recorded := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	w.Restore(recorded)
	w.Staged(recorded.Add(-time.Hour)) // an older staged event: no step back
	if got, ok := w.Value(); !ok || !got.Equal(recorded) {
		t.Fatalf("Value = %v %v, want the restored %v", got, ok, recorded)
	}
	w.Staged(recorded.Add(time.Hour))
	if got, _ := w.Value(); !got.Equal(recorded.Add(59 * time.Minute)) {
		t.Fatalf("Value = %v, want %v", got, recorded.Add(59*time.Minute))
	}
}
