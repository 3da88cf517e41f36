package compactor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// BenchmarkKeyedWindowFiles compacts a window of 220 keys × 100 rows (the
// shape of issue 12 item 10: ~220 stores per daily window) with key [k]
// and the default target_file_size, and reports the batch files and bytes
// a window makes:
//
//	go test -run '^$' -bench KeyedWindowFiles -benchtime 3x ./services/compactor/
func BenchmarkKeyedWindowFiles(b *testing.B) {
	const keys, perKey = 220, 100
	p := testkit.Policy(b, strings.Replace(strings.Replace(policySrc, "target_file_size: 1MiB, ", "", 1), "row_group_rows: 1000}", "row_group_rows: 1000}\nkey: [k]", 1))
	l, err := records.NewLayout(p)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var files, bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		env := testkit.New(b) // a window per environment
		c, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p, Instance: "c1"})
		if err != nil {
			b.Fatal(err)
		}
		win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
		stageKeyed(b, env, l, p, win, seqRange(1, keys*perKey), func(seq uint64) string { return fmt.Sprintf("store-%03d", seq%keys) })
		st, err := c.seal(ctx, win, win.End.Add(time.Minute))
		if err != nil || st == nil {
			b.Fatalf("seal: %v %v", st, err)
		}
		b.StartTimer()
		if err := c.compact(ctx, st); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		done, _, err := env.States.Get(ctx, p.Name, win.ID())
		if err != nil {
			b.Fatal(err)
		}
		files += int64(done.BatchCount)
		bytes += done.BatchBytes
		b.StartTimer()
	}
	b.ReportMetric(float64(files)/float64(b.N), "files/window")
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/window")
}
