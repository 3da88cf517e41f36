package metrics

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// entry is a windows bucket update.
type entry struct {
	key   string
	value []byte
	op    jetstream.KeyValueOp
}

func (e entry) Bucket() string                  { return messages.BucketWindows }
func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return e.value }
func (e entry) Revision() uint64                { return 1 }
func (e entry) Created() time.Time              { return time.Time{} }
func (e entry) Delta() uint64                   { return 0 }
func (e entry) Operation() jetstream.KeyValueOp { return e.op }

func put(t *testing.T, st *messages.WindowState) entry {
	t.Helper()
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return entry{key: st.Key(), value: data, op: jetstream.KeyValuePut}
}

// TestAggregateSLA pins the window counts and the SLA rule: a window is
// past its SLA while it is not LOADED after end + deadline (FAILED ones
// included); a LOADED window missed it when it was loaded after that; a
// policy without a deadline has none; deleted keys, windows of unknown
// policies and values that are not window states are not counted.
func TestAggregateSLA(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return now.Add(time.Duration(n) * time.Hour) }
	win := func(policy string, end time.Time, status messages.WindowStatus, loadedAt time.Time, batches, loaded int) *messages.WindowState {
		st := &messages.WindowState{Policy: policy, WindowStart: end.Add(-time.Hour), WindowEnd: end, Status: status, LoadedAt: loadedAt}
		st.BatchCount = batches
		for i := range loaded {
			st.LoadedParts = st.LoadedParts.With(i)
		}
		return st
	}
	idx := map[string]windowEntry{}
	for _, st := range []*messages.WindowState{
		win("a", h(-5), messages.StatusLoaded, h(-4).Add(-time.Minute), 2, 2), // loaded in time
		win("a", h(-4), messages.StatusLoaded, h(-2), 1, 1),                   // loaded late: missed
		win("a", h(-3), messages.StatusFailed, time.Time{}, 1, 0),             // past due, failed
		win("a", h(-2), messages.StatusCompacted, time.Time{}, 3, 1),          // past due (h-1)
		win("a", h(-1), messages.StatusSealed, time.Time{}, 0, 0),             // due now: not past
		win("a", h(0), messages.StatusOpen, time.Time{}, 0, 0),
		win("b", h(-10), messages.StatusOpen, time.Time{}, 0, 0), // no SLA
		win("gone", h(-10), messages.StatusOpen, time.Time{}, 0, 0),
	} {
		apply(idx, put(t, st))
	}
	deleted := win("a", h(-6), messages.StatusOpen, time.Time{}, 0, 0)
	apply(idx, put(t, deleted))
	apply(idx, entry{key: deleted.Key(), op: jetstream.KeyValueDelete})
	apply(idx, entry{key: "a.junk", value: []byte("not json"), op: jetstream.KeyValuePut})

	c := &Cluster{idx: idx, synced: true}
	policies := []*windows.Policy{{Name: "a", SLA: windows.SLA{Deadline: windows.Duration(time.Hour)}}, {Name: "b"}}
	out := map[string]PolicySnapshot{"a": {}, "b": {}}
	if !c.aggregate(policies, now, out) {
		t.Fatal("aggregate: not synced")
	}
	a, b := out["a"], out["b"]
	wantA := map[messages.WindowStatus]int64{messages.StatusLoaded: 2, messages.StatusFailed: 1, messages.StatusCompacted: 1, messages.StatusSealed: 1, messages.StatusOpen: 1}
	for _, st := range Statuses {
		if a.Windows[st] != wantA[st] {
			t.Errorf("a %s: %d, want %d", st, a.Windows[st], wantA[st])
		}
	}
	if a.PastSLA != 2 || a.SLAMissed != 3 || a.Batches != 7 || a.BatchesLoaded != 4 {
		t.Errorf("a: past SLA %d (want 2), missed %d (want 3), batches %d (want 7), loaded %d (want 4)", a.PastSLA, a.SLAMissed, a.Batches, a.BatchesLoaded)
	}
	if b.Windows[messages.StatusOpen] != 1 || b.PastSLA != 0 || b.SLAMissed != 0 {
		t.Errorf("b: %+v, want 1 open window and no SLA", b)
	}
	if _, ok := out["gone"]; ok {
		t.Error("a window of an unknown policy was counted")
	}

	c.synced = false
	if c.aggregate(policies, now, map[string]PolicySnapshot{"a": {}}) {
		t.Error("aggregate before the watch synced reported counts")
	}
}
