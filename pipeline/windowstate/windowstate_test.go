package windowstate_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/windowstate"
)

// The fixtures: a window of policy clicks, 10:00–11:00 UTC, seen at 11:05.
var (
	start = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	end   = start.Add(time.Hour)
	now   = end.Add(5 * time.Minute)
	cest  = time.FixedZone("CEST", 2*60*60)
	lease = windowstate.Lease{Owner: "c1", For: time.Minute}
	b0    = messages.BatchRef{BatchID: messages.BatchID("clicks", start, 0, 0), Object: "batches/p0.parquet", Rows: 60}
	b1    = messages.BatchRef{BatchID: messages.BatchID("clicks", start, 0, 1), Object: "batches/p1.parquet", Rows: 40}
)

// at is start + d.
func at(d time.Duration) time.Time { return start.Add(d) }

// A window in each status. Every call returns a new state, so that a test
// can keep a copy of an event's input and see whether the event changed it.
func open() *messages.WindowState {
	return &messages.WindowState{
		Policy: "clicks", PolicyVersion: 3, WindowStart: start, WindowEnd: end, Status: messages.StatusOpen,
		Segments: 2, StagedRows: 100, LastSegmentSeq: 20, MaxSourceSeq: 500,
		MinEventTime: at(time.Minute), MaxEventTime: at(50 * time.Minute), FirstStagedAt: at(2 * time.Minute),
		TraceParent: "00-run-01", TraceID: "run",
	}
}

func sealed(owner string, leaseUntil time.Time) *messages.WindowState {
	st := open()
	st.Status, st.Watermark, st.SealedAt, st.Owner, st.LeaseUntil = messages.StatusSealed, end, end.Add(time.Second), owner, leaseUntil
	return st
}

func compacted() *messages.WindowState {
	st := sealed("c1", now.Add(time.Minute))
	st.Status, st.CompactedAt, st.Rows, st.BatchCount, st.BatchBytes, st.Manifest = messages.StatusCompacted, end.Add(2*time.Second), 100, 2, 3000, "manifest.json"
	return st
}

func loaded() *messages.WindowState {
	st := compacted()
	st.Status, st.LoadedParts, st.LoadedRows, st.LoadedAt, st.LoadDuration = messages.StatusLoaded, parts(0, 1), 100, end.Add(3*time.Second), 1000
	return st
}

func failed() *messages.WindowState {
	st := compacted()
	st.Status, st.LoadedParts, st.LoadedRows, st.Error = messages.StatusFailed, parts(0), 60, "batch p1: table gone"
	return st
}

// with returns st changed by change.
// parts is the set of the given batch parts.
func parts(ps ...int) messages.PartSet {
	var s messages.PartSet
	for _, p := range ps {
		s = s.With(p)
	}
	return s
}

func with(st *messages.WindowState, change func(*messages.WindowState)) *messages.WindowState {
	change(st)
	return st
}

// none is a window without state.
func none() *messages.WindowState { return nil }

// check applies event to a state made by cur and compares the outcome with
// want and wantErr (errors.Is); the event must leave its input as it was.
func check(t *testing.T, cur func() *messages.WindowState, event func(*messages.WindowState) (*messages.WindowState, error),
	want *messages.WindowState, wantErr error) {
	t.Helper()
	in, before := cur(), cur()
	got, err := event(in)
	if !errors.Is(err, wantErr) {
		t.Fatalf("err = %v, want %v", err, wantErr)
	}
	if err != nil && got != nil {
		t.Errorf("err = %v with a state", err)
	}
	if d := diff(got, want); d != "" {
		t.Errorf("state differs (got, want):%s", d)
	}
	if d := diff(in, before); d != "" {
		t.Errorf("the event changed its input (now, before):%s", d)
	}
}

// diff lists the fields in which a and b differ.
func diff(a, b *messages.WindowState) string {
	if a == nil || b == nil {
		if a == b {
			return ""
		}
		return fmt.Sprintf("\n\t%v\n\t%v", a, b)
	}
	va, vb := reflect.ValueOf(*a), reflect.ValueOf(*b)
	var out string
	for i := range va.NumField() {
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if !reflect.DeepEqual(fa, fb) {
			out += fmt.Sprintf("\n\t%s: %+v, %+v", va.Type().Field(i).Name, fa, fb)
		}
	}
	return out
}

