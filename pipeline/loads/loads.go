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

// ManifestColumns returns the columns of a compacted window's batch files,
// from its manifest: the files were written under the policy version that
// compacted them, which may not be the version running now (a nullable
// column added since is then absent from the files).
func ManifestColumns(ctx context.Context, store objstore.Store, st *messages.WindowState) ([]messages.Column, error) {
	data, err := store.Get(ctx, st.Manifest)
	if err != nil {
		return nil, fmt.Errorf("window %s: manifest: %w", st.ID(), err)
	}
	var m messages.BatchManifest
	if err := messages.Decode(messages.TypeBatchManifest, data, &m); err != nil {
		return nil, fmt.Errorf("window %s: manifest %s: %w", st.ID(), st.Manifest, err)
	}
	return m.Columns, nil
}

// Publish publishes the load commands of a COMPACTED window that are
// not loaded yet: one per batch in mode append, one for the whole window in
// the modes replace and merge. Ids are deterministic (and carry the window's
// replay number), so publishing again is harmless. cols are the columns of
// the batch files (ManifestColumns); nil means the policy's.
func Publish(ctx context.Context, js jetstream.JetStream, p *windows.Policy, st *messages.WindowState, cols []messages.Column) error {
	hdr := map[string][]string{messages.HeaderPolicy: {p.Name}, messages.HeaderWindow: {st.ID()}}
	if cols == nil {
		cols = records.Columns(p)
	}
	if p.Load.Mode != windows.LoadAppend {
		// replace and merge: the whole window in one command, one transaction.
		if len(st.LoadedBatches) == len(st.Batches) {
			return nil
		}
		cmd := &messages.LoadCommand{
			BatchID: messages.WindowLoadID(p.Name, st.WindowStart, st.Revision), Policy: p.Name, PolicyVersion: st.PolicyVersion,
			WindowStart: st.WindowStart, WindowEnd: st.WindowEnd, Revision: st.Revision, Part: 0, Parts: len(st.Batches),
			Table: p.Load.Table, Mode: string(p.Load.Mode), Rows: st.Rows, Columns: cols, Manifest: st.Manifest,
			CreatedAt: st.CompactedAt, Batches: st.Batches, MergeKey: p.Load.MergeKey, PostLoad: p.Load.PostLoad, Replay: st.Replays,
		}
		if p.Load.Mode == windows.LoadMerge {
			cmd.TimeColumn = records.TimeColumn(p)
		}
		if _, err := natsx.Publish(ctx, js, messages.LoadSubject(p.Name), cmd, hdr); err != nil {
			return fmt.Errorf("window %s: %w", st.ID(), err)
		}
		return nil
	}
	for i, b := range st.Batches {
		if st.HasLoaded(b.BatchID) {
			continue
		}
		cmd := &messages.LoadCommand{
			BatchID: b.BatchID, Policy: p.Name, PolicyVersion: st.PolicyVersion, WindowStart: st.WindowStart, WindowEnd: st.WindowEnd,
			Revision: st.Revision, Part: i, Parts: len(st.Batches), Table: p.Load.Table, Mode: string(p.Load.Mode),
			Object: b.Object, Rows: b.Rows, Bytes: b.Bytes, SHA256: b.SHA256, Columns: cols, Manifest: st.Manifest,
			CreatedAt: st.CompactedAt, PostLoad: p.Load.PostLoad, Replay: st.Replays,
		}
		if _, err := natsx.Publish(ctx, js, messages.LoadSubject(p.Name), cmd, hdr); err != nil {
			return fmt.Errorf("window %s: %w", st.ID(), err)
		}
	}
	return nil
}
