package statestore_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
)

var day0 = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// open returns an OPEN state of policy's window starting day days after day0.
func open(policy string, day int) *messages.WindowState {
	start := day0.AddDate(0, 0, day)
	return &messages.WindowState{Policy: policy, WindowStart: start, WindowEnd: start.Add(24 * time.Hour), Status: messages.StatusOpen}
}

// put writes st with Update, which must find no state.
func put(t *testing.T, s *statestore.Store, st *messages.WindowState) {
	t.Helper()
	_, err := s.Update(context.Background(), st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		if cur != nil {
			t.Errorf("Update of new key %s got state %+v", st.Key(), cur)
		}
		c := *st
		return &c, nil
	})
	if err != nil {
		t.Fatalf("Update %s: %v", st.Key(), err)
	}
}

func TestUpdateCreatesWhenAbsent(t *testing.T) {
	ctx := context.Background()
	s := statestore.New(testkit.New(t).Topology.Windows)
	want := open("p", 0)
	want.StagedRows, want.Segments, want.LastSegmentSeq = 10, 1, 7

	before := time.Now().UTC()
	var sawNil bool
	got, err := s.Update(ctx, want.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		sawNil = cur == nil
		c := *want
		return &c, nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if !sawNil {
		t.Error("change did not get nil for a window without state")
	}
	if got.UpdatedAt.Before(before) {
		t.Errorf("UpdatedAt = %v, want at or after %v", got.UpdatedAt, before)
	}

	st, rev, err := s.Get(ctx, "p", want.ID())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if rev == 0 {
		t.Error("Get revision = 0")
	}
	if st.Status != messages.StatusOpen || st.StagedRows != 10 || st.Segments != 1 || st.LastSegmentSeq != 7 ||
		!st.WindowStart.Equal(want.WindowStart) || !st.UpdatedAt.Equal(got.UpdatedAt) {
		t.Fatalf("Get = %+v, want what Update wrote: %+v", st, got)
	}
}

func TestGetMissing(t *testing.T) {
	s := statestore.New(testkit.New(t).Topology.Windows)
	st, rev, err := s.Get(context.Background(), "p", "20261124T000000Z")
	if !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
	}
	if st != nil || rev != 0 {
		t.Fatalf("Get missing = %+v, %d; want nil, 0", st, rev)
	}
}

func TestGetCorruptState(t *testing.T) {
	ctx := context.Background()
	topo := testkit.New(t).Topology
	if _, err := topo.Windows.Put(ctx, "p.20261124T000000Z", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	_, _, err := statestore.New(topo.Windows).Get(ctx, "p", "20261124T000000Z")
	if err == nil || errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("Get of a corrupt state: err = %v, want a decode error", err)
	}
}