func TestRegister(t *testing.T) {
	reg := &messages.SegmentRegistered{Rows: 30, MaxSourceSeq: 700, MinEventTime: at(30 * time.Second), MaxEventTime: at(55 * time.Minute)}
	inside := &messages.SegmentRegistered{Rows: 5, MaxSourceSeq: 90, MinEventTime: at(10 * time.Minute), MaxEventTime: at(11 * time.Minute)}
	w := windowstate.Window{Policy: "clicks", PolicyVersion: 3, Start: start, End: end, TraceParent: "00-new-01", TraceID: "new"}
	early := at(time.Minute).In(cest) // before the window's first segment
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		seg     windowstate.Segment
		revise  bool
		want    *messages.WindowState
		wantErr error
	}{
		{name: "no state: created open, with its run", cur: none, seg: windowstate.Segment{Reg: reg, Seq: 7, StagedAt: early},
			want: &messages.WindowState{
				Policy: "clicks", PolicyVersion: 3, WindowStart: start, WindowEnd: end, Status: messages.StatusOpen,
				Segments: 1, StagedRows: 30, LastSegmentSeq: 7, MaxSourceSeq: 700,
				MinEventTime: reg.MinEventTime, MaxEventTime: reg.MaxEventTime, FirstStagedAt: early.UTC(),
				TraceParent: "00-new-01", TraceID: "new",
			}},
		{name: "open: counted, bounds widened", cur: open, seg: windowstate.Segment{Reg: reg, Seq: 21, StagedAt: early},
			want: with(open(), func(st *messages.WindowState) {
				st.Segments, st.StagedRows, st.LastSegmentSeq, st.MaxSourceSeq = 3, 130, 21, 700
				st.MinEventTime, st.MaxEventTime, st.FirstStagedAt = reg.MinEventTime, reg.MaxEventTime, early.UTC()
			})},
		{name: "open: counted, within the bounds (a parallel collector's older registration)", cur: open,
			seg:  windowstate.Segment{Reg: inside, Seq: 19, StagedAt: at(3 * time.Minute)},
			want: with(open(), func(st *messages.WindowState) { st.Segments, st.StagedRows = 3, 105 })},
		{name: "sealed, at the cutoff: part of the window", cur: func() *messages.WindowState { return sealed("c1", now) },
			seg: windowstate.Segment{Reg: reg, Seq: 20, StagedAt: early}, revise: true, wantErr: windowstate.ErrNoChange},
		{name: "sealed, below the cutoff: part of the window", cur: func() *messages.WindowState { return sealed("c1", now) },
			seg: windowstate.Segment{Reg: reg, Seq: 12, StagedAt: early}, wantErr: windowstate.ErrNoChange},
		{name: "sealed, above the cutoff: late", cur: func() *messages.WindowState { return sealed("c1", now) },
			seg: windowstate.Segment{Reg: reg, Seq: 21, StagedAt: early}, wantErr: windowstate.ErrLate},
		{name: "loaded, above the cutoff: late, refused", cur: loaded,
			seg: windowstate.Segment{Reg: reg, Seq: 21, StagedAt: early}, wantErr: windowstate.ErrRefused},
		{name: "sealed, above the cutoff, revise: the next revision's", cur: func() *messages.WindowState { return sealed("c1", now) },
			seg: windowstate.Segment{Reg: reg, Seq: 21, StagedAt: early}, revise: true,
			want: with(sealed("c1", now), func(st *messages.WindowState) {
				st.Next = &messages.PendingRevision{Segments: 1, StagedRows: 30, LastSegmentSeq: 21,
					MinEventTime: reg.MinEventTime, MaxEventTime: reg.MaxEventTime, FirstStagedAt: early.UTC()}
			})},
		{name: "loaded with a pending revision, revise: added to it",
			cur: func() *messages.WindowState {
				return with(loaded(), func(st *messages.WindowState) {
					st.Next = &messages.PendingRevision{Segments: 1, StagedRows: 5, LastSegmentSeq: 25,
						MinEventTime: inside.MinEventTime, MaxEventTime: inside.MaxEventTime, FirstStagedAt: now}
				})
			},
			seg: windowstate.Segment{Reg: reg, Seq: 30, StagedAt: now.Add(time.Minute)}, revise: true,
			want: with(loaded(), func(st *messages.WindowState) {
				st.Next = &messages.PendingRevision{Segments: 2, StagedRows: 35, LastSegmentSeq: 30,
					MinEventTime: reg.MinEventTime, MaxEventTime: reg.MaxEventTime, FirstStagedAt: now}
			})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.Register(cur, w, tc.seg, tc.revise)
			}, tc.want, tc.wantErr)
		})
	}
}

