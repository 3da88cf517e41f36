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

	w.Idle(base.Add(time.Hour), 0)             // a spell starts: its base is base
	w.Idle(base.Add(time.Hour), 9*time.Second) // not idle long enough
	if v, _ := w.Value(); !v.Equal(base) {
		t.Fatalf("short idle moved the watermark to %v", v)
	}

	w.Idle(base.Add(time.Hour), 10*time.Second) // by the time elapsed, not to the wall clock
	if v, _ := w.Value(); !v.Equal(base.Add(10 * time.Second)) {
		t.Fatalf("after 10s idle: Value = %v, want base+10s", v)
	}
	if w.Closed(win) {
		t.Fatal("window closed 10s into an idle spell")
	}
	w.Idle(base.Add(time.Hour), 30*time.Minute) // base+30m: exactly End + AllowedLateness
	if v, _ := w.Value(); !v.Equal(base.Add(30 * time.Minute)) {
		t.Fatalf("after 30m idle: Value = %v, want base+30m", v)
	}
	if !w.Closed(win) {
		t.Fatal("window not closed at End + AllowedLateness")
	}
}

// A paused replay of history: the wall clock is a year ahead of the events;
// the idle spell moves the watermark by its length only.
func TestWatermarkIdlePausedReplay(t *testing.T) {
	last := time.Date(2025, 3, 8, 12, 20, 0, 0, time.UTC)
	wall := last.AddDate(1, 0, 0)
	w := NewWatermark(testSpec())
	w.Staged(last) // watermark 12:10
	w.Idle(wall, 0)
	w.Idle(wall.Add(5*time.Minute), 5*time.Minute)
	if v, _ := w.Value(); !v.Equal(last.Add(-5 * time.Minute)) {
		t.Fatalf("after a 5m pause: Value = %v, want %v", v, last.Add(-5*time.Minute))
	}
	if w.Closed(Window{Start: last.Truncate(time.Hour), End: last.Truncate(time.Hour).Add(time.Hour)}) {
		t.Fatal("a 5m pause closed the window being replayed")
	}
	// The replay goes on, then pauses again: the new spell starts from the
	// watermark the events set, not from the end of the first spell.
	w.Busy()
	w.Staged(last.Add(20 * time.Minute)) // 12:30
	w.Idle(wall.Add(time.Hour), 0)
	w.Idle(wall.Add(time.Hour), 15*time.Second)
	if v, _ := w.Value(); !v.Equal(last.Add(10*time.Minute + 15*time.Second)) {
		t.Fatalf("second spell: Value = %v, want 12:30:15", v)
	}
}

// A wall clock that jumps forward during an idle spell moves nothing: the
// spell is measured on a monotonic clock; the wall clock only caps it.
func TestWatermarkIdleWallClockJump(t *testing.T) {
	base := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	w := NewWatermark(testSpec())
	w.Staged(base.Add(10 * time.Minute)) // watermark 12:00
	w.Idle(base.Add(10*time.Minute), 0)
	w.Idle(base.Add(10*time.Minute+24*time.Hour), 11*time.Second) // the wall clock jumped a day
	if v, _ := w.Value(); !v.Equal(base.Add(11 * time.Second)) {
		t.Fatalf("after a wall-clock jump: Value = %v, want base+11s", v)
	}
	// And never past the wall clock: an idle spell long on the monotonic
	// clock, with a wall clock behind it, is capped at now - MaxOutOfOrder.
	w.Idle(base.Add(15*time.Minute), time.Hour)
	if v, _ := w.Value(); !v.Equal(base.Add(5 * time.Minute)) {
		t.Fatalf("capped: Value = %v, want base+5m (now - max_out_of_order)", v)
	}
}

func TestWatermarkFlushed(t *testing.T) {
	base := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	w := NewWatermark(testSpec())
	w.Staged(base)
	w.Flushed(base.Add(24 * time.Hour))
	if v, _ := w.Value(); !v.Equal(base.Add(24*time.Hour - 10*time.Minute)) {
		t.Fatalf("after Flushed: Value = %v, want at - max_out_of_order", v)
	}
	w.Flushed(base) // older: ignored
	if v, _ := w.Value(); !v.Equal(base.Add(24*time.Hour - 10*time.Minute)) {
		t.Fatalf("an older flush moved the watermark back to %v", v)
	}
}

func TestWatermarkIgnoresMonotonicClock(t *testing.T) {
	w := NewWatermark(testSpec())
	now := time.Now() // carries a monotonic reading, as a caller's wall clock would
	w.Flushed(now)
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
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				w.Busy()
				w.Staged(at)
			case 1:
				w.Flushed(at)
			default:
				w.Idle(at, time.Duration(rapid.Int64Range(0, int64(2*time.Minute)).Draw(t, "idle_for")))
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
