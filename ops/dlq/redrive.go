package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

const (
	// chunkSize is how many dead letters go through the three redrive steps
	// together; it bounds the payloads held in memory and the dead letters
	// left in doubt by a crash.
	chunkSize = 256
	// commitTimeout bounds one chunk's publishes and deletes. A chunk whose
	// records are stored is finished even after ctx is cancelled.
	commitTimeout = 30 * time.Second
	// clockSkew widens the search for events of an interrupted redrive, for
	// servers of a cluster whose clocks differ.
	clockSkew = time.Minute
)

// Request selects the dead letters of one policy to redrive. Exactly one of
// Reason, Seqs and Fixes selects; Reason may also guard Fixes.
type Request struct {
	// Policy is the current version of the policy whose dead letters are
	// redriven. Payloads are checked against it before they are sent.
	Policy *windows.Policy
	// Others are the other policies. A dead letter whose source subject one
	// of them also collects, on the same stream, is refused unless AllowShared.
	Others []*windows.Policy
	// Reason selects every dead letter of the policy with this reason. With
	// Fixes it is a guard: every fixed dead letter must have it.
	Reason string
	// Seqs selects these dead letters by WINDROW_DLQ sequence.
	Seqs []uint64
	// Fixes maps WINDROW_DLQ sequences to the payloads that replace them,
	// and selects exactly those dead letters (see ReadFixes).
	Fixes map[uint64][]byte
	// DryRun reports what would be sent and changes nothing.
	DryRun bool
	// AllowShared redrives to subjects other policies also collect; they
	// will load the events again.
	AllowShared bool
	// Progress, if set, is called after each chunk with the dead letters
	// handled so far and in all.
	Progress func(done, total int)
}

// Validate reports every problem of the request at once.
func (r *Request) Validate() error {
	var errs []error
	if r.Policy == nil {
		errs = append(errs, fmt.Errorf("%w: a policy is required", ErrRequest))
	}
	n := 0
	for _, set := range []bool{r.Reason != "" && r.Fixes == nil, len(r.Seqs) > 0, r.Fixes != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		errs = append(errs, fmt.Errorf("%w: select dead letters by reason, by sequence or by a fix file", ErrRequest))
	case n > 1:
		errs = append(errs, fmt.Errorf("%w: select dead letters by only one of reason, sequence and fix file (a reason may guard a fix file)", ErrRequest))
	}
	if r.Fixes != nil && len(r.Fixes) == 0 {
		errs = append(errs, fmt.Errorf("%w: the fix file holds no records", ErrRequest))
	}
	if r.Reason == ReasonLateDropped {
		errs = append(errs, fmt.Errorf("reason %s: %w; the events are only counted, their payloads are in the source stream (Windrow-Source-Seq of each marker)", r.Reason, ErrLateMarker))
	}
	return errors.Join(errs...)
}

// Outcome says what a redrive did with one dead letter.
type Outcome string

const (
	// OutcomeSent: the source stream stored the event; the dead letter is deleted.
	OutcomeSent Outcome = "sent"
	// OutcomeDuplicate: the source stream already held the event (same
	// Nats-Msg-Id within its duplicate window); the dead letter is deleted.
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeFinished: an interrupted redrive had sent it; only the dead
	// letter was left to delete.
	OutcomeFinished Outcome = "finished"
	// OutcomeWouldSend and OutcomeWouldFinish: a dry run's sent and finished.
	OutcomeWouldSend   Outcome = "would send"
	OutcomeWouldFinish Outcome = "would finish"
	// OutcomeInvalid: the policy would dead-letter the payload again; it is
	// not sent and the dead letter stays.
	OutcomeInvalid Outcome = "still invalid"
	// OutcomeNotCollected: the policy no longer collects the source subject
	// or stream; the dead letter stays.
	OutcomeNotCollected Outcome = "not collected"
	// OutcomeAlreadyRedriven: the dead letter was redriven before (a
	// redrive record says so); nothing is sent.
	OutcomeAlreadyRedriven Outcome = "already redriven"
	// OutcomeDiscarded: the dead letter was discarded (`windrow dlq
	// discard`, or recovered by a rebuild); nothing is sent.
	OutcomeDiscarded Outcome = "discarded"
)