func TestOpen(t *testing.T) {
	w := windowstate.Window{Policy: "clicks", PolicyVersion: 3, Start: end, End: end.Add(time.Hour), TraceParent: "00-pane-01", TraceID: "pane"}
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		want    *messages.WindowState
		wantErr error
	}{
		{name: "no state: created open and empty", cur: none, want: &messages.WindowState{
			Policy: "clicks", PolicyVersion: 3, WindowStart: end, WindowEnd: end.Add(time.Hour), Status: messages.StatusOpen,
			FirstStagedAt: now, TraceParent: "00-pane-01", TraceID: "pane",
		}},
		{name: "open: left as it is", cur: open, wantErr: windowstate.ErrNoChange},
		{name: "loaded: left as it is", cur: loaded, wantErr: windowstate.ErrNoChange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.Open(cur, w, now)
			}, tc.want, tc.wantErr)
		})
	}
}

func TestSeal(t *testing.T) {
	wm := end.In(cest)
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		want    *messages.WindowState
		wantErr error
	}{
		{name: "open: sealed, owned and leased", cur: open, want: with(open(), func(st *messages.WindowState) {
			st.Status, st.Watermark, st.SealedAt, st.Owner, st.LeaseUntil = messages.StatusSealed, end, now, "c1", now.Add(time.Minute)
		})},
		{name: "no state", cur: none, wantErr: windowstate.ErrRefused},
		{name: "sealed by another", cur: func() *messages.WindowState { return sealed("c2", now.Add(time.Minute)) }, wantErr: windowstate.ErrRefused},
		{name: "loaded", cur: loaded, wantErr: windowstate.ErrRefused},
		{name: "failed", cur: failed, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.Seal(cur, now, wm, lease)
			}, tc.want, tc.wantErr)
		})
	}
}

func TestClaim(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		want    *messages.WindowState
		wantErr error
	}{
		{name: "its own, lease running: renewed", cur: func() *messages.WindowState { return sealed("c1", now.Add(time.Second)) },
			want: sealed("c1", now.Add(time.Minute))},
		{name: "its own, lease ended: renewed", cur: func() *messages.WindowState { return sealed("c1", now.Add(-time.Hour)) },
			want: sealed("c1", now.Add(time.Minute))},
		{name: "another's, lease ended now: taken over", cur: func() *messages.WindowState { return sealed("c2", now) },
			want: sealed("c1", now.Add(time.Minute))},
		{name: "another's, lease running", cur: func() *messages.WindowState { return sealed("c2", now.Add(time.Nanosecond)) },
			wantErr: windowstate.ErrRefused},
		{name: "no state", cur: none, wantErr: windowstate.ErrRefused},
		{name: "open", cur: open, wantErr: windowstate.ErrRefused},
		{name: "compacted", cur: compacted, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.Claim(cur, now, lease)
			}, tc.want, tc.wantErr)
		})
	}
}

func TestRenewLease(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		want    *messages.WindowState
		wantErr error
	}{
		{name: "its own: renewed", cur: func() *messages.WindowState { return sealed("c1", now.Add(time.Second)) },
			want: sealed("c1", now.Add(time.Minute))},
		{name: "its own, lease ended: renewed", cur: func() *messages.WindowState { return sealed("c1", now.Add(-time.Second)) },
			want: sealed("c1", now.Add(time.Minute))},
		{name: "taken over by another: lost", cur: func() *messages.WindowState { return sealed("c2", now.Add(-time.Second)) },
			wantErr: windowstate.ErrRefused},
		{name: "compacted: lost", cur: compacted, wantErr: windowstate.ErrRefused},
		{name: "no state: lost", cur: none, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.RenewLease(cur, now, lease)
			}, tc.want, tc.wantErr)
		})
	}
}

