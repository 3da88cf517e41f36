package collector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/loads"
	"github.com/windrow/windrow/pipeline/staging"
	"github.com/windrow/windrow/windows"
)

// deadLetter publishes the original event with its reason to the DLQ. The
// source is acked at the next flush, after the DLQ stored it.
//
// Each dead letter has a subject of its own, named by the source sequence
// (and the window, where an event can be dead-lettered for several), and is
// published only if that subject is empty: an event delivered again, however
// long after (a recreated consumer re-delivers the whole source stream), is
// dead-lettered once, not only within the DLQ stream's duplicate window.
func (s *Service) deadLetter(b *batch, m jetstream.Msg, seq uint64, reason, detail, windowID string) {
	p := s.cfg.Policy
	subjectWindow := ""
	if s.hop != nil {
		// Hopping: an event can be late for several windows, one record each.
		subjectWindow = windowID
	}
	out := nats.NewMsg(messages.DeadLetterSubject(p.Name, seq, subjectWindow))
	out.Data = m.Data()
	for k, v := range m.Headers() {
		if k != messages.HeaderMsgID && k != "Nats-Expected-Stream" {
			out.Header[k] = v
		}
	}
	id := "dlq-" + p.Name + "-" + strconv.FormatUint(seq, 10)
	if subjectWindow != "" {
		id += "-" + subjectWindow
	}
	out.Header.Set(messages.HeaderMsgID, id)
	out.Header.Set(messages.HeaderPolicy, p.Name)
	out.Header.Set(messages.HeaderReason, reason)
	out.Header.Set(messages.HeaderDetail, detail)
	out.Header.Set(messages.HeaderSourceStream, p.Source.Stream)
	out.Header.Set(messages.HeaderSourceSubject, m.Subject())
	out.Header.Set(messages.HeaderSourceSeq, strconv.FormatUint(seq, 10))
	if windowID != "" {
		out.Header.Set(messages.HeaderWindow, windowID)
	}
	fitPayload(out, s.cfg.JS.Conn().MaxPayload())
	s.publishAsync(b, out)
	s.stats.dlq.Add(1)
}

// fitPayload cuts a dead letter's payload so that payload and headers fit
// the server's maximum message size: an event just under the limit must not
// become a dead letter over it (the publish would fail and the event would
// stop the collector on every redelivery). The original size and the cut are
// recorded in headers; the source stream still holds the whole event.
func fitPayload(m *nats.Msg, maxPayload int64) {
	if maxPayload <= 0 {
		return
	}
	hdr := 16 // "NATS/1.0\r\n" and the final "\r\n", rounded up
	for k, vs := range m.Header {
		for _, v := range vs {
			hdr += len(k) + len(v) + 4
		}
	}
	const extra = 128 // the two headers added below
	budget := int(maxPayload) - hdr - extra
	if len(m.Data) <= budget {
		return
	}
	original := len(m.Data)
	m.Data = m.Data[:max(budget, 0)]
	m.Header.Set(messages.HeaderOriginalSize, strconv.Itoa(original))
	m.Header.Set(messages.HeaderTruncated, "true")
}

// lateOrStaged handles an event of a closed window (sealed, or behind the
// watermark). It may be an event that was staged and registered before a
// crash lost its ack: if a segment inside the window's cutoff holds its
// sequence, it is already part of the window and is only acked. Otherwise it
// is late.
//
// The server's delivery count is not enough to tell: a NATS server that
// crashes can lose the last moments of consumer state, and an acked message
// then comes back as a first delivery. So any event at or below the highest
// source sequence the window ever registered is checked against the staged
// data; events above it (every genuinely late event published after the
// window's data) are late without reading anything.
func (s *Service) lateOrStaged(ctx context.Context, b *batch, m jetstream.Msg, seq, delivered uint64, evt int64, win windows.Window) error {
	cw, err := s.closedWindow(ctx, win)
	if err != nil {
		return fmt.Errorf("check event %d of closed window %s: %w", seq, win.ID(), err)
	}
	if cw.mayHold(seq, delivered) {
		staged, err := s.wasStaged(ctx, win, seq)
		if err != nil {
			return fmt.Errorf("check redelivered event %d: %w", seq, err)
		}
		if staged {
			s.stats.redelivered.Add(1)
			return nil
		}
	}
	s.late(b, m, seq, evt, win, "")
	return nil
}