// Item is one dead letter of a redrive.
type Item struct {
	Seq           uint64 // WINDROW_DLQ sequence of the dead letter
	Reason        string
	SourceSubject string
	SourceSeq     uint64 // the original event's
	Fixed         bool   // the payload came from the fix file
	InDoubt       bool   // left by an interrupted redrive, finished by this one
	Outcome       Outcome
	Detail        string // why it was not sent
	NewSeq        uint64 // the source stream sequence of the re-published event, when known
}

// Report is what a redrive did, item by item in dead-letter order.
type Report struct {
	Items []*Item
	// Late counts redriven dead letters whose reason is "late": they are
	// late again unless their windows were reopened.
	Late int
}

// Count counts the items with an outcome.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, it := range r.Items {
		if it.Outcome == o {
			n++
		}
	}
	return n
}

// pending is a dead letter on its way back to the source.
type pending struct {
	item    *Item
	stream  string // source stream
	header  nats.Header
	payload []byte
}

// Redrive re-publishes dead letters of a policy to their source subjects,
// as the package documentation describes. It first finishes every dead
// letter an interrupted redrive of the policy left in doubt, selected or
// not. On error the report says what was done so far; running the same
// redrive again finishes the rest without publishing anything twice.
func Redrive(ctx context.Context, js jetstream.JetStream, req Request) (*Report, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{}
	err := redrive(ctx, js, req, rep)
	for _, it := range rep.Items {
		if it.Reason == messages.ReasonLate && slices.Contains([]Outcome{OutcomeSent, OutcomeDuplicate, OutcomeWouldSend}, it.Outcome) {
			rep.Late++
		}
	}
	slices.SortStableFunc(rep.Items, func(a, b *Item) int { return cmp.Compare(a.Seq, b.Seq) })
	return rep, err
}

func redrive(ctx context.Context, js jetstream.JetStream, req Request, rep *Report) error {
	p := req.Policy
	chk, err := newChecker(p)
	if err != nil {
		return err
	}
	dlqStream, err := js.Stream(ctx, messages.StreamDLQ)
	if err != nil {
		return fmt.Errorf("dlq stream: %w", err)
	}
	recs, err := redriveRecords(ctx, js, p.Name)
	if err != nil {
		return err
	}
	live := map[uint64]*Entry{}
	err = scan(ctx, js, messages.StreamDLQ, deadLetterSubjects(p.Name), time.Time{}, true, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		live[meta.Sequence.Stream] = newEntry(m.Subject(), meta.Sequence.Stream, meta.Timestamp, m.Headers(), nil, true)
		return nil
	})
	if err != nil {
		return err
	}
	// Discarded dead letters stay in the stream but are never redriven.
	discards, err := discardRecords(ctx, js, p.Name)
	if err != nil {
		return err
	}
	for seq, e := range live {
		if d := discards[recordKey{p.Name, seq}]; d != nil {
			delete(live, seq)
			if slices.Contains(req.Seqs, seq) || req.Fixes[seq] != nil {
				rep.Items = append(rep.Items, &Item{Seq: seq, Reason: e.Reason, SourceSubject: e.SourceSubject, SourceSeq: e.SourceSeq,
					Outcome: OutcomeDiscarded, Detail: d.Reason})
				req.Seqs = slices.DeleteFunc(slices.Clone(req.Seqs), func(s uint64) bool { return s == seq })
				if req.Fixes != nil {
					req.Fixes = maps.Clone(req.Fixes)
					delete(req.Fixes, seq)
				}
			}
		}
	}
	selected, err := selectDeadLetters(ctx, dlqStream, req, live, recs, rep)
	if err != nil {
		return err
	}
	var inDoubt []*Entry
	for _, e := range live {
		if _, ok := recs[recordKey{p.Name, e.Seq}]; ok {
			inDoubt = append(inDoubt, e)
		}
	}
	slices.SortFunc(inDoubt, func(a, b *Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	selected = slices.DeleteFunc(selected, func(e *Entry) bool {
		_, ok := recs[recordKey{p.Name, e.Seq}]
		return ok
	})
	if err := checkShared(p, req.Others, append(slices.Clone(inDoubt), selected...), req.AllowShared); err != nil {
		return err
	}
	// An event redriven before has a record with its source sequence: a
	// dead letter of the same event (delivered again after the redrive
	// deleted the first) must not load it a second time.
	redrivenEvents := map[eventKey]*Entry{}
	for _, r := range recs {
		if r.SourceSeq != 0 {
			redrivenEvents[eventKey{cmp.Or(r.SourceStream, p.Source.Stream), r.SourceSeq}] = r
		}
	}
	total, done := len(inDoubt)+len(selected), 0
	progress := func(n int) {
		done += n
		if req.Progress != nil {
			req.Progress(done, total)
		}
	}
	if err := finishInDoubt(ctx, js, dlqStream, p, inDoubt, recs, req.DryRun, rep, progress); err != nil {
		return err
	}
	for part := range slices.Chunk(selected, chunkSize) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("redrive stopped: %w", err)
		}
		var send []*pending
		for _, e := range part {
			it := &Item{Seq: e.Seq, Reason: e.Reason, SourceSubject: e.SourceSubject, SourceSeq: e.SourceSeq}
			rep.Items = append(rep.Items, it)
			if r, ok := redrivenEvents[eventKey{cmp.Or(e.SourceStream, p.Source.Stream), e.SourceSeq}]; ok && e.SourceSeq != 0 {
				it.Outcome, it.Detail = OutcomeAlreadyRedriven, fmt.Sprintf("its event (source seq %d) was redriven as dlq seq %d", e.SourceSeq, r.RedriveOf)
				continue
			}
			if why := notCollected(p, e); why != "" {
				it.Outcome, it.Detail = OutcomeNotCollected, why
				continue
			}
			pd := &pending{item: it, stream: cmp.Or(e.SourceStream, p.Source.Stream), header: e.Header}
			if fix, ok := req.Fixes[e.Seq]; ok {
				pd.payload, it.Fixed = fix, true
			} else {
				full, err := get(ctx, dlqStream, e.Seq)
				if errors.Is(err, ErrNotFound) {
					it.Outcome, it.Detail = OutcomeAlreadyRedriven, "deleted while this redrive ran"
					continue
				}
				if err != nil {
					return err
				}
				pd.header = full.Header
				if pd.payload, err = Payload(ctx, js, full); errors.Is(err, ErrTruncated) {
					it.Outcome, it.Detail = OutcomeInvalid, err.Error()+"; redrive it with --file"
					continue
				} else if err != nil {
					return err
				}
			}
			if why := chk.check(pd.payload, time.Now()); why != "" {
				it.Outcome, it.Detail = OutcomeInvalid, why
				continue
			}
			if req.DryRun {
				it.Outcome = OutcomeWouldSend
				continue
			}
			send = append(send, pd)
		}
		if len(send) > 0 {
			if err := commit(ctx, js, dlqStream, p.Name, send, true); err != nil {
				return err
			}
		}
		progress(len(part))
	}
	return nil
}