func TestCompacted(t *testing.T) {
	own := func() *messages.WindowState { return sealed("c1", now.Add(time.Minute)) }
	made := windowstate.Compaction{Segments: 3, StagedRows: 110, BaseRows: 10, Rows: 90, Duplicates: 15, KeyOverflow: 4, CarryRows: 11,
		Carry: "carry.parquet", Batches: 2, BatchBytes: 3000, Manifest: "m.json"}
	compactedBy := func(c windowstate.Compaction) *messages.WindowState {
		return with(own(), func(st *messages.WindowState) {
			st.Status, st.CompactedAt, st.Segments, st.StagedRows, st.BaseRows = messages.StatusCompacted, now, c.Segments, c.StagedRows, c.BaseRows
			st.Rows, st.Duplicates, st.KeyOverflow, st.CarryRows, st.Carry = c.Rows, c.Duplicates, c.KeyOverflow, c.CarryRows, c.Carry
			st.BatchCount, st.BatchBytes, st.Manifest = c.Batches, c.BatchBytes, c.Manifest
		})
	}
	empty := made
	empty.Batches, empty.BatchBytes, empty.Rows, empty.Duplicates, empty.KeyOverflow, empty.CarryRows, empty.Carry = 0, 0, 0, 120, 0, 0, ""
	unchanged := made
	unchanged.Unchanged = true
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		c       windowstate.Compaction
		want    *messages.WindowState
		wantErr error
	}{
		{name: "its own: compacted", cur: own, c: made, want: compactedBy(made)},
		{name: "nothing to load (no batches): loaded at once", cur: own, c: empty, want: with(compactedBy(empty), func(st *messages.WindowState) {
			st.Status, st.LoadedAt, st.LoadedRows = messages.StatusLoaded, now, 0
		})},
		{name: "nothing new for the table (unchanged): loaded at once, every batch counted loaded", cur: own, c: unchanged,
			want: with(compactedBy(unchanged), func(st *messages.WindowState) {
				st.Status, st.LoadedAt, st.LoadedParts, st.LoadedRows = messages.StatusLoaded, now, parts(0, 1), 90
			})},
		{name: "taken over by another: lost", cur: func() *messages.WindowState { return sealed("c2", now.Add(time.Minute)) }, c: made,
			wantErr: windowstate.ErrRefused},
		{name: "compacted already: lost", cur: compacted, c: made, wantErr: windowstate.ErrRefused},
		{name: "failed: lost", cur: failed, c: made, wantErr: windowstate.ErrRefused},
		{name: "no state: lost", cur: none, c: made, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.Compacted(cur, now, "c1", tc.c)
			}, tc.want, tc.wantErr)
		})
	}
}

func TestApplyLoadResult(t *testing.T) {
	result := func(batchID string, status messages.LoadStatus) *messages.LoadResult {
		r := &messages.LoadResult{BatchID: batchID, Policy: "clicks", WindowStart: start, WindowEnd: end, Status: status, Error: "no table"}
		for i, b := range []messages.BatchRef{b0, b1} {
			if b.BatchID == batchID {
				r.Part, r.BatchRows = i, b.Rows
			}
		}
		return r
	}
	whole := messages.WindowLoadID("clicks", start, 0)
	part := func() *messages.WindowState {
		return with(compacted(), func(st *messages.WindowState) { st.LoadedParts, st.LoadedRows = parts(0), 60 })
	}
	allLoaded := func(st *messages.WindowState) {
		st.Status, st.LoadedParts, st.LoadedRows, st.LoadedAt = messages.StatusLoaded, parts(0, 1), 100, now
		st.LoadDuration = now.Sub(st.CompactedAt).Milliseconds()
	}
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		res     *messages.LoadResult
		want    *messages.WindowState
		wantErr error
	}{
		{name: "a batch loaded: counted", cur: compacted, res: result(b0.BatchID, messages.LoadLoaded),
			want: with(compacted(), func(st *messages.WindowState) { st.LoadedParts, st.LoadedRows = parts(0), 60 })},
		{name: "a batch the ledger had (duplicate): counted", cur: compacted, res: result(b0.BatchID, messages.LoadDuplicate),
			want: with(compacted(), func(st *messages.WindowState) { st.LoadedParts, st.LoadedRows = parts(0), 60 })},
		{name: "the last batch loaded: loaded", cur: part, res: result(b1.BatchID, messages.LoadLoaded), want: with(compacted(), allLoaded)},
		{name: "the whole window loaded: every batch counted, loaded", cur: compacted, res: result(whole, messages.LoadLoaded), want: with(compacted(), allLoaded)},
		{name: "the whole window loaded, a batch counted already: the others counted", cur: part, res: result(whole, messages.LoadLoaded),
			want: with(compacted(), allLoaded)},
		{name: "a load failed: failed", cur: part, res: result(b1.BatchID, messages.LoadFailed),
			want: with(part(), func(st *messages.WindowState) {
				st.Status, st.Error = messages.StatusFailed, "batch "+b1.BatchID+": no table"
			})},
		{name: "a failed window's batch loaded: counted, still failed", cur: failed, res: result(b1.BatchID, messages.LoadLoaded),
			want: with(failed(), func(st *messages.WindowState) {
				st.LoadedParts, st.LoadedRows = parts(0, 1), 100
			})},
		{name: "a replayed window's result", cur: func() *messages.WindowState {
			return with(compacted(), func(st *messages.WindowState) { st.Replays = 2 })
		},
			res: with2(result(b0.BatchID, messages.LoadLoaded), func(r *messages.LoadResult) { r.Replay = 2 }),
			want: with(compacted(), func(st *messages.WindowState) {
				st.Replays, st.LoadedParts, st.LoadedRows = 2, parts(0), 60
			})},
		{name: "no state", cur: none, res: result(b0.BatchID, messages.LoadLoaded), wantErr: windowstate.ErrNoChange},
		{name: "a part the run does not have", cur: compacted,
			res: with2(result(messages.BatchID("clicks", start, 0, 2), messages.LoadLoaded), func(r *messages.LoadResult) { r.Part = 2 }), wantErr: windowstate.ErrNoChange},
		{name: "a batch id that is not its part's", cur: compacted,
			res: with2(result(b0.BatchID, messages.LoadLoaded), func(r *messages.LoadResult) { r.Part = 1 }), wantErr: windowstate.ErrNoChange},
		{name: "a batch loaded again: no change", cur: part, res: result(b0.BatchID, messages.LoadLoaded), wantErr: windowstate.ErrNoChange},
		{name: "another revision's result", cur: compacted,
			res: with2(result(b0.BatchID, messages.LoadLoaded), func(r *messages.LoadResult) { r.Revision = 1 }), wantErr: windowstate.ErrNoChange},
		{name: "an earlier replay's result", cur: func() *messages.WindowState {
			return with(compacted(), func(st *messages.WindowState) { st.Replays = 1 })
		},
			res: result(b0.BatchID, messages.LoadFailed), wantErr: windowstate.ErrNoChange},
		{name: "loaded already", cur: loaded, res: result(b1.BatchID, messages.LoadFailed), wantErr: windowstate.ErrNoChange},
		{name: "the batch loaded already (a redelivered result)", cur: part, res: result(b0.BatchID, messages.LoadFailed), wantErr: windowstate.ErrNoChange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.ApplyLoadResult(cur, tc.res, now)
			}, tc.want, tc.wantErr)
		})
	}
}

