package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/dlq"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/pipeline/staging"
	"github.com/windrow/windrow/pipeline/windowstate"
	"github.com/windrow/windrow/windows"
)

// Rebuilding windows from the source stream (`windrow replay
// --from-stream`): for windows whose batch files are gone, or to apply the
// policy as it is now (a field added since, a fixed type) to old events.
//
// Each chosen window (LOADED) gets a held, rebuilding next revision (one
// compare-and-set). The source stream's retained events are then read
// from the start with an ordered consumer, decoded with the current
// policy, and the events of the chosen windows staged as segments,
// registered and counted in that next revision, as a collector would. When
// the stream has been read, the hold is released: a compactor makes the
// revision from those segments alone (not merged with what was loaded
// before) and the replace load swaps the window's rows for them, in one
// transaction. A rebuild that stops half way is never made from part of
// the window: its windows wait (`windrow status` shows their pending rows)
// until the rebuild is run again, which stages everything again (the
// compaction drops the copies by source sequence) and releases them.

// holdFor is recorded as the hold's horizon, renewed at every segment: an
// operator who sees it passed knows the rebuild stopped.
const holdFor = 10 * time.Minute

// StreamReport is what a rebuild from the stream did.
type StreamReport struct {
	Windows   []Window
	Read      int64 // events read from the stream
	Staged    int64 // events staged for the chosen windows
	Malformed int64 // events the current policy does not accept (dead-lettered the first time; not staged)
	// Recovered counts the late dead letters and late-drop markers of the
	// rebuilt windows whose events were staged: each is recorded as
	// discarded, reason "recovered by rebuild", their events being loaded.
	Recovered int64
}