// eventKey names a source event: its stream and sequence.
type eventKey struct {
	stream string
	seq    uint64
}

// selectDeadLetters returns the live dead letters req selects, oldest
// first. Selected sequences that were redriven before are reported as such;
// any that is not a dead letter of the policy fails the request.
func selectDeadLetters(ctx context.Context, dlqStream jetstream.Stream, req Request, live map[uint64]*Entry, recs map[recordKey]*Entry, rep *Report) ([]*Entry, error) {
	p := req.Policy
	var out []*Entry
	if req.Fixes == nil && len(req.Seqs) == 0 {
		for _, e := range live {
			if e.Reason == req.Reason {
				out = append(out, e)
			}
		}
		slices.SortFunc(out, func(a, b *Entry) int { return cmp.Compare(a.Seq, b.Seq) })
		return out, nil
	}
	seqs := req.Seqs
	if req.Fixes != nil {
		seqs = slices.Sorted(maps.Keys(req.Fixes))
	}
	var errs []error
	seen := map[uint64]bool{}
	for _, seq := range seqs {
		if seen[seq] {
			continue
		}
		seen[seq] = true
		if e, ok := live[seq]; ok {
			if req.Reason != "" && e.Reason != req.Reason {
				errs = append(errs, fmt.Errorf("dlq seq %d has reason %s, not %s", seq, e.Reason, req.Reason))
				continue
			}
			out = append(out, e)
			continue
		}
		if r, ok := recs[recordKey{p.Name, seq}]; ok {
			rep.Items = append(rep.Items, &Item{Seq: seq, Reason: r.Reason, SourceSubject: r.SourceSubject, SourceSeq: r.SourceSeq,
				Outcome: OutcomeAlreadyRedriven, Detail: "redriven " + r.Time.UTC().Format(time.RFC3339) + " (redrive record " + strconv.FormatUint(r.Seq, 10) + ")"})
			continue
		}
		e, err := get(ctx, dlqStream, seq)
		switch {
		case errors.Is(err, ErrNotFound):
			errs = append(errs, fmt.Errorf("%w (never was, or expired)", err))
		case err != nil:
			return nil, err
		case e.Kind == KindLateMarker:
			errs = append(errs, fmt.Errorf("dlq seq %d is a late-drop marker on %s: %w; the event is source seq %d", seq, e.Subject, ErrLateMarker, e.SourceSeq))
		default:
			errs = append(errs, fmt.Errorf("dlq seq %d is a %s on %s: %w %s", seq, e.Kind, e.Subject, ErrNotDeadLetter, p.Name))
		}
	}
	return out, errors.Join(errs...)
}