// closedWindow is what a collector needs to know of a closed window's
// staging to judge an event of it; frozen once the window is sealed.
type closedWindow struct {
	segments     int64  // registered segments; 0: nothing of the window was ever staged
	maxSourceSeq uint64 // WindowState.MaxSourceSeq
}

// mayHold reports whether the window's staged data may hold source sequence
// seq, delivered for the given time.
func (c closedWindow) mayHold(seq, delivered uint64) bool {
	switch {
	case c.segments == 0:
		return false
	case c.maxSourceSeq == 0:
		return true // state written before MaxSourceSeq was kept: cannot rule it out
	default:
		return seq <= c.maxSourceSeq || delivered > 1
	}
}

// closedWindow reads the window's state; once the window is sealed its
// staging facts are frozen and kept in memory.
func (s *Service) closedWindow(ctx context.Context, win windows.Window) (closedWindow, error) {
	start := win.Start.UnixMicro()
	s.mu.Lock()
	cw, ok := s.closed[start]
	s.mu.Unlock()
	if ok {
		return cw, nil
	}
	p := s.cfg.Policy
	st, _, err := s.cfg.States.Get(ctx, p.Name, win.ID())
	if errors.Is(err, statestore.ErrNotFound) {
		// Nothing registered yet. Not cached: the window may still be open
		// to other collectors (behind the watermark but not sealed).
		return closedWindow{}, nil
	}
	if err != nil {
		return closedWindow{}, err
	}
	cw = closedWindow{segments: st.Segments, maxSourceSeq: st.MaxSourceSeq}
	if st.Status != messages.StatusOpen {
		s.mu.Lock()
		s.closed[start] = cw
		s.mu.Unlock()
	}
	return cw, nil
}

// wasStaged reports whether a segment inside the window's cutoff, or a batch
// made from them (or an earlier revision's batch the window was made with),
// holds source sequence seq.
//
// Lookup: each closed window's staged sequences are read once into an exact
// set (stagedIndex: a bitmap or sorted runs; registrations' sequence ranges
// alone cannot answer, as they hold other windows' events in their gaps),
// cached per window (stagedCache, bounded) under the key of the state it was
// read from (revision, registrations (base, cutoff], the batch objects). A
// redelivered event then costs one O(1)/O(log runs) lookup and no object
// read; re-draining a window of n events in f files reads each file once
// instead of n times. "Staged" is answered from the set while its key was
// confirmed within stagedRecheck (its data stay the window's whatever
// happens to the window later); "not staged" reads the window's state
// first, and a state with another key (compacted, loaded, a new revision)
// builds the set again, so a late verdict is never taken on stale facts.
func (s *Service) wasStaged(ctx context.Context, win windows.Window, seq uint64) (bool, error) {
	key := messages.WindowKey(s.cfg.Policy.Name, win.ID())
	ix, checked := s.staged.get(key)
	if ix != nil && time.Since(checked) < stagedRecheck && ix.set.has(seq) {
		return true, nil
	}
	st, _, err := s.cfg.States.Get(ctx, s.cfg.Policy.Name, win.ID())
	if errors.Is(err, statestore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read state of window %s: %w", win.ID(), err)
	}
	now := time.Now()
	if ix != nil && ix.key == stagedKeyOf(st) {
		s.staged.confirm(ix, now)
		return ix.set.has(seq), nil
	}
	ix, err = s.buildStaged(ctx, st)
	if errors.Is(err, objstore.ErrNotFound) && !stagedKeyOf(st).fromBatches {
		// The window was compacted and loaded meanwhile and its staging
		// deleted: its batches hold the same rows.
		st, _, err = s.cfg.States.Get(ctx, s.cfg.Policy.Name, win.ID())
		if err != nil {
			return false, fmt.Errorf("read state of window %s: %w", win.ID(), err)
		}
		ix, err = s.buildStaged(ctx, st)
	}
	if err != nil {
		return false, err
	}
	ix.checked = now
	s.staged.put(ix)
	return ix.set.has(seq), nil
}