// with2 returns r changed by change.
func with2(r *messages.LoadResult, change func(*messages.LoadResult)) *messages.LoadResult {
	change(r)
	return r
}

func TestStagingDeleted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cur      func() *messages.WindowState
		revision int
		want     *messages.WindowState
		wantErr  error
	}{
		{name: "loaded: recorded", cur: loaded, want: with(loaded(), func(st *messages.WindowState) { st.StagingDeleted = true })},
		{name: "recorded already", cur: func() *messages.WindowState {
			return with(loaded(), func(st *messages.WindowState) { st.StagingDeleted = true })
		},
			wantErr: windowstate.ErrNoChange},
		{name: "at another revision", cur: loaded, revision: 1, wantErr: windowstate.ErrRefused},
		{name: "compacted (replayed meanwhile)", cur: compacted, wantErr: windowstate.ErrRefused},
		{name: "no state", cur: none, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.StagingDeleted(cur, tc.revision)
			}, tc.want, tc.wantErr)
		})
	}
}

func TestFail(t *testing.T) {
	own := func() *messages.WindowState { return sealed("c1", now) }
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		want    *messages.WindowState
		wantErr error
	}{
		{name: "its own: failed", cur: own, want: with(own(), func(st *messages.WindowState) { st.Status, st.Error = messages.StatusFailed, "segments gone" })},
		{name: "another's", cur: func() *messages.WindowState { return sealed("c2", now) }, wantErr: windowstate.ErrRefused},
		{name: "compacted", cur: compacted, wantErr: windowstate.ErrRefused},
		{name: "open", cur: open, wantErr: windowstate.ErrRefused},
		{name: "no state", cur: none, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.Fail(cur, "c1", "segments gone")
			}, tc.want, tc.wantErr)
		})
	}
}

// rule: late: revise, revise_after 1m, early_every 10m, early_rows 5000.
var rule = windowstate.ReviseRule{Revise: true, After: time.Minute, EarlyEvery: 10 * time.Minute, EarlyRows: 5000}

// pending is a LOADED window, its staging deleted, with next pending.
func pending(next *messages.PendingRevision) *messages.WindowState {
	return with(loaded(), func(st *messages.WindowState) { st.StagingDeleted, st.Next = true, next })
}