// FromStream rebuilds the policy's loaded windows that start in [from, to)
// from the source stream. progress, if set, is called now and then with the
// events read and the stream's last sequence.
func FromStream(ctx context.Context, cfg Config, from, to time.Time, dryRun bool, progress func(read, last uint64)) (*StreamReport, error) {
	p := cfg.Policy
	switch {
	case !from.Before(to):
		return nil, fmt.Errorf("replay: --from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	case p.Load.Mode != windows.LoadReplace:
		return nil, fmt.Errorf("replay --from-stream: policy %s loads with mode %s; a rebuild replaces each window's rows, so it needs load.mode: replace", p.Name, p.Load.Mode)
	case p.Window.Kind != windows.Tumbling && p.Window.Kind != "":
		return nil, fmt.Errorf("replay --from-stream: policy %s has %s windows; rebuilding from the stream is built for tumbling windows", p.Name, p.Window.Kind)
	case len(p.WindowHistory) > 0:
		return nil, fmt.Errorf("replay --from-stream: policy %s changed its window shape (window_history); rebuilding from the stream is built for one shape", p.Name)
	case cfg.Store == nil:
		return nil, errors.New("replay --from-stream: an object store is required")
	}
	if err := checkRetired(ctx, cfg, from); err != nil {
		return nil, err
	}
	states, err := cfg.States.List(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	rep := &StreamReport{}
	chosen := map[int64]*Window{}
	for _, st := range states {
		if st.WindowStart.Before(from) || !st.WindowStart.Before(to) {
			continue
		}
		w := Window{ID: st.ID(), Status: st.Status, Rows: st.Rows, Revision: st.Revision}
		if st.Status != messages.StatusLoaded {
			w.Skipped = fmt.Sprintf("%s: only loaded windows are rebuilt (wait for its run, or fix it first)", st.Status)
		}
		rep.Windows = append(rep.Windows, w)
	}
	if dryRun {
		return rep, nil
	}
	now := time.Now().UTC()
	for i := range rep.Windows {
		w := &rep.Windows[i]
		if w.Skipped != "" {
			continue
		}
		st, err := cfg.States.Update(ctx, messages.WindowKey(p.Name, w.ID), func(cur *messages.WindowState) (*messages.WindowState, error) {
			return changed(windowstate.HoldRebuild(cur, now.Add(holdFor)))
		})
		if errors.Is(err, errChanged) {
			w.Skipped = "its state changed meanwhile; run the rebuild again"
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("rebuild window %s: %w", w.ID, err)
		}
		chosen[st.WindowStart.UnixMicro()] = w
	}
	if len(chosen) == 0 {
		return rep, nil
	}
	late, err := lateEntries(ctx, cfg, chosen)
	if err != nil {
		return rep, err
	}
	recovered := map[*dlq.Entry]bool{}
	if err := stageFromStream(ctx, cfg, chosen, rep, progress, late, recovered); err != nil {
		return rep, err
	}
	// Before the holds are released: a rebuild stopped before this point
	// is run again, and records nothing twice.
	for e := range recovered {
		if _, err := dlq.RecordDiscard(ctx, cfg.JS, p.Name, e, dlq.ReasonRecovered, true); err != nil {
			return rep, fmt.Errorf("rebuild: record a late event as recovered: %w", err)
		}
		rep.Recovered++
	}
	// Release the holds: the compactors make the revisions.
	for _, w := range chosen {
		_, err := cfg.States.Update(ctx, messages.WindowKey(p.Name, w.ID), func(cur *messages.WindowState) (*messages.WindowState, error) {
			return changed(windowstate.ReleaseRebuild(cur))
		})
		if err != nil && !errors.Is(err, errChanged) {
			return rep, fmt.Errorf("rebuild window %s: release: %w", w.ID, err)
		}
		if w.Rows == 0 {
			w.Skipped = "no event of the window is left in the source stream"
		}
	}
	return rep, nil
}

// lateEntries returns the late dead letters and late-drop markers of the
// chosen windows that are not discarded yet, by source sequence.
func lateEntries(ctx context.Context, cfg Config, chosen map[int64]*Window) (map[uint64][]*dlq.Entry, error) {
	p := cfg.Policy
	ids := map[string]bool{}
	for _, w := range chosen {
		ids[w.ID] = true
	}
	out := map[uint64][]*dlq.Entry{}
	err := dlq.Entries(ctx, cfg.JS, dlq.Filter{Policy: p.Name}, false, func(e *dlq.Entry) error {
		late := e.Kind == dlq.KindLateMarker || e.Reason == messages.ReasonLate
		if late && ids[e.Window] && e.SourceSeq != 0 && (e.SourceStream == "" || e.SourceStream == p.Source.Stream) {
			out[e.SourceSeq] = append(out[e.SourceSeq], e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rebuild: read late dead letters: %w", err)
	}
	return out, nil
}

// stageFromStream reads the source stream and stages the chosen windows'
// events; w.Rows counts what was staged per window. The entries of late
// whose event is staged for their window are added to recovered.
func stageFromStream(ctx context.Context, cfg Config, chosen map[int64]*Window, rep *StreamReport, progress func(read, last uint64), late map[uint64][]*dlq.Entry, recovered map[*dlq.Entry]bool) error {
	p := cfg.Policy
	for _, w := range chosen {
		w.Rows = 0
	}
	layout, err := records.NewLayout(p)
	if err != nil {
		return err
	}
	assign, err := windows.NewAssigner(p.Window)
	if err != nil {
		return err
	}
	stream, err := cfg.JS.Stream(ctx, p.Source.Stream)
	if err != nil {
		return fmt.Errorf("source stream %s: %w", p.Source.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("source stream %s: %w", p.Source.Stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: 30 * time.Second}
	occ.FilterSubjects = p.Source.Subjects
	cons, err := cfg.JS.OrderedConsumer(ctx, p.Source.Stream, occ)
	if err != nil {
		return fmt.Errorf("read %s: %w", p.Source.Stream, err)
	}
	dec := records.NewDecoder(layout)
	bufs := map[int64]*staging.Segment{}
	flush := func(start int64) error {
		b := bufs[start]
		if b == nil || len(b.Rows) == 0 {
			return nil
		}
		delete(bufs, start)
		return stageSegment(ctx, cfg, layout, chosen[start], b)
	}
	lastReport := time.Now()
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("read %s: %w", p.Source.Stream, err)
		}
		done, n := false, 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			rep.Read++
			seq := meta.Sequence.Stream
			if meta.NumPending == 0 || seq >= last {
				done = true
			}
			row, evt, err := dec.Decode(m.Data(), seq, meta.Timestamp.UnixMicro())
			if err != nil {
				var de *records.DecodeError
				if !errors.As(err, &de) {
					return err
				}
				rep.Malformed++
				continue
			}
			start, end := assign.AssignMicros(evt)
			if chosen[start] == nil {
				continue
			}
			b := bufs[start]
			if b == nil {
				b = &staging.Segment{Window: windows.Window{Start: time.UnixMicro(start).UTC(), End: time.UnixMicro(end).UTC()}, MinSeq: seq, MinEvt: evt, MaxEvt: evt}
				bufs[start] = b
			}
			addRow(b, row, seq, evt)
			rep.Staged++
			for _, e := range late[seq] {
				if e.Window == chosen[start].ID {
					recovered[e] = true
				}
			}
			if len(b.Rows) >= p.Segment.MaxRows {
				if err := flush(start); err != nil {
					return err
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("read %s: %w", p.Source.Stream, err)
		}
		if progress != nil && (done || time.Since(lastReport) > time.Second) {
			progress(uint64(rep.Read), last)
			lastReport = time.Now()
		}
		if done || n == 0 {
			break
		}
	}
	for start := range bufs {
		if err := flush(start); err != nil {
			return err
		}
	}
	return nil
}

// addRow adds an event's row to a segment being gathered.
func addRow(b *staging.Segment, row parquet.Row, seq uint64, evt int64) {
	b.Rows = append(b.Rows, row)
	b.MinSeq, b.MaxSeq = min(b.MinSeq, seq), max(b.MaxSeq, seq)
	b.MinEvt, b.MaxEvt = min(b.MinEvt, evt), max(b.MaxEvt, evt)
}

// stageSegment writes, registers and counts one segment of a window being
// rebuilt, as a collector stages one (see services/collector).
func stageSegment(ctx context.Context, cfg Config, layout *records.Layout, w *Window, b *staging.Segment) error {
	p := cfg.Policy
	t0 := time.Now()
	reg, ack, err := staging.Write(ctx, cfg.JS, cfg.Store, layout, p, b, "replay")
	if err != nil {
		return err
	}
	segID := reg.SegmentID
	seg := windowstate.Segment{Reg: reg, Seq: ack.Sequence, StagedAt: t0}
	_, err = cfg.States.Update(ctx, messages.WindowKey(p.Name, w.ID), func(cur *messages.WindowState) (*messages.WindowState, error) {
		return changed(windowstate.RegisterRebuild(cur, seg, time.Now().UTC().Add(holdFor)))
	})
	if errors.Is(err, errChanged) {
		return fmt.Errorf("rebuild window %s: its state changed while its events were staged (a revision started?); run the rebuild again", w.ID)
	}
	if err != nil {
		return fmt.Errorf("rebuild window %s: register segment %s: %w", w.ID, segID, err)
	}
	w.Rows += reg.Rows
	return nil
}

// WaitRebuilt waits until every window a rebuild staged is loaded under a
// revision after the one it had.
func WaitRebuilt(ctx context.Context, states *statestore.Store, policy string, ws []Window, progress func(loaded, total int)) error {
	return waitWindows(ctx, states, policy, ws, "rebuilt", progress, func(st *messages.WindowState, w Window) (bool, error) {
		if st.Status == messages.StatusFailed {
			return false, fmt.Errorf("window %s: rebuild failed: %s", w.ID, st.Error)
		}
		return st.Status == messages.StatusLoaded && st.Revision > w.Revision && (st.Next == nil || !st.Next.Rebuild), nil
	})
}