// TestUpdateConcurrentIncrements proves compare-and-set: with a plain
// read-then-put, concurrent increments would overwrite each other and the
// total would fall short of 400.
func TestUpdateConcurrentIncrements(t *testing.T) {
	ctx := context.Background()
	s := statestore.New(testkit.New(t).Topology.Windows)
	const goroutines, updates = 8, 50
	key := open("p", 0).Key()
	var calls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*updates)
	for range goroutines {
		wg.Go(func() {
			for range updates {
				_, err := s.Update(ctx, key, func(cur *messages.WindowState) (*messages.WindowState, error) {
					calls.Add(1)
					if cur == nil {
						cur = open("p", 0)
					}
					cur.StagedRows++
					cur.Segments++
					return cur, nil
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Update: %v", err)
	}
	st, _, err := s.Get(ctx, "p", open("p", 0).ID())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if st.StagedRows != goroutines*updates || st.Segments != goroutines*updates {
		t.Fatalf("after %d concurrent increments: staged rows %d, segments %d (change ran %d times)",
			goroutines*updates, st.StagedRows, st.Segments, calls.Load())
	}
	t.Logf("%d increments took %d change calls", goroutines*updates, calls.Load())
}

// TestUpdateGivesUpWhenContextEnds: an Update that loses every
// compare-and-set (another writer changes the key each time) is retried
// until its context ends, and then fails with the context's error (from
// the pause between attempts: "gave up after N conflicting writes", or
// from the read or write the deadline cut short).
func TestUpdateGivesUpWhenContextEnds(t *testing.T) {
	s := statestore.New(testkit.New(t).Topology.Windows)
	base := open("p", 0)
	put(t, s, base)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	calls := 0
	_, err := s.Update(ctx, base.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		calls++
		// Another writer gets in between the read and the write.
		e, err := s.KV().Get(context.Background(), base.Key())
		if err != nil {
			return nil, err
		}
		if _, err := s.KV().Put(context.Background(), base.Key(), e.Value()); err != nil {
			return nil, err
		}
		cur.StagedRows++
		return cur, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Update losing every write: err = %v, want the context's deadline", err)
	}
	if calls < 2 {
		t.Fatalf("change ran %d times, want retries until the deadline", calls)
	}
	t.Log(err)
}

func TestUpdateNoChange(t *testing.T) {
	ctx := context.Background()
	s := statestore.New(testkit.New(t).Topology.Windows)
	base := open("p", 0)
	base.StagedRows = 5
	put(t, s, base)
	before, rev, err := s.Get(ctx, "p", base.ID())
	if err != nil {
		t.Fatal(err)
	}

	for _, noChange := range []error{statestore.ErrNoChange, errors.Join(errors.New("window is sealed"), statestore.ErrNoChange)} {
		got, err := s.Update(ctx, base.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
			cur.StagedRows = 999 // a change to the copy must not leak out
			return nil, noChange
		})
		if err != nil {
			t.Fatalf("Update returning %v: err = %v, want nil", noChange, err)
		}
		if got == nil || got.StagedRows != 5 || !got.UpdatedAt.Equal(before.UpdatedAt) {
			t.Fatalf("Update returning %v = %+v, want the current state (staged rows 5)", noChange, got)
		}
	}
	after, rev2, err := s.Get(ctx, "p", base.ID())
	if err != nil {
		t.Fatal(err)
	}
	if rev2 != rev || after.StagedRows != 5 {
		t.Fatalf("after ErrNoChange: revision %d → %d, staged rows %d; want nothing written", rev, rev2, after.StagedRows)
	}

	// No state and no change: nothing is written and nothing returned.
	missing := open("p", 1).Key()
	got, err := s.Update(ctx, missing, func(*messages.WindowState) (*messages.WindowState, error) { return nil, statestore.ErrNoChange })
	if err != nil || got != nil {
		t.Fatalf("Update of a missing key with ErrNoChange = %+v, %v; want nil, nil", got, err)
	}
	if _, _, err := s.Get(ctx, "p", open("p", 1).ID()); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("Get after ErrNoChange on a missing key: err = %v, want ErrNotFound", err)
	}
}

func TestUpdateRejectsAndWritesNothing(t *testing.T) {
	errChange := errors.New("change failed")
	tests := []struct {
		name    string
		change  func(cur *messages.WindowState) (*messages.WindowState, error)
		wantErr error
	}{
		{"unknown status", func(cur *messages.WindowState) (*messages.WindowState, error) {
			cur.Status = "DONE"
			return cur, nil
		}, messages.ErrInvalid},
		{"empty policy", func(cur *messages.WindowState) (*messages.WindowState, error) {
			cur.Policy = ""
			return cur, nil
		}, messages.ErrInvalid},
		{"empty window", func(cur *messages.WindowState) (*messages.WindowState, error) {
			cur.WindowEnd = cur.WindowStart
			return cur, nil
		}, messages.ErrInvalid},
		{"compacted rows do not add up", func(cur *messages.WindowState) (*messages.WindowState, error) {
			cur.Status = messages.StatusCompacted
			cur.Rows, cur.Duplicates = 4, 0 // staged rows are 5
			return cur, nil
		}, messages.ErrInvalid},
		{"change error", func(*messages.WindowState) (*messages.WindowState, error) {
			return nil, errChange
		}, errChange},
	}
	ctx := context.Background()
	s := statestore.New(testkit.New(t).Topology.Windows)
	base := open("p", 0)
	base.StagedRows = 5
	put(t, s, base)
	_, rev, err := s.Get(ctx, "p", base.ID())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Update(ctx, base.Key(), tt.change)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Update: err = %v, want %v", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("Update returned state %+v with an error", got)
			}
			st, rev2, err := s.Get(ctx, "p", base.ID())
			if err != nil {
				t.Fatal(err)
			}
			if rev2 != rev || st.Status != messages.StatusOpen || st.Policy != "p" {
				t.Fatalf("state after a rejected update: revision %d → %d, %+v; want unchanged", rev, rev2, st)
			}
		})
	}

	// An invalid first state is not created either.
	newKey := open("p", 3).Key()
	_, err = s.Update(ctx, newKey, func(*messages.WindowState) (*messages.WindowState, error) {
		st := open("p", 3)
		st.Status = ""
		return st, nil
	})
	if !errors.Is(err, messages.ErrInvalid) {
		t.Fatalf("Update creating an invalid state: err = %v, want messages.ErrInvalid", err)
	}
	if _, _, err := s.Get(ctx, "p", open("p", 3).ID()); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("Get after a rejected create: err = %v, want ErrNotFound", err)
	}
}