func TestRevisionDue(t *testing.T) {
	for _, tc := range []struct {
		name   string
		st     *messages.WindowState
		closed bool
		rule   windowstate.ReviseRule
		want   bool
	}{
		{"nothing pending", pending(nil), true, rule, false},
		{"a pending revision without segments", pending(&messages.PendingRevision{}), true, rule, false},
		{"late events, closed, revise_after not passed", pending(&messages.PendingRevision{Segments: 1, LastSegmentSeq: 21, FirstStagedAt: now.Add(-30 * time.Second)}), true, rule, false},
		{"late events, closed, revise_after passed", pending(&messages.PendingRevision{Segments: 1, LastSegmentSeq: 21, FirstStagedAt: now.Add(-time.Minute)}), true, rule, true},
		{"staging not deleted yet", with(loaded(), func(st *messages.WindowState) {
			st.Next = &messages.PendingRevision{Segments: 1, LastSegmentSeq: 21, FirstStagedAt: now.Add(-time.Hour)}
		}), true, rule, false},
		{"not loaded (replayed)", with(pending(&messages.PendingRevision{Segments: 1, LastSegmentSeq: 21, FirstStagedAt: now.Add(-time.Hour)}), func(st *messages.WindowState) {
			st.Status = messages.StatusCompacted
		}), true, rule, false},
		{"not closed, early_every not passed", pending(&messages.PendingRevision{Segments: 1, StagedRows: 10, LastSegmentSeq: 21, FirstStagedAt: now.Add(-5 * time.Minute)}), false, rule, false},
		{"not closed, early_every passed", pending(&messages.PendingRevision{Segments: 1, StagedRows: 10, LastSegmentSeq: 21, FirstStagedAt: now.Add(-10 * time.Minute)}), false, rule, true},
		{"not closed, early_rows reached", pending(&messages.PendingRevision{Segments: 3, StagedRows: 5000, LastSegmentSeq: 23, FirstStagedAt: now}), false, rule, true},
		{"not closed, early triggers off", pending(&messages.PendingRevision{Segments: 3, StagedRows: 5000, LastSegmentSeq: 23, FirstStagedAt: now.Add(-time.Hour)}), false,
			windowstate.ReviseRule{Revise: true, After: time.Minute}, false},
		{"not closed, not revise", pending(&messages.PendingRevision{Segments: 3, StagedRows: 5000, LastSegmentSeq: 23, FirstStagedAt: now.Add(-time.Hour)}), false,
			windowstate.ReviseRule{After: time.Minute, EarlyEvery: time.Minute, EarlyRows: 1000}, false},
		{"rebuild still staging", pending(&messages.PendingRevision{Segments: 2, LastSegmentSeq: 22, FirstStagedAt: now.Add(-time.Hour), Rebuild: true, HoldUntil: now.Add(5 * time.Minute)}), true, rule, false},
		{"rebuild stopped half way (hold horizon passed)", pending(&messages.PendingRevision{Segments: 2, LastSegmentSeq: 22, FirstStagedAt: now.Add(-time.Hour), Rebuild: true, HoldUntil: now.Add(-time.Hour)}), true, rule, false},
		{"rebuild released", pending(&messages.PendingRevision{Segments: 2, LastSegmentSeq: 22, FirstStagedAt: now, Rebuild: true}), true, rule, true},
		{"rebuild released, not closed", pending(&messages.PendingRevision{Segments: 2, LastSegmentSeq: 22, FirstStagedAt: now, Rebuild: true}), false, rule, true},
		{"rebuild that staged nothing", pending(&messages.PendingRevision{Rebuild: true}), true, rule, false},
	} {
		if got := windowstate.RevisionDue(tc.st, now, tc.closed, tc.rule); got != tc.want {
			t.Errorf("%s: due = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStartRevision(t *testing.T) {
	late := &messages.PendingRevision{Segments: 2, StagedRows: 7, LastSegmentSeq: 31,
		MinEventTime: at(20 * time.Minute), MaxEventTime: at(40 * time.Minute), FirstStagedAt: now.Add(-2 * time.Minute)}
	// A window at revision 1 (its batches b0, b1) after revision 0 (earlier).
	revised := func(next *messages.PendingRevision) func() *messages.WindowState {
		return func() *messages.WindowState {
			return with(pending(nil), func(st *messages.WindowState) {
				n := *next
				st.Next, st.Revision, st.RevisionBase, st.Replays, st.MaxSourceSeq = &n, 1, 10, 1, 800
				st.PriorManifest, st.PriorAll, st.PriorRows = "batches/r0/manifest.json", true, 3
			})
		}
	}
	appendMode := windowstate.RevisionStart{Closed: true, Rule: rule, PolicyVersion: 4, Lease: lease, TraceParent: "00-rev-01", TraceID: "rev"}
	replace := appendMode
	replace.Replace = true
	// The prior batches: the manifest's batches (all: and its prior ones), and their rows.
	type prior struct {
		all  bool
		rows int64
	}
	revision := func(next *messages.PendingRevision, pr *prior) *messages.WindowState {
		st := &messages.WindowState{
			Policy: "clicks", PolicyVersion: 4, WindowStart: start, WindowEnd: end, Revision: 2, Status: messages.StatusSealed,
			Segments: next.Segments, StagedRows: next.StagedRows, LastSegmentSeq: next.LastSegmentSeq, MaxSourceSeq: 800,
			MinEventTime: next.MinEventTime, MaxEventTime: next.MaxEventTime, FirstStagedAt: next.FirstStagedAt,
			Watermark: end, SealedAt: now, Owner: "c1", LeaseUntil: now.Add(time.Minute),
			Replays: 1, RevisionBase: 20, TraceParent: "00-rev-01", TraceID: "rev",
		}
		if pr != nil {
			st.PriorManifest, st.PriorAll, st.PriorRows = "manifest.json", pr.all, pr.rows
		}
		return st
	}
	rebuild := &messages.PendingRevision{Segments: 4, StagedRows: 120, LastSegmentSeq: 40, FirstStagedAt: now, Rebuild: true}
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		r       windowstate.RevisionStart
		want    *messages.WindowState
		wantErr error
	}{
		{name: "append, merge: sealed, every earlier revision's batches prior", cur: revised(late), r: appendMode,
			want: revision(late, &prior{all: true, rows: 103})},
		{name: "replace: sealed, the previous revision's batches prior", cur: revised(late), r: replace,
			want: revision(late, &prior{rows: 100})},
		{name: "replace, a rebuild from the stream: its segments alone", cur: revised(rebuild), r: replace, want: revision(rebuild, nil)},
		{name: "append, a rebuild from the stream: every earlier revision's batches prior", cur: revised(rebuild), r: appendMode,
			want: revision(rebuild, &prior{all: true, rows: 103})},
		{name: "not due", cur: revised(&messages.PendingRevision{Segments: 1, LastSegmentSeq: 21, FirstStagedAt: now}), r: appendMode,
			wantErr: windowstate.ErrNoChange},
		{name: "nothing pending", cur: loaded, r: appendMode, wantErr: windowstate.ErrNoChange},
		{name: "sealed (started by another)", cur: func() *messages.WindowState { return sealed("c2", now) }, r: appendMode, wantErr: windowstate.ErrRefused},
		{name: "no state", cur: none, r: appendMode, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.StartRevision(cur, now, tc.r)
			}, tc.want, tc.wantErr)
		})
	}
}

