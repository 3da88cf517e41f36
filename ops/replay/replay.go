// Package replay re-loads windows that were loaded before (`windrow
// replay`): from their compacted batch files, with the same batch ids, so
// that the warehouse ends up with exactly the rows of the original run —
// after rows were dropped or damaged, or a post-load step changed.
//
// A replay moves each chosen window from LOADED (or FAILED after
// compaction) back to COMPACTED, increments its replay number and publishes
// its load commands with that number. The loader does not take a replayed
// batch for a duplicate: in one transaction it deletes what the earlier
// load of the same batch id put in the table, inserts the batch again and
// rewrites its ledger row (modes replace and merge replace the window as
// usual). Results of an earlier run are ignored by the compactor. Running
// the same replay twice, or a redelivered replay command, loads each batch
// once.
//
// FromStream (stream.go) re-processes windows from the source stream
// instead: for windows whose batch files are gone, or to apply a changed
// policy to old data.
package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/loads"
	"github.com/windrow/windrow/pipeline/windowstate"
	"github.com/windrow/windrow/windows"
)

// Window is what a replay did with one window.
type Window struct {
	ID      string
	Status  messages.WindowStatus // before the replay
	Batches int
	Rows    int64
	Replay  int // the window's replay number after this replay
	// Revision (rebuild from the stream): the revision loaded before it;
	// Rows: the events staged for it.
	Revision int
	Skipped  string // why it was not replayed; empty when it was
}

// Config is what a replay needs.
type Config struct {
	JS     jetstream.JetStream
	States *statestore.Store
	Store  objstore.Store // to check that the batch files are there; optional
	Policy *windows.Policy
}

// ErrRetired: the replay's range reaches windows that are retired
// (window.retain): their states are deleted, and a window is never run again.
var ErrRetired = errors.New("windows retired")

// checkRetired refuses a range that starts before the policy's retirement
// horizon.
func checkRetired(ctx context.Context, cfg Config, from time.Time) error {
	kv, err := cfg.JS.KeyValue(ctx, messages.BucketWatermarks)
	if err != nil {
		return fmt.Errorf("replay: read the retirement horizon: %w", err)
	}
	r, ok, err := statestore.NewWatermarks(kv).Retirement(ctx, cfg.Policy.Name)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if ok && r.Retired(from) {
		return fmt.Errorf("replay: %w: the windows of policy %s starting before %s are retired (window.retain %s): their states are deleted and they are never run again; "+
			"their rows stay in the table and their batch files in the object store; choose --from at or after %s",
			ErrRetired, cfg.Policy.Name, r.Horizon.Format(time.RFC3339), cfg.Policy.Window.RetainFor(), r.Horizon.Format(time.RFC3339))
	}
	return nil
}

// Start replays the policy's windows that start in [from, to). With dryRun
// it only reports what it would do. A range reaching retired windows is
// refused (ErrRetired).
func Start(ctx context.Context, cfg Config, from, to time.Time, dryRun bool) ([]Window, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("replay: --from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if err := checkRetired(ctx, cfg, from); err != nil {
		return nil, err
	}
	p := cfg.Policy
	states, err := cfg.States.List(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	var out []Window
	for _, st := range states {
		if st.WindowStart.Before(from) || !st.WindowStart.Before(to) {
			continue
		}
		w := Window{ID: st.ID(), Status: st.Status, Batches: st.BatchCount, Rows: st.Rows, Replay: st.Replays}
		switch {
		case st.Status != messages.StatusLoaded && st.Status != messages.StatusFailed:
			w.Skipped = fmt.Sprintf("%s: the window's run is still under way", st.Status)
		case st.BatchCount == 0:
			w.Skipped = "no batches: it failed before compaction (its staged data is what needs fixing)"
		default:
			if cfg.Store != nil {
				m, err := loads.Manifest(ctx, cfg.Store, st)
				if err != nil {
					w.Skipped = fmt.Sprintf("%v (re-processing from the stream is `replay --from-stream`)", err)
					break
				}
				for _, b := range m.Batches {
					obj, err := cfg.Store.Open(ctx, b.Object)
					if err != nil {
						w.Skipped = fmt.Sprintf("batch file %s: %v (re-processing from the stream is not built)", b.Object, err)
						break
					}
					obj.Close()
				}
			}
		}
		if w.Skipped != "" || dryRun {
			if w.Skipped == "" {
				w.Replay++
			}
			out = append(out, w)
			continue
		}
		next, err := cfg.States.Update(ctx, st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
			return changed(windowstate.Replay(cur))
		})
		if errors.Is(err, errChanged) {
			w.Skipped = "its state changed meanwhile; run the replay again"
			out = append(out, w)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("replay window %s: %w", st.ID(), err)
		}
		w.Replay = next.Replays
		if cfg.Store == nil {
			// The window is COMPACTED: the compactor's sweep publishes its
			// commands.
			out = append(out, w)
			continue
		}
		m, err := loads.Manifest(ctx, cfg.Store, next)
		if err != nil {
			return append(out, w), fmt.Errorf("replay window %s: %w", st.ID(), err)
		}
		if err := loads.Publish(ctx, cfg.JS, p, next, m); err != nil {
			// The window is COMPACTED: the compactor's sweep publishes its
			// commands again.
			return append(out, w), fmt.Errorf("replay window %s: publish load commands (the compactor will retry): %w", st.ID(), err)
		}
		out = append(out, w)
	}
	return out, nil
}

var errChanged = errors.New("window state changed")

// changed passes on the state a windowstate event made, for
// statestore.Update: a refusal is errChanged (the window's state is not
// what the replay saw), no change is statestore.ErrNoChange.
func changed(next *messages.WindowState, err error) (*messages.WindowState, error) {
	switch {
	case errors.Is(err, windowstate.ErrRefused):
		return nil, errChanged
	case errors.Is(err, windowstate.ErrNoChange):
		return nil, statestore.ErrNoChange
	}
	return next, err
}

// Wait waits until every replayed window (Skipped empty) is LOADED again,
// calling progress after each check; it fails on a FAILED window.
func Wait(ctx context.Context, states *statestore.Store, policy string, ws []Window, progress func(loaded, total int)) error {
	return waitWindows(ctx, states, policy, ws, "loaded again", progress, func(st *messages.WindowState, w Window) (bool, error) {
		switch {
		case st.Replays != w.Replay:
			return false, fmt.Errorf("window %s: replayed again meanwhile (replay %d, this one %d)", w.ID, st.Replays, w.Replay)
		case st.Status == messages.StatusFailed:
			return false, fmt.Errorf("window %s: replay failed: %s", w.ID, st.Error)
		}
		return st.Status == messages.StatusLoaded, nil
	})
}

// waitWindows polls the windows not skipped until done says each is done.
func waitWindows(ctx context.Context, states *statestore.Store, policy string, ws []Window, what string,
	progress func(done, total int), done func(*messages.WindowState, Window) (bool, error)) error {
	total := 0
	for _, w := range ws {
		if w.Skipped == "" {
			total++
		}
	}
	for {
		n := 0
		for _, w := range ws {
			if w.Skipped != "" {
				continue
			}
			st, _, err := states.Get(ctx, policy, w.ID)
			if err != nil {
				return err
			}
			ok, err := done(st, w)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		if progress != nil {
			progress(n, total)
		}
		if n == total {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d windows %s: %w", n, total, what, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
