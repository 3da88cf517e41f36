package windows_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/windrow/windrow/windows"
)

func ExampleParsePolicy() {
	data := []byte(`
name: orders
source:
  subjects: [events.orders.>]
schema:
  fields:
    - {name: order_id, type: string, required: true}
    - {name: created_at, type: timestamp, required: true}
time:
  field: created_at
window:
  size: 1h
load:
  table: raw.orders
`)
	p, err := windows.ParsePolicy("policies/orders.yaml", data)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Name, p.Source.Stream, p.Window.Size, p.Window.Timezone, p.Segment.MaxBytes, p.Output.SortBy)

	_, err = windows.ParsePolicy("policies/orders.yaml", []byte("name: orders\nwindow:\n  size: 25x\n"))
	fmt.Println(errors.Is(err, windows.ErrInvalidPolicy))
	fmt.Println(err)
	// Output:
	// orders EVENTS 1h0m0s UTC 64MiB [created_at]
	// true
	// policies/orders.yaml: source.subjects: at least one subject filter is required (e.g. events.sales.>)
	// policies/orders.yaml: schema.fields: at least one field is required
	// policies/orders.yaml: time.field: is required in event mode: name a required timestamp field (or set time.mode: ingest)
	// policies/orders.yaml: load.table: is required (table or schema.table, each part 1-63 characters of lowercase letters, digits or _, not starting with a digit)
	// policies/orders.yaml:3: window.size: "25x" is not a duration (use e.g. 24h, 15m, 90s)
}

func ExampleAssigner_Assign() {
	a, err := windows.NewAssigner(windows.WindowSpec{Size: windows.Duration(24 * time.Hour), Timezone: "America/New_York"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, day := range []string{"2026-03-07", "2026-03-08", "2026-11-01"} {
		noon, _ := time.Parse(time.DateTime, day+" 17:00:00") // noon in New York, as UTC
		w := a.Assign(noon)
		fmt.Println(w.ID(), w.End.Sub(w.Start))
	}
	// Output:
	// 20260307T050000Z 24h0m0s
	// 20260308T050000Z 23h0m0s
	// 20261101T040000Z 25h0m0s
}

func ExampleAssigner_AssignMicros() {
	a, _ := windows.NewAssigner(windows.WindowSpec{Size: windows.Duration(5 * time.Minute)})
	t := time.Date(2026, 3, 8, 12, 7, 30, 0, time.UTC)
	start, end := a.AssignMicros(t.UnixMicro())
	fmt.Println(time.UnixMicro(start).UTC().Format(time.TimeOnly), time.UnixMicro(end).UTC().Format(time.TimeOnly))
	// Output:
	// 12:05:00 12:10:00
}

func ExampleWatermark() {
	spec := windows.WindowSpec{
		Size:            windows.Duration(time.Hour),
		MaxOutOfOrder:   windows.Duration(10 * time.Minute),
		AllowedLateness: windows.Duration(5 * time.Minute),
		IdleTimeout:     windows.Duration(30 * time.Second),
	}
	a, _ := windows.NewAssigner(spec)
	wm := windows.NewWatermark(spec)
	win := a.Assign(time.Date(2026, 3, 8, 12, 30, 0, 0, time.UTC)) // [12:00, 13:00)

	wm.Staged(time.Date(2026, 3, 8, 13, 14, 0, 0, time.UTC)) // watermark 13:04
	fmt.Println(wm.Closed(win))
	wm.Staged(time.Date(2026, 3, 8, 13, 15, 0, 0, time.UTC)) // watermark 13:05 = End + lateness
	fmt.Println(wm.Closed(win), spec.ClosesAt(win).Format(time.TimeOnly))
	// Output:
	// false
	// true 13:05:00
}

// A policy whose windows grew from 1h to 2h at a switch instant: events before
// it are in hourly windows, events from it on in two-hour windows.
func ExampleEpochAssigner() {
	p := &windows.Policy{
		Window: windows.WindowSpec{Kind: windows.Tumbling, Size: windows.Duration(2 * time.Hour), Timezone: "UTC"},
		WindowHistory: []windows.PastShape{{
			Until: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC),
			Kind:  windows.Tumbling, Size: windows.Duration(time.Hour), Timezone: "UTC",
		}},
	}
	a, err := windows.NewEpochAssigner(p)
	if err != nil {
		panic(err)
	}
	for _, t := range []time.Time{
		time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC),
		time.Date(2026, 11, 27, 0, 30, 0, 0, time.UTC),
		time.Date(2026, 11, 27, 1, 30, 0, 0, time.UTC),
	} {
		fmt.Println(a.AssignAll(t, nil)[0])
	}
	// Output:
	// 20261126T230000Z[2026-11-26T23:00:00Z, 2026-11-27T00:00:00Z)
	// 20261127T000000Z[2026-11-27T00:00:00Z, 2026-11-27T02:00:00Z)
	// 20261127T000000Z[2026-11-27T00:00:00Z, 2026-11-27T02:00:00Z)
}