func TestUpdateCanceledContext(t *testing.T) {
	s := statestore.New(testkit.New(t).Topology.Windows)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Update(ctx, open("p", 0).Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		return open("p", 0), nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a canceled context: err = %v, want context.Canceled", err)
	}
}

func ids(states []*messages.WindowState) []string {
	var out []string
	for _, st := range states {
		out = append(out, st.Key())
	}
	slices.Sort(out)
	return out
}

func TestList(t *testing.T) {
	ctx := context.Background()
	topo := testkit.New(t).Topology
	s := statestore.New(topo.Windows)

	if got, err := s.List(ctx, ""); err != nil || len(got) != 0 {
		t.Fatalf("List of an empty bucket = %v, %v; want none", ids(got), err)
	}

	for _, st := range []*messages.WindowState{open("p1", 0), open("p1", 1), open("p2", 0), open("p10", 0)} {
		put(t, s, st)
	}
	tests := []struct {
		policy string
		want   []string
	}{
		{"p1", []string{open("p1", 0).Key(), open("p1", 1).Key()}},
		{"p2", []string{open("p2", 0).Key()}},
		{"p10", []string{open("p10", 0).Key()}},
		{"p", nil},
		{"", []string{open("p1", 0).Key(), open("p1", 1).Key(), open("p10", 0).Key(), open("p2", 0).Key()}},
	}
	for _, tt := range tests {
		got, err := s.List(ctx, tt.policy)
		if err != nil {
			t.Fatalf("List(%q): %v", tt.policy, err)
		}
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("List(%q) = %v, want %v", tt.policy, ids(got), tt.want)
		}
		for _, st := range got {
			if tt.policy != "" && st.Policy != tt.policy {
				t.Errorf("List(%q) returned a window of policy %q", tt.policy, st.Policy)
			}
		}
	}

	// A deleted window is not listed.
	if err := topo.Windows.Delete(ctx, open("p1", 1).Key()); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "p1")
	if err != nil {
		t.Fatalf("List after delete: %v", err)
	}
	if want := []string{open("p1", 0).Key()}; !slices.Equal(ids(got), want) {
		t.Fatalf("List(p1) after delete = %v, want %v", ids(got), want)
	}
}

func TestWatermarks(t *testing.T) {
	ctx := context.Background()
	topo := testkit.New(t).Topology
	w := statestore.NewWatermarks(topo.Watermarks)

	if wm, ok, err := w.Get(ctx, "p"); err != nil || ok {
		t.Fatalf("Get of a missing watermark = %+v, %v, %v; want ok false, no error", wm, ok, err)
	}

	before := time.Now().UTC()
	first := messages.Watermark{Policy: "p", Watermark: day0.Add(90 * time.Minute)}
	if err := w.Put(ctx, first); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, ok, err := w.Get(ctx, "p")
	if err != nil || !ok {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if got.Policy != "p" || !got.Watermark.Equal(first.Watermark) || got.Idle {
		t.Fatalf("Get = %+v, want %+v", got, first)
	}
	if got.UpdatedAt.Before(before) {
		t.Errorf("UpdatedAt = %v, want set by Put (at or after %v)", got.UpdatedAt, before)
	}

	second := messages.Watermark{Policy: "p", Watermark: day0.Add(3 * time.Hour), Idle: true}
	if err := w.Put(ctx, second); err != nil {
		t.Fatalf("second Put: %v", err)
	}
	if got, ok, err := w.Get(ctx, "p"); err != nil || !ok || !got.Watermark.Equal(second.Watermark) || !got.Idle {
		t.Fatalf("Get after second Put = %+v, %v, %v; want %+v", got, ok, err, second)
	}
	// Policies are independent.
	if _, ok, err := w.Get(ctx, "other"); err != nil || ok {
		t.Fatalf("Get of another policy = %v, %v; want ok false", ok, err)
	}

	if _, err := topo.Watermarks.Put(ctx, "bad", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := w.Get(ctx, "bad"); err == nil || ok {
		t.Fatalf("Get of a corrupt watermark = %v, %v; want a decode error", ok, err)
	}
}

// TestDeletedWindowIsNeverCreatedAgain: a window whose state was deleted
// (retired, window.retain) is not created again by a late registration:
// its events would be loaded a second time (append) or replace the table's
// rows with a handful (replace). Update reports ErrDeleted instead.
func TestDeletedWindowIsNeverCreatedAgain(t *testing.T) {
	ctx := context.Background()
	topo := testkit.New(t).Topology
	s := statestore.New(topo.Windows)
	st := open("p", 0)
	put(t, s, st)
	deleted, err := s.Delete(ctx, st.Key(), func(cur *messages.WindowState) error { return nil })
	if err != nil || deleted == nil || deleted.Key() != st.Key() {
		t.Fatalf("Delete = %+v, %v; want the state", deleted, err)
	}
	if _, _, err := s.Get(ctx, "p", st.ID()); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("Get after delete: err = %v, want ErrNotFound", err)
	}
	_, err = s.Update(ctx, st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		if cur != nil {
			t.Errorf("change saw %+v, want no state", cur)
		}
		c := *st
		return &c, nil
	})
	if !errors.Is(err, statestore.ErrDeleted) {
		t.Fatalf("Update after delete: err = %v, want ErrDeleted", err)
	}
	if _, _, err := s.Get(ctx, "p", st.ID()); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("Get after the refused create: err = %v, want ErrNotFound", err)
	}
	// Another window of the policy is created as usual.
	put(t, s, open("p", 1))
}