// buildStaged reads the staged set of the window in state st: the source
// sequences of its batches (COMPACTED, LOADED) or of its registered
// segments inside the cutoff (otherwise), and of the earlier revisions'
// batches it was made with.
func (s *Service) buildStaged(ctx context.Context, st *messages.WindowState) (*stagedIndex, error) {
	key := stagedKeyOf(st)
	var objects []string
	if key.fromBatches {
		m, err := loads.Manifest(ctx, s.cfg.Store, st)
		if err != nil {
			return nil, fmt.Errorf("staged set: %w", err)
		}
		for _, b := range m.Batches {
			objects = append(objects, b.Object)
		}
	} else {
		regs, err := staging.ReadRegistrations(ctx, s.cfg.JS, st.Policy, st.ID(), st.RevisionBase, st.LastSegmentSeq)
		if err != nil {
			return nil, fmt.Errorf("staged set of window %s: %w", st.ID(), err)
		}
		for _, r := range regs {
			objects = append(objects, r.Object)
		}
	}
	prior, err := loads.Prior(ctx, s.cfg.Store, st)
	if err != nil {
		return nil, fmt.Errorf("staged set: %w", err)
	}
	for _, b := range prior {
		objects = append(objects, b.Object)
	}
	var seqs []uint64
	for _, obj := range objects {
		var err error
		seqs, err = staging.AppendSourceSeqs(ctx, s.cfg.Store, s.layout, obj, seqs)
		if err != nil {
			return nil, fmt.Errorf("staged set of window %s: %w", st.ID(), err)
		}
	}
	return &stagedIndex{key: key, set: newSeqSet(seqs)}, nil
}

// late handles an event whose window is sealed, as the policy says: a
// dead-letter with reason "late", or a marker on the window's late subject
// so that late drops are counted per window, never silently. detail
// (retired windows) replaces the dead letter's usual one; with it, late:
// revise dead-letters too.
func (s *Service) late(b *batch, m jetstream.Msg, seq uint64, evt int64, win windows.Window, detail string) {
	p := s.cfg.Policy
	if p.Window.Late == windows.LateDLQ || (p.Window.Late == windows.LateRevise && detail != "") {
		if detail == "" {
			detail = fmt.Sprintf("window %s ended %s and is sealed", win.ID(), win.End.Format(time.RFC3339))
		} else {
			detail = fmt.Sprintf("window %s: %s", win.ID(), detail)
		}
		s.deadLetter(b, m, seq, messages.ReasonLate, detail, win.ID())
		return
	}
	// One subject per event and window, written once (see deadLetter).
	out := nats.NewMsg(messages.LateMarkerSubject(p.Name, win.ID(), seq))
	lateID := "late-" + p.Name + "-" + strconv.FormatUint(seq, 10)
	if s.hop != nil {
		lateID += "-" + win.ID()
	}
	out.Header.Set(messages.HeaderMsgID, lateID)
	out.Header.Set(messages.HeaderPolicy, p.Name)
	out.Header.Set(messages.HeaderWindow, win.ID())
	out.Header.Set(messages.HeaderSourceSubject, m.Subject())
	out.Header.Set(messages.HeaderSourceSeq, strconv.FormatUint(seq, 10))
	if evt != 0 {
		out.Header.Set(messages.HeaderEventTime, time.UnixMicro(evt).UTC().Format(time.RFC3339Nano))
	}
	s.publishAsync(b, out)
	s.stats.late.Add(1)
}

// publishAsync publishes a dead letter or late-drop marker to its own
// subject, expecting the subject to be empty; awaitPublishes takes a refusal
// for "stored before".
func (s *Service) publishAsync(b *batch, m *nats.Msg) {
	once := jetstream.WithExpectLastSequencePerSubject(0)
	f, err := s.cfg.JS.PublishMsgAsync(m, once)
	if err != nil {
		// Too many outstanding publishes: wait for them, then retry once.
		<-s.cfg.JS.PublishAsyncComplete()
		f, err = s.cfg.JS.PublishMsgAsync(m, once)
	}
	if err != nil {
		s.fail(fmt.Errorf("publish %s: %w", m.Subject, err))
		return
	}
	b.futures = append(b.futures, f)
}

// awaitPublishes waits until every dead-letter and late publish is stored,
// or was stored before: its subject already held it.
func (s *Service) awaitPublishes(ctx context.Context, b *batch) error {
	if err := s.err(); err != nil {
		return err
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for _, f := range b.futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if natsx.IsWrongLastSequence(err) {
				continue // dead-lettered by an earlier delivery
			}
			return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for dead-letter publishes: %w", ctx.Err())
		case <-timeout.C:
			return fmt.Errorf("dead-letter publishes not acknowledged within 30s")
		}
	}
	return nil
}
