// Package staging reads what collectors staged: the segment registrations of
// a window (from the WINDROW_SEGMENTS stream) and the source sequences inside
// a segment file.
//
// Membership rule, shared by collectors and compactors: a segment belongs to
// a sealed window exactly when its registration's stream sequence is at or
// below the window's cutoff (WindowState.LastSegmentSeq, frozen by the seal).
package staging

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// SegmentKey is the object key of a staged segment.
func SegmentKey(policy, windowID, segmentID string) string {
	return "staging/" + policy + "/" + windowID + "/" + segmentID + ".parquet"
}

// WindowPrefix is the object key prefix of a window's staged segments.
func WindowPrefix(policy, windowID string) string { return "staging/" + policy + "/" + windowID }

// Registration is a segment registration and its stream sequence.
type Registration struct {
	Seq uint64
	*messages.SegmentRegistered
}

// ReadRegistrations returns the window's registrations with stream sequence
// in (after, cutoff], one per segment id, in stream order: after is 0 for a
// window's first run and the previous revision's cutoff for a revision.
func ReadRegistrations(ctx context.Context, js jetstream.JetStream, policy, windowID string, after, cutoff uint64) ([]Registration, error) {
	subject := messages.SegmentSubject(policy, windowID)
	stream, err := js.Stream(ctx, messages.StreamSegments)
	if err != nil {
		return nil, fmt.Errorf("read registrations: %w", err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, fmt.Errorf("read registrations: %w", err)
	}
	remaining := int(info.State.Subjects[subject])
	if remaining == 0 {
		return nil, nil
	}
	cons, err := js.OrderedConsumer(ctx, messages.StreamSegments, jetstream.OrderedConsumerConfig{InactiveThreshold: 10 * time.Second,
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("read registrations: %w", err)
	}
	seen := map[string]bool{}
	var out []Registration
	for {
		// Ask for exactly what is there, so Fetch returns without waiting out its timeout.
		batch, err := cons.Fetch(min(remaining, 1000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read registrations of %s: %w", subject, err)
		}
		n := 0
		done := false
		for m := range batch.Messages() {
			n++
			remaining--
			meta, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("read registrations: %w", err)
			}
			if meta.NumPending == 0 || meta.Sequence.Stream >= cutoff {
				done = true
			}
			if meta.Sequence.Stream > cutoff || meta.Sequence.Stream <= after {
				continue
			}
			var reg messages.SegmentRegistered
			if err := messages.Decode(m.Headers().Get(messages.HeaderType), m.Data(), &reg); err != nil {
				return nil, fmt.Errorf("registration %d: %w", meta.Sequence.Stream, err)
			}
			if seen[reg.SegmentID] {
				continue
			}
			seen[reg.SegmentID] = true
			out = append(out, Registration{Seq: meta.Sequence.Stream, SegmentRegistered: &reg})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read registrations of %s: %w", subject, err)
		}
		if done || n == 0 || remaining <= 0 {
			return out, nil
		}
	}
}

// ContainsSeq reports whether the Parquet file (a segment or a batch) holds
// a row with source sequence seq.
func ContainsSeq(ctx context.Context, store objstore.Store, layout *records.Layout, key string, seq uint64) (bool, error) {
	obj, err := store.Open(ctx, key)
	if err != nil {
		return false, err
	}
	defer obj.Close()
	f, err := layout.OpenFile(obj, obj.Size())
	if err != nil {
		return false, fmt.Errorf("%s: %w", key, err)
	}
	found := false
	_, err = layout.Merge([]*parquet.File{f}, func(rows []parquet.Row) error {
		for _, r := range rows {
			if layout.Seq(r) == seq {
				found = true
				return errFound
			}
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return true, nil
	}
	return found, err
}

var errFound = errors.New("found")

// AppendSourceSeqs appends the source sequence of every row of the Parquet
// file (a segment or a batch) at key to dst, in file order. It reads the
// _source_seq column only, so it costs one pass over that column, whatever
// the other columns hold.
func AppendSourceSeqs(ctx context.Context, store objstore.Store, layout *records.Layout, key string, dst []uint64) ([]uint64, error) {
	obj, err := store.Open(ctx, key)
	if err != nil {
		return dst, err
	}
	defer obj.Close()
	f, err := layout.OpenFile(obj, obj.Size())
	if err != nil {
		return dst, fmt.Errorf("%s: %w", key, err)
	}
	// The file's own column index: a file of an earlier, compatible schema
	// may order its columns differently.
	col, ok := f.Schema().Lookup(records.SeqColumn)
	if !ok {
		return dst, fmt.Errorf("%s: no %s column: %w", key, records.SeqColumn, records.ErrSchemaMismatch)
	}
	buf := make([]parquet.Value, 1024)
	for _, rg := range f.RowGroups() {
		if err := ctx.Err(); err != nil {
			return dst, fmt.Errorf("%s: %w", key, err)
		}
		dst, err = appendColumn(rg.ColumnChunks()[col.ColumnIndex].Pages(), buf, dst)
		if err != nil {
			return dst, fmt.Errorf("%s: read %s: %w", key, records.SeqColumn, err)
		}
	}
	return dst, nil
}

// appendColumn appends the int64 values of a column chunk's pages to dst
// as sequences, and closes pages.
func appendColumn(pages parquet.Pages, buf []parquet.Value, dst []uint64) ([]uint64, error) {
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				dst = append(dst, uint64(v.Int64()))
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(p)
				return dst, err
			}
		}
		parquet.Release(p)
	}
}

// Segment is what a collector (or a rebuild from the stream) stages for one
// window: its rows and their ranges.
type Segment struct {
	Window         windows.Window
	Rows           []parquet.Row
	MinSeq, MaxSeq uint64
	MinEvt, MaxEvt int64 // µs
	// WatermarkEvt (µs) is the newest event time the segment offers the
	// watermark (see messages.SegmentRegistered.WatermarkTime); 0: MaxEvt.
	WatermarkEvt int64
	// WatermarkSeq, when above MaxSeq, is the source sequence the ack floor
	// must reach before WatermarkEvt counts (messages.SegmentRegistered.WatermarkSeq).
	WatermarkSeq uint64
}

// Write sorts the segment's rows, writes them as a segment file of the
// window (atomically) and registers it on the window's subject of
// WINDROW_SEGMENTS. The ack's sequence is the registration sequence.
func Write(ctx context.Context, js jetstream.JetStream, store objstore.Store, layout *records.Layout, p *windows.Policy, seg *Segment, collector string) (*messages.SegmentRegistered, *jetstream.PubAck, error) {
	winID := seg.Window.ID()
	layout.SortRows(seg.Rows)
	segID := fmt.Sprintf("%016x-%s", seg.MinSeq, nuid.Next())
	key := SegmentKey(p.Name, winID, segID)
	w, err := store.Create(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	if err := layout.WriteFile(w, seg.Rows, records.FileOptions{Codec: records.Codec(windows.CompressSnappy)}); err != nil {
		w.Abort()
		return nil, nil, fmt.Errorf("write segment %s: %w", key, err)
	}
	size, sha, err := w.Commit()
	if err != nil {
		return nil, nil, err
	}
	reg := &messages.SegmentRegistered{
		Policy: p.Name, PolicyVersion: p.Version, WindowStart: seg.Window.Start, WindowEnd: seg.Window.End,
		SegmentID: segID, Object: key, Rows: int64(len(seg.Rows)), Bytes: size, SHA256: sha,
		MinSourceSeq: seg.MinSeq, MaxSourceSeq: seg.MaxSeq,
		MinEventTime: time.UnixMicro(seg.MinEvt).UTC(), MaxEventTime: time.UnixMicro(seg.MaxEvt).UTC(),
		WatermarkTime: time.UnixMicro(cmp.Or(seg.WatermarkEvt, seg.MaxEvt)).UTC(),
		WatermarkSeq:  gateAbove(seg.WatermarkSeq, seg.MaxSeq),
		Collector:     collector, CreatedAt: time.Now().UTC(),
	}
	ack, err := natsx.Publish(ctx, js, messages.SegmentSubject(p.Name, winID), reg, nil)
	if err != nil {
		return nil, nil, err
	}
	return reg, ack, nil
}

// gateAbove is gate when it is above maxSeq, else 0 (not recorded).
func gateAbove(gate, maxSeq uint64) uint64 {
	if gate > maxSeq {
		return gate
	}
	return 0
}