// TestRetirementOnlyMovesForward: the horizon is written by compare-and-set
// and refused when it would move back.
func TestRetirementOnlyMovesForward(t *testing.T) {
	ctx := context.Background()
	w := statestore.NewWatermarks(testkit.New(t).Topology.Watermarks)
	if _, ok, err := w.Retirement(ctx, "p"); err != nil || ok {
		t.Fatalf("Retirement before any = %v, %v; want none", ok, err)
	}
	h := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	advance := func(to time.Time, rows int64) (messages.Retirement, error) {
		return w.AdvanceRetirement(ctx, "p", func(cur messages.Retirement) (messages.Retirement, error) {
			cur.Horizon, cur.Last = to, to.Add(-time.Hour)
			cur.Windows++
			cur.Rows += rows
			return cur, nil
		})
	}
	if _, err := advance(h, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := advance(h.Add(time.Hour), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := advance(h, 1); err == nil {
		t.Fatal("moving the horizon back was accepted")
	}
	got, ok, err := w.Retirement(ctx, "p")
	if err != nil || !ok || !got.Horizon.Equal(h.Add(time.Hour)) || got.Rows != 15 || got.Windows != 2 {
		t.Fatalf("Retirement = %+v, %v, %v; want horizon %s, 15 rows of 2 windows", got, ok, err, h.Add(time.Hour))
	}
	// The watermark of the policy is a key of its own.
	if _, ok, err := w.Get(ctx, "p"); err != nil || ok {
		t.Fatalf("watermark Get = %v, %v; want none", ok, err)
	}
}

// TestPurgeRetiredRemovesOldMarkers: the delete markers of retired windows
// are purged once older than the threshold, the policy's live states and
// other policies' markers stay, and the bucket then holds no message of
// the purged keys.
func TestPurgeRetiredRemovesOldMarkers(t *testing.T) {
	ctx := context.Background()
	env := testkit.New(t)
	s := statestore.New(env.Topology.Windows)
	for day := range 5 {
		put(t, s, open("p", day))
		put(t, s, open("q", day))
	}
	for day := range 3 { // p's first three days and q's first retire
		for _, st := range []*messages.WindowState{open("p", day), open("q", 0)} {
			if _, err := s.Delete(ctx, st.Key(), func(*messages.WindowState) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	subjectMsgs := func(key string) uint64 {
		t.Helper()
		stream, err := env.JS.Stream(ctx, "KV_"+messages.BucketWindows)
		if err != nil {
			t.Fatal(err)
		}
		subject := "$KV." + messages.BucketWindows + "." + key
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[subject]
	}
	if n, err := s.PurgeRetired(ctx, env.JS, "p", time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("PurgeRetired of fresh markers = %d, %v; want 0 (too young)", n, err)
	}
	if got := subjectMsgs(open("p", 0).Key()); got == 0 {
		t.Fatal("no message for a young marker's key, want the marker")
	}
	n, err := s.PurgeRetired(ctx, env.JS, "p", time.Now().Add(time.Second))
	if err != nil || n != 3 {
		t.Fatalf("PurgeRetired = %d, %v; want 3 markers", n, err)
	}
	for day := range 3 {
		if got := subjectMsgs(open("p", day).Key()); got != 0 {
			t.Errorf("day %d: %d messages left for a purged key, want 0", day, got)
		}
	}
	for day := 3; day < 5; day++ {
		if _, _, err := s.Get(ctx, "p", open("p", day).ID()); err != nil {
			t.Errorf("live state of day %d: %v", day, err)
		}
	}
	if got := subjectMsgs(open("q", 0).Key()); got == 0 {
		t.Error("another policy's marker was purged")
	}
}
