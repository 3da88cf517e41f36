package windowstate_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/windowstate"
)

// A window's run, event by event: a collector registers a segment, a
// compactor seals and compacts the window, the loader's result loads it.
// A segment registered above the seal's cutoff is late, a second seal is
// refused, and a redelivered load result changes nothing.
func Example() {
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	now := start.Add(65 * time.Minute)
	w := windowstate.Window{Policy: "clicks", PolicyVersion: 1, Start: start, End: start.Add(time.Hour)}
	reg := &messages.SegmentRegistered{Rows: 100, MinEventTime: start, MaxEventTime: start.Add(time.Minute)}
	lease := windowstate.Lease{Owner: "compactor-1", For: time.Minute}

	st, _ := windowstate.Register(nil, w, windowstate.Segment{Reg: reg, Seq: 1, StagedAt: start}, false)
	fmt.Println(st.Status, st.Segments, st.StagedRows)
	st, _ = windowstate.Seal(st, now, now, lease)
	fmt.Println(st.Status, st.Owner)

	_, err := windowstate.Register(st, w, windowstate.Segment{Reg: reg, Seq: 2, StagedAt: now}, false)
	fmt.Println(errors.Is(err, windowstate.ErrLate), err)
	_, err = windowstate.Seal(st, now, now, windowstate.Lease{Owner: "compactor-2", For: time.Minute})
	fmt.Println(errors.Is(err, windowstate.ErrRefused))

	batch := messages.BatchRef{BatchID: messages.BatchID("clicks", start, 0, 0), Rows: 100}
	st, _ = windowstate.Compacted(st, now, "compactor-1", windowstate.Compaction{Segments: 1, StagedRows: 100, Rows: 100, Batches: 1})
	fmt.Println(st.Status)
	st, _ = windowstate.ApplyLoadResult(st, &messages.LoadResult{BatchID: batch.BatchID, Policy: "clicks", WindowStart: start, Status: messages.LoadLoaded, BatchRows: batch.Rows}, now)
	fmt.Println(st.Status, st.LoadedRows)
	_, err = windowstate.ApplyLoadResult(st, &messages.LoadResult{BatchID: batch.BatchID, Policy: "clicks", WindowStart: start, Status: messages.LoadLoaded}, now)
	fmt.Println(errors.Is(err, windowstate.ErrNoChange))
	// Output:
	// OPEN 1 100
	// SEALED compactor-1
	// true windowstate: register refused (SEALED): registration 2 is above the cutoff 1
	// true
	// COMPACTED
	// LOADED 100
	// true
}