func TestReplay(t *testing.T) {
	replayed := func(st *messages.WindowState) {
		st.Status, st.Replays, st.LoadedParts, st.LoadedRows, st.LoadedAt, st.LoadDuration, st.Error = messages.StatusCompacted, st.Replays+1, nil, 0, time.Time{}, 0, ""
	}
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		want    *messages.WindowState
		wantErr error
	}{
		{name: "loaded: compacted under the next replay, nothing loaded", cur: loaded, want: with(loaded(), replayed)},
		{name: "failed after its compaction: the same, error cleared", cur: failed, want: with(failed(), replayed)},
		{name: "failed before its compaction (no batches)", cur: func() *messages.WindowState {
			return with(sealed("c1", now), func(st *messages.WindowState) { st.Status, st.Error = messages.StatusFailed, "schema" })
		}, wantErr: windowstate.ErrRefused},
		{name: "compacted (its run under way)", cur: compacted, wantErr: windowstate.ErrRefused},
		{name: "open", cur: open, wantErr: windowstate.ErrRefused},
		{name: "no state", cur: none, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, windowstate.Replay, tc.want, tc.wantErr)
		})
	}
}

func TestHoldRebuild(t *testing.T) {
	hold := now.Add(10 * time.Minute)
	lateOnes := &messages.PendingRevision{Segments: 1, StagedRows: 5, LastSegmentSeq: 25, FirstStagedAt: now}
	withLate := func() *messages.WindowState {
		return with(loaded(), func(st *messages.WindowState) { n := *lateOnes; st.Next = &n })
	}
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		want    *messages.WindowState
		wantErr error
	}{
		{name: "loaded: a held rebuild pending", cur: loaded,
			want: with(loaded(), func(st *messages.WindowState) { st.Next = &messages.PendingRevision{Rebuild: true, HoldUntil: hold} })},
		{name: "loaded, late segments pending: they join the rebuild", cur: withLate,
			want: with(withLate(), func(st *messages.WindowState) { st.Next.Rebuild, st.Next.HoldUntil = true, hold })},
		{name: "sealed", cur: func() *messages.WindowState { return sealed("c1", now) }, wantErr: windowstate.ErrRefused},
		{name: "failed", cur: failed, wantErr: windowstate.ErrRefused},
		{name: "no state", cur: none, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.HoldRebuild(cur, hold)
			}, tc.want, tc.wantErr)
		})
	}
}