// notCollected says why the policy would not see a dead letter's event if
// it were re-published, or "".
func notCollected(p *windows.Policy, e *Entry) string {
	switch {
	case e.SourceSubject == "":
		return "the dead letter has no " + messages.HeaderSourceSubject + " header"
	case e.SourceStream != "" && e.SourceStream != p.Source.Stream:
		return fmt.Sprintf("it came from stream %s; the policy now reads %s", e.SourceStream, p.Source.Stream)
	case !slices.ContainsFunc(p.Source.Subjects, func(f string) bool { return natsx.SubjectCovers(f, e.SourceSubject) }):
		return fmt.Sprintf("the policy no longer collects %s (subjects %v)", e.SourceSubject, p.Source.Subjects)
	}
	return ""
}

// checkShared refuses dead letters whose source subject another policy
// collects from the same stream: that policy would load the event again.
func checkShared(p *windows.Policy, others []*windows.Policy, entries []*Entry, allow bool) error {
	if allow {
		return nil
	}
	shared := map[string][]string{} // subject → other policies
	for _, e := range entries {
		stream := cmp.Or(e.SourceStream, p.Source.Stream)
		if _, done := shared[e.SourceSubject]; done || e.SourceSubject == "" {
			continue
		}
		var names []string
		for _, o := range others {
			if o.Name == p.Name || o.Source.Stream != stream {
				continue
			}
			if slices.ContainsFunc(o.Source.Subjects, func(f string) bool { return natsx.SubjectCovers(f, e.SourceSubject) }) {
				names = append(names, o.Name)
			}
		}
		shared[e.SourceSubject] = names
	}
	bySet := map[string][]string{} // other policies → subjects
	for _, subj := range slices.Sorted(maps.Keys(shared)) {
		if names := shared[subj]; len(names) > 0 {
			key := strings.Join(names, ", ")
			bySet[key] = append(bySet[key], subj)
		}
	}
	var errs []error
	for _, names := range slices.Sorted(maps.Keys(bySet)) {
		subjects := bySet[names]
		list := strings.Join(subjects[:min(len(subjects), 3)], ", ")
		if len(subjects) > 3 {
			list += fmt.Sprintf(" and %d more", len(subjects)-3)
		}
		errs = append(errs, fmt.Errorf("%s: %w (%s), which would load the events a second time", list, ErrSharedSubject, names))
	}
	return errors.Join(errs...)
}

