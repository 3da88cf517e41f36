package compactor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/windowstate"
)

// The sweep finds due work without listing every state: a KV watcher on
// the policy's keys keeps an index of each window's status and the few
// facts that say whether it can need work (windowIndex), from the
// bucket's current values and then its updates. A sweep reads the full
// state only of the windows that can: not LOADED; LOADED with its staging
// not deleted yet or a next revision pending; a session pane whose next
// pane is missing; and, for retirement, the oldest LOADED windows that
// the index says are retirable. With 10,000 windows of which three are
// open, a sweep reads three states, not 10,000.

// indexEntry is what the index keeps of a window state.
type indexEntry struct {
	start, end     time.Time
	loadedAt       time.Time
	status         messages.WindowStatus
	stagingDeleted bool
	pending        bool // a next revision is pending (or a rebuild held)
	retiring       bool
	carry          bool // carried sessions into the next pane
}

// entryFields are the fields of a WindowState the index reads.
type entryFields struct {
	WindowStart    time.Time             `json:"window_start"`
	WindowEnd      time.Time             `json:"window_end"`
	Status         messages.WindowStatus `json:"status"`
	StagingDeleted bool                  `json:"staging_deleted"`
	Retiring       bool                  `json:"retiring"`
	CarryRows      int64                 `json:"carry_rows"`
	LoadedAt       time.Time             `json:"loaded_at"`
	Next           json.RawMessage       `json:"next_revision"`
}

// windowIndex is the index of one policy's window states.
type windowIndex struct {
	mu      sync.Mutex
	entries map[int64]indexEntry // by window start, Unix µs
	synced  chan struct{}        // closed once the current values are in
}

// state is a WindowState with the index's facts, for windowstate's rules.
func (e indexEntry) state(policy string) *messages.WindowState {
	st := &messages.WindowState{Policy: policy, WindowStart: e.start, WindowEnd: e.end, Status: e.status,
		StagingDeleted: e.stagingDeleted, LoadedAt: e.loadedAt, Retiring: e.retiring}
	if e.pending {
		st.Next = &messages.PendingRevision{}
	}
	return st
}

// startIndex starts the watcher of the policy's window keys and waits
// until the index holds the bucket's current values. The watcher stops
// with ctx; if its update channel closes otherwise, Run fails (fatal) and
// is restarted.
func (s *Service) startIndex(ctx context.Context) error {
	p := s.cfg.Policy
	w, err := natsx.Watch(ctx, s.cfg.States.KV(), []string{messages.WindowKeyFilter(p.Name)})
	if err != nil {
		return fmt.Errorf("compactor %s: watch window states: %w", p.Name, err)
	}
	ix := &windowIndex{entries: map[int64]indexEntry{}, synced: make(chan struct{})}
	s.idx = ix
	go func() {
		defer func() {
			_ = w.Stop()
			go func() { // the watcher's handler blocks while its channel is full
				for range w.Updates() {
				}
			}()
		}()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case <-ctx.Done():
				return
			case e, ok = <-w.Updates():
			}
			if !ok {
				if ctx.Err() == nil {
					select {
					case s.fatal <- errors.New("window state watch closed"):
					default:
					}
				}
				return
			}
			if e == nil {
				close(ix.synced)
				continue
			}
			ix.apply(e, s.log.Warn)
		}
	}()
	select {
	case <-ix.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// apply records one bucket update.
func (ix *windowIndex) apply(e jetstream.KeyValueEntry, warn func(string, ...any)) {
	_, id, ok := messages.SplitWindowKey(e.Key())
	if !ok {
		return
	}
	start, err := messages.ParseWindowID(id)
	if err != nil {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(ix.entries, start.UnixMicro())
		return
	}
	var f entryFields
	if err := json.Unmarshal(e.Value(), &f); err != nil {
		// Kept as a candidate: the sweep reads it and reports the error.
		warn("index: undecodable window state", "key", e.Key(), "err", err)
		ix.entries[start.UnixMicro()] = indexEntry{start: start, end: start}
		return
	}
	ix.entries[start.UnixMicro()] = indexEntry{
		start: f.WindowStart.UTC(), end: f.WindowEnd.UTC(), loadedAt: f.LoadedAt, status: f.Status,
		stagingDeleted: f.StagingDeleted, retiring: f.Retiring, carry: f.CarryRows > 0,
		pending: len(f.Next) > 0 && string(f.Next) != "null",
	}
}

// sweepPlan is what a sweep looks at.
type sweepPlan struct {
	work []time.Time // windows that can need work, in window order
	// retire: the oldest windows the index finds retirable, in window
	// order, up to the first that is not (blocked, zero when none); and
	// windows under the horizon retirable on their own.
	retire  []time.Time
	blocked time.Time
	// pane reports the status of the window starting at t, if it has a state.
	pane func(t time.Time) (messages.WindowStatus, bool)
}

// nextLoaded reports whether the window starting at t is LOADED.
func (pl sweepPlan) nextLoaded(t time.Time) bool {
	status, ok := pl.pane(t)
	return ok && status == messages.StatusLoaded
}

// plan reads the index: which windows a sweep reads in full.
func (ix *windowIndex) plan(policy string, rec messages.Retirement, rule windowstate.RetireRule) sweepPlan {
	ix.mu.Lock()
	entries := make(map[int64]indexEntry, len(ix.entries))
	for k, e := range ix.entries {
		entries[k] = e
	}
	ix.mu.Unlock()
	var pl sweepPlan
	pl.pane = func(t time.Time) (messages.WindowStatus, bool) {
		e, ok := entries[t.UnixMicro()]
		return e.status, ok
	}
	var retirable []time.Time
	for k, e := range entries {
		_, nextExists := entries[e.end.UnixMicro()]
		switch {
		case e.retiring && rec.Retired(e.start),
			e.status != messages.StatusLoaded,
			!e.stagingDeleted || e.pending,
			e.carry && !nextExists:
			pl.work = append(pl.work, time.UnixMicro(k).UTC())
		}
		ok := windowstate.Retirable(e.state(policy), rule) == nil && (!e.carry || pl.nextLoaded(e.end))
		switch {
		case rec.Retired(e.start):
			if ok && !e.retiring {
				retirable = append(retirable, e.start)
			}
		case ok:
			retirable = append(retirable, e.start)
		case pl.blocked.IsZero() || e.start.Before(pl.blocked):
			pl.blocked = e.start
		}
	}
	for _, t := range retirable {
		if pl.blocked.IsZero() || t.Before(pl.blocked) {
			pl.retire = append(pl.retire, t)
		}
	}
	slices.SortFunc(pl.work, time.Time.Compare)
	slices.SortFunc(pl.retire, time.Time.Compare)
	if len(pl.retire) > maxRetirePerSweep {
		// The rest wait for the next sweep: the horizon stops at the first.
		pl.blocked = pl.retire[maxRetirePerSweep]
		pl.retire = pl.retire[:maxRetirePerSweep]
	}
	return pl
}