func TestRegisterRebuild(t *testing.T) {
	hold := now.Add(20 * time.Minute)
	reg := &messages.SegmentRegistered{Rows: 30, MaxSourceSeq: 700, MinEventTime: at(30 * time.Second), MaxEventTime: at(55 * time.Minute)}
	seg := windowstate.Segment{Reg: reg, Seq: 41, StagedAt: now.In(cest)}
	held := func() *messages.WindowState {
		return with(loaded(), func(st *messages.WindowState) { st.Next = &messages.PendingRevision{Rebuild: true, HoldUntil: now} })
	}
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		seg     windowstate.Segment
		want    *messages.WindowState
		wantErr error
	}{
		{name: "held: counted, hold renewed", cur: held, seg: seg, want: with(loaded(), func(st *messages.WindowState) {
			st.Next = &messages.PendingRevision{Segments: 1, StagedRows: 30, LastSegmentSeq: 41, MinEventTime: reg.MinEventTime,
				MaxEventTime: reg.MaxEventTime, FirstStagedAt: now, Rebuild: true, HoldUntil: hold}
		})},
		{name: "at the cutoff", cur: held, seg: windowstate.Segment{Reg: reg, Seq: 20, StagedAt: now}, wantErr: windowstate.ErrRefused},
		{name: "late segments pending, no rebuild", cur: func() *messages.WindowState {
			return with(loaded(), func(st *messages.WindowState) { st.Next = &messages.PendingRevision{Segments: 1, LastSegmentSeq: 25} })
		}, seg: seg, wantErr: windowstate.ErrRefused},
		{name: "nothing pending", cur: loaded, seg: seg, wantErr: windowstate.ErrRefused},
		{name: "sealed (its revision started)", cur: func() *messages.WindowState {
			return with(sealed("c1", now), func(st *messages.WindowState) { st.Next = &messages.PendingRevision{Rebuild: true} })
		}, seg: seg, wantErr: windowstate.ErrRefused},
		{name: "no state", cur: none, seg: seg, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, func(cur *messages.WindowState) (*messages.WindowState, error) {
				return windowstate.RegisterRebuild(cur, tc.seg, hold)
			}, tc.want, tc.wantErr)
		})
	}
}

func TestReleaseRebuild(t *testing.T) {
	staged := func() *messages.WindowState {
		return with(loaded(), func(st *messages.WindowState) {
			st.Next = &messages.PendingRevision{Segments: 2, StagedRows: 9, LastSegmentSeq: 42, FirstStagedAt: now, Rebuild: true, HoldUntil: now}
		})
	}
	for _, tc := range []struct {
		name    string
		cur     func() *messages.WindowState
		want    *messages.WindowState
		wantErr error
	}{
		{name: "staged: hold released", cur: staged, want: with(staged(), func(st *messages.WindowState) { st.Next.HoldUntil = time.Time{} })},
		{name: "nothing staged: dropped", cur: func() *messages.WindowState {
			return with(loaded(), func(st *messages.WindowState) { st.Next = &messages.PendingRevision{Rebuild: true, HoldUntil: now} })
		}, want: loaded()},
		{name: "nothing pending (made already)", cur: loaded, wantErr: windowstate.ErrRefused},
		{name: "no state", cur: none, wantErr: windowstate.ErrRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.cur, windowstate.ReleaseRebuild, tc.want, tc.wantErr)
		})
	}
}

// TestRefusedError: a refusal names the event and the status it met, is
// ErrRefused and never ErrNoChange, and a late segment's is also ErrLate.
func TestRefusedError(t *testing.T) {
	_, err := windowstate.Seal(loaded(), now, end, lease)
	var re *windowstate.RefusedError
	if !errors.As(err, &re) || re.From != messages.StatusLoaded || re.Event != "seal" {
		t.Fatalf("err = %#v, want a *RefusedError of seal from LOADED", err)
	}
	if got, want := err.Error(), "windowstate: seal refused (LOADED): the window is not open"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if errors.Is(err, windowstate.ErrNoChange) || errors.Is(err, windowstate.ErrLate) {
		t.Errorf("%v is ErrNoChange or ErrLate", err)
	}
	_, err = windowstate.Claim(nil, now, lease)
	if got, want := err.Error(), "windowstate: claim refused (no state): the window is not sealed"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = windowstate.Register(sealed("c1", now), windowstate.Window{}, windowstate.Segment{Reg: &messages.SegmentRegistered{}, Seq: 99}, false)
	if !errors.Is(err, windowstate.ErrLate) || !errors.Is(err, windowstate.ErrRefused) {
		t.Errorf("err = %v, want ErrLate and ErrRefused", err)
	}
}