// finishInDoubt completes the dead letters an interrupted redrive left: each
// has a redrive record but is still in the DLQ. Those whose event is in the
// source stream are only deleted; the others are sent with the record's
// payload, then deleted.
func finishInDoubt(ctx context.Context, js jetstream.JetStream, dlqStream jetstream.Stream, p *windows.Policy, inDoubt []*Entry, recs map[recordKey]*Entry, dryRun bool, rep *Report, progress func(int)) error {
	if len(inDoubt) == 0 {
		return nil
	}
	sent, err := findRedriven(ctx, js, p, inDoubt, recs)
	if err != nil {
		return err
	}
	for part := range slices.Chunk(inDoubt, chunkSize) {
		var send []*pending
		var finished []*Item
		for _, e := range part {
			it := &Item{Seq: e.Seq, Reason: e.Reason, SourceSubject: e.SourceSubject, SourceSeq: e.SourceSeq, InDoubt: true}
			rep.Items = append(rep.Items, it)
			if seq, ok := sent[e.Seq]; ok {
				it.NewSeq = seq
				if dryRun {
					it.Outcome = OutcomeWouldFinish
				} else {
					finished = append(finished, it)
				}
				continue
			}
			// The record holds a fixed payload; an original one is still in
			// the dead letter, which is there as long as it is in doubt.
			rec, err := get(ctx, dlqStream, recs[recordKey{p.Name, e.Seq}].Seq)
			if err != nil {
				return fmt.Errorf("redrive record of dlq seq %d: %w", e.Seq, err)
			}
			pd := &pending{item: it, stream: cmp.Or(e.SourceStream, p.Source.Stream), header: rec.Header, payload: rec.Data}
			if it.Fixed = rec.Header.Get(HeaderRedriveFixed) == "true"; !it.Fixed {
				full, err := get(ctx, dlqStream, e.Seq)
				if err != nil {
					return err
				}
				if pd.payload, err = Payload(ctx, js, full); err != nil {
					return err
				}
			}
			if dryRun {
				it.Outcome = OutcomeWouldSend
				continue
			}
			send = append(send, pd)
		}
		if dryRun {
			progress(len(part))
			continue
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		for _, it := range finished {
			if err := deleteMsg(cctx, dlqStream, it.Seq); err != nil {
				cancel()
				return err
			}
			it.Outcome = OutcomeFinished
		}
		cancel()
		if len(send) > 0 {
			// The records exist already: steps 2 and 3 only.
			if err := commit(ctx, js, dlqStream, p.Name, send, false); err != nil {
				return err
			}
		}
		progress(len(part))
	}
	return nil
}

// findRedriven reads the source streams, headers only, from the earliest
// redrive record of the dead letters in doubt on, and returns for each one
// whose event is there that event's stream sequence.
func findRedriven(ctx context.Context, js jetstream.JetStream, p *windows.Policy, inDoubt []*Entry, recs map[recordKey]*Entry) (map[uint64]uint64, error) {
	from := map[string]time.Time{} // stream → earliest record
	want := map[uint64]bool{}
	for _, e := range inDoubt {
		want[e.Seq] = true
		stream := cmp.Or(e.SourceStream, p.Source.Stream)
		from[stream] = minTime(from[stream], recs[recordKey{p.Name, e.Seq}].Time.Add(-clockSkew))
	}
	out := map[uint64]uint64{}
	for stream, start := range from {
		err := scan(ctx, js, stream, nil, start, true, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
			h := m.Headers()
			if h.Get(HeaderRedrivePolicy) != p.Name {
				return nil
			}
			if of, err := strconv.ParseUint(h.Get(HeaderRedriveOf), 10, 64); err == nil && want[of] {
				if _, ok := out[of]; !ok {
					out[of] = meta.Sequence.Stream
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("look for redriven events in %s: %w", stream, err)
		}
	}
	return out, nil
}

// commit runs the redrive steps for a chunk: store the redrive records
// (unless they exist: withRecords false), publish the events and wait until
// the source streams stored them, delete the dead letters. Once begun, a
// chunk is finished even if ctx is cancelled, within commitTimeout, so that
// Ctrl-C leaves nothing in doubt.
func commit(ctx context.Context, js jetstream.JetStream, dlqStream jetstream.Stream, policy string, send []*pending, withRecords bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	futs := make([]jetstream.PubAckFuture, 0, len(send))
	if withRecords {
		for _, pd := range send {
			f, err := js.PublishMsgAsync(recordMsg(policy, pd))
			if err != nil {
				return fmt.Errorf("store redrive record of dlq seq %d: %w%s", pd.item.Seq, err, rerun)
			}
			futs = append(futs, f)
		}
		if _, err := awaitAll(ctx, futs); err != nil {
			return fmt.Errorf("store redrive records: %w%s", err, rerun)
		}
		futs = futs[:0]
	}
	for _, pd := range send {
		f, err := js.PublishMsgAsync(eventMsg(policy, pd), jetstream.WithExpectStream(pd.stream))
		if err != nil {
			return fmt.Errorf("redrive dlq seq %d to %s: %w%s", pd.item.Seq, pd.item.SourceSubject, err, rerun)
		}
		futs = append(futs, f)
	}
	acks, err := awaitAll(ctx, futs)
	if err != nil {
		return fmt.Errorf("redrive: %w%s", err, rerun)
	}
	for i, pd := range send {
		if err := deleteMsg(ctx, dlqStream, pd.item.Seq); err != nil {
			return fmt.Errorf("%w%s", err, rerun)
		}
		pd.item.NewSeq, pd.item.Outcome = acks[i].Sequence, OutcomeSent
		if acks[i].Duplicate {
			pd.item.Outcome = OutcomeDuplicate
		}
	}
	return nil
}

const rerun = "; run the same redrive again to finish: dead letters it began are completed first, and none is published twice"

// awaitAll waits for every publish to be stored, bounded by ctx.
func awaitAll(ctx context.Context, futs []jetstream.PubAckFuture) ([]*jetstream.PubAck, error) {
	acks := make([]*jetstream.PubAck, len(futs))
	for i, f := range futs {
		select {
		case ack := <-f.Ok():
			acks[i] = ack
		case err := <-f.Err():
			return nil, fmt.Errorf("publish to %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for publish acks: %w", ctx.Err())
		}
	}
	return acks, nil
}

// deleteMsg deletes a dead letter; one that is gone already is fine.
func deleteMsg(ctx context.Context, stream jetstream.Stream, seq uint64) error {
	err := stream.DeleteMsg(ctx, seq)
	if err == nil {
		return nil
	}
	if _, gerr := stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return nil
	}
	return fmt.Errorf("delete dlq seq %d: %w", seq, err)
}

// windrowHeaders are the headers the collector adds to a dead letter and a
// redrive adds to an event; they are not the producer's.
var windrowHeaders = []string{
	messages.HeaderReason, messages.HeaderDetail, messages.HeaderSourceStream, messages.HeaderSourceSubject,
	messages.HeaderSourceSeq, messages.HeaderWindow, messages.HeaderPolicy, messages.HeaderEventTime,
	messages.HeaderTruncated, messages.HeaderOriginalSize,
	HeaderRedriveOf, HeaderRedrivePolicy, HeaderRedriveFixed,
}

// eventMsg is a dead letter's event as it goes back to its source subject:
// the producer's headers, without windrow's dead-letter headers and without
// JetStream's own (Nats-*), plus the redrive headers.
func eventMsg(policy string, pd *pending) *nats.Msg {
	m := nats.NewMsg(pd.item.SourceSubject)
	m.Data = pd.payload
	for k, v := range pd.header {
		if strings.HasPrefix(strings.ToLower(k), "nats-") || slices.ContainsFunc(windrowHeaders, func(w string) bool { return strings.EqualFold(w, k) }) {
			continue
		}
		m.Header[k] = v
	}
	m.Header.Set(messages.HeaderMsgID, RedriveMsgID(policy, pd.item.Seq))
	m.Header.Set(HeaderRedriveOf, strconv.FormatUint(pd.item.Seq, 10))
	m.Header.Set(HeaderRedrivePolicy, policy)
	if pd.item.Fixed {
		m.Header.Set(HeaderRedriveFixed, "true")
	}
	return m
}

// recordMsg is the redrive record of a dead letter: its headers, the redrive
// headers and, for a fixed payload, the bytes about to be published (an
// original one stays in the dead letter until the redrive is done).
func recordMsg(policy string, pd *pending) *nats.Msg {
	m := nats.NewMsg(RedrivenSubject(policy))
	if pd.item.Fixed {
		m.Data = pd.payload
	}
	for k, v := range pd.header {
		if !strings.HasPrefix(strings.ToLower(k), "nats-") {
			m.Header[k] = v
		}
	}
	m.Header.Set(messages.HeaderMsgID, recordMsgID(policy, pd.item.Seq))
	m.Header.Set(HeaderRedriveOf, strconv.FormatUint(pd.item.Seq, 10))
	m.Header.Set(HeaderRedrivePolicy, policy)
	if pd.item.Fixed {
		m.Header.Set(HeaderRedriveFixed, "true")
	} else {
		m.Header.Del(HeaderRedriveFixed)
	}
	return m
}

// checker tells whether the policy's collector would dead-letter a payload.
type checker struct {
	dec     *records.Decoder
	horizon time.Duration
}

func newChecker(p *windows.Policy) (*checker, error) {
	l, err := records.NewLayout(p)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", p.Name, err)
	}
	return &checker{dec: records.NewDecoder(l), horizon: p.Window.FutureHorizon.D()}, nil
}

// check returns why the collector would dead-letter payload if it arrived
// now, or "". Lateness is not checked: it depends on the window's state
// when the event arrives.
func (c *checker) check(payload []byte, now time.Time) string {
	_, evt, err := c.dec.Decode(payload, 1, now.UnixMicro())
	c.dec.Reset()
	if err != nil {
		return err.Error()
	}
	if c.horizon > 0 && evt > now.Add(c.horizon).UnixMicro() {
		return fmt.Sprintf("%s: event time %s is more than %s ahead", messages.ReasonFuture, time.UnixMicro(evt).UTC().Format(time.RFC3339), c.horizon)
	}
	return ""
}
