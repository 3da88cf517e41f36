package compactor

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// BenchmarkCompactManySegments compacts one sealed window of many small
// segments (50 events each, every one overlapping the next by 10), as
// max_age: 2s makes them: the segments are staged once, the window is
// compacted again each iteration (the state put back to SEALED).
func BenchmarkCompactManySegments(b *testing.B) {
	for _, bc := range []struct {
		segments int
		cfg      func(*Config)
	}{
		{segments: 32},
		{segments: 1000},
		{segments: 1000, cfg: func(c *Config) { c.MergeFanIn = 8 }},
	} {
		name := fmt.Sprintf("segments=%d", bc.segments)
		if bc.cfg != nil {
			name += "/fanin=8"
		}
		b.Run(name, func(b *testing.B) {
			env := testkit.New(b)
			p := testkit.Policy(b, policySrc)
			l, err := records.NewLayout(p)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
			for i := range bc.segments {
				from := uint64(i*40 + 1)
				stageSegment(b, env, l, p, win, seqRange(from, from+49))
			}
			cfg := Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "c1",
				Lease: time.Hour, Logger: slog.New(slog.DiscardHandler)}
			if bc.cfg != nil {
				bc.cfg(&cfg)
			}
			c, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			sealed, err := c.seal(ctx, win, win.End.Add(time.Minute))
			if err != nil || sealed == nil {
				b.Fatalf("seal: %v %v", sealed, err)
			}
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				st, err := env.States.Update(ctx, sealed.Key(), func(*messages.WindowState) (*messages.WindowState, error) {
					again := *sealed
					return &again, nil
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := c.compact(ctx, st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bc.segments), "segments")
		})
	}
}
