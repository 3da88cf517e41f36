// Package loads turns a COMPACTED window into its load commands: one per
// batch file in load mode append, one for the whole window in the modes
// replace and merge. The compactor publishes them after a compaction and
// again from its sweep until the window is LOADED; `windrow replay`
// publishes them for a window it reopens. Ids are deterministic (batch id,
// or window and revision, with the replay number), so publishing again is
// harmless: the stream's duplicate window and the warehouse ledger drop
// repeats.
package loads

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// BatchPrefix is the object key prefix of a window run's batch files and
// manifest: batches/<policy>/date=<window start's date in loc>/window=<window
// id>/r<revision>. The compactor writes under it; the loader loads nothing
// outside it.
func BatchPrefix(policy string, loc *time.Location, windowStart time.Time, revision int) string {
	return fmt.Sprintf("batches/%s/date=%s/window=%s/r%d", policy, windowStart.In(loc).Format("2006-01-02"), messages.WindowID(windowStart), revision)
}

// ReadManifest reads the batch manifest at key: the list of a window run's
// batches, the earlier revisions' batches it was made with, and the
// columns of its files (written under the policy version that compacted
// them, which may not be the version running now: a nullable column added
// since is then absent from the files).
func ReadManifest(ctx context.Context, store objstore.Store, key string) (*messages.BatchManifest, error) {
	data, err := store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", key, err)
	}
	var m messages.BatchManifest
	if err := messages.Decode(messages.TypeBatchManifest, data, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", key, err)
	}
	return &m, nil
}

// Manifest reads the manifest of a compacted window run (st COMPACTED or
// LOADED, or FAILED after its compaction) and checks it is the run's: the
// same revision, as many batches as the state counts.
func Manifest(ctx context.Context, store objstore.Store, st *messages.WindowState) (*messages.BatchManifest, error) {
	if st.Manifest == "" {
		return nil, fmt.Errorf("window %s: no manifest (not compacted)", st.ID())
	}
	m, err := ReadManifest(ctx, store, st.Manifest)
	if err != nil {
		return nil, fmt.Errorf("window %s: %w", st.ID(), err)
	}
	if m.Revision != st.Revision || len(m.Batches) != st.BatchCount {
		return nil, fmt.Errorf("window %s: manifest %s is of revision %d with %d batches, the window is at revision %d with %d",
			st.ID(), st.Manifest, m.Revision, len(m.Batches), st.Revision, st.BatchCount)
	}
	return m, nil
}

// Prior returns the earlier revisions' batches a revision is made with
// (see WindowState.PriorManifest): none for revision 0 or a rebuild.
func Prior(ctx context.Context, store objstore.Store, st *messages.WindowState) ([]messages.BatchRef, error) {
	if st.PriorManifest == "" {
		return nil, nil
	}
	m, err := ReadManifest(ctx, store, st.PriorManifest)
	if err != nil {
		return nil, fmt.Errorf("window %s: prior batches: %w", st.ID(), err)
	}
	if !st.PriorAll {
		return m.Batches, nil
	}
	return append(append([]messages.BatchRef(nil), m.Prior...), m.Batches...), nil
}

// Publish publishes the load commands of a COMPACTED window that are
// not loaded yet: one per batch in mode append, one for the whole window in
// the modes replace and merge. Ids are deterministic (and carry the window's
// replay number), so publishing again is harmless. m is the run's manifest
// (Manifest): its batches, and the columns of the files (nil: the
// policy's).
func Publish(ctx context.Context, js jetstream.JetStream, p *windows.Policy, st *messages.WindowState, m *messages.BatchManifest) error {
	hdr := map[string][]string{messages.HeaderPolicy: {p.Name}, messages.HeaderWindow: {st.ID()}}
	cols := m.Columns
	if cols == nil {
		cols = records.Columns(p)
	}
	if p.Load.Mode != windows.LoadAppend {
		// replace and merge: the whole window in one command, one
		// transaction; the loader reads the batches from the manifest.
		if st.AllLoaded() {
			return nil
		}
		cmd := &messages.LoadCommand{
			BatchID: messages.WindowLoadID(p.Name, st.WindowStart, st.Revision), Policy: p.Name, PolicyVersion: st.PolicyVersion,
			WindowStart: st.WindowStart, WindowEnd: st.WindowEnd, Revision: st.Revision, Part: 0, Parts: st.BatchCount,
			Table: p.Load.Table, Mode: string(p.Load.Mode), Rows: st.Rows, Columns: cols, Manifest: st.Manifest,
			CreatedAt: st.CompactedAt, MergeKey: p.Load.MergeKey, PostLoad: p.Load.PostLoad, Replay: st.Replays,
		}
		if p.Load.Mode == windows.LoadMerge {
			cmd.TimeColumn = records.TimeColumn(p)
		}
		if _, err := natsx.Publish(ctx, js, messages.LoadSubject(p.Name), cmd, hdr); err != nil {
			return fmt.Errorf("window %s: %w", st.ID(), err)
		}
		return nil
	}
	for i, b := range m.Batches {
		if st.LoadedParts.Has(i) {
			continue
		}
		cmd := &messages.LoadCommand{
			BatchID: b.BatchID, Policy: p.Name, PolicyVersion: st.PolicyVersion, WindowStart: st.WindowStart, WindowEnd: st.WindowEnd,
			Revision: st.Revision, Part: i, Parts: len(m.Batches), Table: p.Load.Table, Mode: string(p.Load.Mode),
			Object: b.Object, Rows: b.Rows, Bytes: b.Bytes, SHA256: b.SHA256, Columns: cols, Manifest: st.Manifest,
			CreatedAt: st.CompactedAt, PostLoad: p.Load.PostLoad, Replay: st.Replays,
		}
		if _, err := natsx.Publish(ctx, js, messages.LoadSubject(p.Name), cmd, hdr); err != nil {
			return fmt.Errorf("window %s: %w", st.ID(), err)
		}
	}
	return nil
}
