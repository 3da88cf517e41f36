package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
)

// Headers a redrive adds to the events it re-publishes and to its records.
const (
	// HeaderRedriveOf is the WINDROW_DLQ sequence of the dead letter an event
	// re-publishes (on the event and on the redrive record).
	HeaderRedriveOf = "Windrow-Redrive-Of"
	// HeaderRedrivePolicy names the policy whose dead letter was redriven.
	HeaderRedrivePolicy = "Windrow-Redrive-Policy"
	// HeaderRedriveFixed is "true" when the payload came from a fix file
	// rather than the dead letter.
	HeaderRedriveFixed = "Windrow-Redrive-Fixed"
)

// ReasonLateDropped is the reason listings give late-drop markers, as
// inspect.CountDeadLetters does.
const ReasonLateDropped = "late_dropped"

var (
	dlqPrefix  = messages.DLQSubject("")                           // "windrow.dlq."
	latePrefix = strings.TrimSuffix(messages.LateFilter(""), ".>") // "windrow.late."
)

// redrivenSuffix ends every redrive record subject (messages.RedrivenSubject).
var redrivenSuffix = strings.TrimPrefix(messages.RedrivenSubject(""), messages.DLQSubject(""))

// RedrivenSubject is where a policy's redrive records are stored (see
// messages.RedrivenSubject).
func RedrivenSubject(policy string) string { return messages.RedrivenSubject(policy) }

// RedriveMsgID is the Nats-Msg-Id of dead letter seq re-published to its
// source stream.
func RedriveMsgID(policy string, seq uint64) string {
	return "redrive-" + policy + "-" + strconv.FormatUint(seq, 10)
}

func recordMsgID(policy string, seq uint64) string {
	return "redriven-" + policy + "-" + strconv.FormatUint(seq, 10)
}

// Kind says what a message of WINDROW_DLQ is.
type Kind int

const (
	KindOther         Kind = iota
	KindDeadLetter         // an event on windrow.dlq.<policy>, with its payload
	KindLateMarker         // a late-drop marker on windrow.late.<policy>.<window>: headers only
	KindRedriveRecord      // a redrive record on windrow.dlq.<policy>.redriven
	KindDiscardRecord      // a discard record on windrow.dlq.<policy>.discarded.<dlq seq>
)

func (k Kind) String() string {
	switch k {
	case KindDeadLetter:
		return "dead letter"
	case KindLateMarker:
		return "late-drop marker"
	case KindRedriveRecord:
		return "redrive record"
	case KindDiscardRecord:
		return "discard record"
	}
	return "other"
}

// kindOf classifies a WINDROW_DLQ subject and names its policy. Dead
// letters are on windrow.dlq.<policy>.seq.<source seq>[.<window>], or, stored
// by earlier versions, on windrow.dlq.<policy>.
func kindOf(subject string) (Kind, string) {
	if rest, ok := strings.CutPrefix(subject, latePrefix); ok {
		policy, _, _ := strings.Cut(rest, ".")
		return KindLateMarker, policy
	}
	if rest, ok := strings.CutPrefix(subject, dlqPrefix); ok {
		policy, tail, dotted := strings.Cut(rest, ".")
		switch {
		case !dotted:
			return KindDeadLetter, policy
		case "."+tail == redrivenSuffix:
			return KindRedriveRecord, policy
		case strings.HasPrefix(tail, "seq."):
			return KindDeadLetter, policy
		case strings.HasPrefix(tail, "discarded."):
			return KindDiscardRecord, policy
		}
	}
	return KindOther, ""
}

// Entry is one message of WINDROW_DLQ, with the windrow headers decoded.
type Entry struct {
	Seq     uint64    // WINDROW_DLQ stream sequence
	Time    time.Time // when it was stored
	Subject string
	Kind    Kind
	Policy  string
	// Reason is Windrow-Reason; ReasonLateDropped for late-drop markers.
	Reason        string
	Detail        string
	Window        string // Windrow-Window, where the collector knew it
	SourceStream  string
	SourceSubject string
	SourceSeq     uint64
	// RedriveOf is, on a redrive record, the dead letter it redrove.
	RedriveOf uint64
	// Discard is set on a dead letter or marker that was discarded (read
	// with Filter.Discarded only).
	Discard *DiscardMark
	Header  nats.Header
	// Data is the payload; nil when read headers only.
	Data []byte
	// Size is the payload's size in bytes, also when read headers only.
	Size int
}

func newEntry(subject string, seq uint64, at time.Time, h nats.Header, data []byte, headersOnly bool) *Entry {
	kind, policy := kindOf(subject)
	e := &Entry{
		Seq: seq, Time: at, Subject: subject, Kind: kind, Policy: h.Get(messages.HeaderPolicy),
		Reason: h.Get(messages.HeaderReason), Detail: h.Get(messages.HeaderDetail), Window: h.Get(messages.HeaderWindow),
		SourceStream: h.Get(messages.HeaderSourceStream), SourceSubject: h.Get(messages.HeaderSourceSubject), Header: h,
	}
	if e.Policy == "" {
		e.Policy = policy
	}
	if kind == KindLateMarker {
		e.Reason = ReasonLateDropped
	}
	e.SourceSeq, _ = strconv.ParseUint(h.Get(messages.HeaderSourceSeq), 10, 64)
	e.RedriveOf, _ = strconv.ParseUint(h.Get(HeaderRedriveOf), 10, 64)
	if headersOnly {
		e.Size, _ = strconv.Atoi(h.Get("Nats-Msg-Size"))
	} else {
		e.Data, e.Size = data, len(data)
	}
	return e
}

// Get reads one message of WINDROW_DLQ with its payload. A sequence that is
// not there gives ErrNotFound.
func Get(ctx context.Context, js jetstream.JetStream, seq uint64) (*Entry, error) {
	stream, err := js.Stream(ctx, messages.StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("dlq stream: %w", err)
	}
	return get(ctx, stream, seq)
}

func get(ctx context.Context, stream jetstream.Stream, seq uint64) (*Entry, error) {
	m, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("dlq seq %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("dlq seq %d: %w", seq, err)
	}
	return newEntry(m.Subject, m.Sequence, m.Time, m.Header, m.Data, false), nil
}

// Truncated reports whether the collector cut the payload to fit the
// dead-letter stream (Windrow-Truncated); Payload gets the whole event.
func (e *Entry) Truncated() bool { return e.Header.Get(messages.HeaderTruncated) == "true" }

// Payload returns a dead letter's event as it was published: its payload,
// or for a truncated one the whole event, read from the source stream.
// e must have been read with its payload.
func Payload(ctx context.Context, js jetstream.JetStream, e *Entry) ([]byte, error) {
	if !e.Truncated() {
		return e.Data, nil
	}
	if e.SourceStream == "" || e.SourceSeq == 0 {
		return nil, fmt.Errorf("dlq seq %d: %w (no source headers)", e.Seq, ErrTruncated)
	}
	stream, err := js.Stream(ctx, e.SourceStream)
	if err != nil {
		return nil, fmt.Errorf("dlq seq %d: source stream: %w", e.Seq, err)
	}
	m, err := stream.GetMsg(ctx, e.SourceSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("dlq seq %d: %w (seq %d of %s)", e.Seq, ErrTruncated, e.SourceSeq, e.SourceStream)
	}
	if err != nil {
		return nil, fmt.Errorf("dlq seq %d: read source seq %d: %w", e.Seq, e.SourceSeq, err)
	}
	if want := e.Header.Get(messages.HeaderOriginalSize); want != "" && want != strconv.Itoa(len(m.Data)) {
		return nil, fmt.Errorf("dlq seq %d: source seq %d holds %d bytes, the dead letter says %s: %w", e.Seq, e.SourceSeq, len(m.Data), want, ErrTruncated)
	}
	return m.Data, nil
}

// Filter selects dead letters and late-drop markers; empty fields match all.
type Filter struct {
	Policy string
	Reason string
	// Discarded includes discarded ones, with Entry.Discard set; without it
	// they are left out.
	Discarded bool
}

func (f Filter) subjects() []string {
	policy := cmp.Or(f.Policy, "*")
	if f.Reason == ReasonLateDropped {
		return []string{messages.LateFilter(policy)}
	}
	return append(deadLetterSubjects(policy), messages.LateFilter(policy))
}

// deadLetterSubjects are the subjects of a policy's dead letters ("*": of
// every policy): the per-event ones and the single one earlier versions used.
func deadLetterSubjects(policy string) []string {
	return []string{messages.DLQSubject(policy), messages.DeadLetterFilter(policy)}
}

// Entries calls fn for each dead letter and late-drop marker that f selects,
// oldest first; full reads payloads too.
func Entries(ctx context.Context, js jetstream.JetStream, f Filter, full bool, fn func(*Entry) error) error {
	discards, err := discardRecords(ctx, js, f.Policy)
	if err != nil {
		return err
	}
	return scan(ctx, js, messages.StreamDLQ, f.subjects(), time.Time{}, !full, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		e := newEntry(m.Subject(), meta.Sequence.Stream, meta.Timestamp, m.Headers(), m.Data(), !full)
		if e.Kind != KindDeadLetter && e.Kind != KindLateMarker {
			return nil
		}
		if f.Reason != "" && e.Reason != f.Reason {
			return nil
		}
		if e.Discard = discards[recordKey{e.Policy, e.Seq}]; e.Discard != nil && !f.Discarded {
			return nil
		}
		return fn(e)
	})
}

// Group counts the dead letters (or late-drop markers) of one policy and reason.
type Group struct {
	Policy, Reason string
	Count          int64
	Oldest, Newest time.Time
}

// Summary is what the dead-letter stream holds.
type Summary struct {
	// Groups by policy (alphabetical), then count, largest first.
	Groups []Group
	// Redriven counts redrive records by policy: dead letters redriven
	// before, within the stream's retention.
	Redriven map[string]int64
	// InDoubt counts, by policy, dead letters of an interrupted redrive:
	// the next redrive of the policy finishes them.
	InDoubt map[string]int64
	// Discarded counts, by policy, the discarded dead letters and markers
	// (not in Groups); Recovered those of them whose events were loaded.
	Discarded, Recovered map[string]int64
}

// List summarises the dead letters and late-drop markers f selects.
func List(ctx context.Context, js jetstream.JetStream, f Filter) (*Summary, error) {
	out := &Summary{Redriven: map[string]int64{}, InDoubt: map[string]int64{}, Discarded: map[string]int64{}, Recovered: map[string]int64{}}
	records, err := redriveRecords(ctx, js, f.Policy)
	if err != nil {
		return nil, err
	}
	for _, r := range records {
		out.Redriven[r.Policy]++
	}
	groups := map[[2]string]*Group{}
	f.Discarded = true
	err = Entries(ctx, js, f, false, func(e *Entry) error {
		if e.Discard != nil {
			out.Discarded[e.Policy]++
			if e.Discard.Loaded {
				out.Recovered[e.Policy]++
			}
			return nil
		}
		g := groups[[2]string{e.Policy, e.Reason}]
		if g == nil {
			g = &Group{Policy: e.Policy, Reason: e.Reason, Oldest: e.Time}
			groups[[2]string{e.Policy, e.Reason}] = g
		}
		g.Count++
		g.Oldest, g.Newest = minTime(g.Oldest, e.Time), maxTime(g.Newest, e.Time)
		if _, ok := records[recordKey{e.Policy, e.Seq}]; ok && e.Kind == KindDeadLetter {
			out.InDoubt[e.Policy]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		out.Groups = append(out.Groups, *g)
	}
	slices.SortFunc(out.Groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(a.Policy, b.Policy), cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason))
	})
	return out, nil
}

// CountRedriven counts a policy's redrive records from the stream's subject
// counts, without reading them: the dead letters redriven, and deleted, within
// the DLQ stream's retention. A balance of published events counts them with
// the dead-lettered ones: each stands for the original event, and the event
// it re-published is counted where it ended up.
func CountRedriven(ctx context.Context, js jetstream.JetStream, policy string) (int64, error) {
	stream, err := js.Stream(ctx, messages.StreamDLQ)
	if err != nil {
		return 0, fmt.Errorf("dlq stream: %w", err)
	}
	subject := RedrivenSubject(policy)
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, fmt.Errorf("dlq stream info: %w", err)
	}
	return int64(info.State.Subjects[subject]), nil
}

type recordKey struct {
	policy string
	seq    uint64 // the dead letter's
}

// redriveRecords reads the redrive records of a policy (all policies when
// empty), headers only, keyed by the dead letter each redrove.
func redriveRecords(ctx context.Context, js jetstream.JetStream, policy string) (map[recordKey]*Entry, error) {
	filter := dlqPrefix + "*" + redrivenSuffix
	if policy != "" {
		filter = RedrivenSubject(policy)
	}
	out := map[recordKey]*Entry{}
	err := scan(ctx, js, messages.StreamDLQ, []string{filter}, time.Time{}, true, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		e := newEntry(m.Subject(), meta.Sequence.Stream, meta.Timestamp, m.Headers(), nil, true)
		if e.Kind == KindRedriveRecord && e.RedriveOf != 0 {
			if _, ok := out[recordKey{e.Policy, e.RedriveOf}]; !ok { // the first record is when the redrive began
				out[recordKey{e.Policy, e.RedriveOf}] = e
			}
		}
		return nil
	})
	return out, err
}

// scanIdle bounds the wait for the next message of a scan that expects more.
const scanIdle = 5 * time.Second

// scan calls fn for the messages of stream on the subjects, in stream order,
// from start (zero: the beginning) up to the end of the stream as it was
// when the scan began. It reads through an ordered consumer, headers only
// if asked.
func scan(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, start time.Time, headersOnly bool, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy, HeadersOnly: headersOnly, InactiveThreshold: 10 * time.Second}
	if !start.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	// The scan ends at the last message on the subjects stored before it
	// began. Not on a delivered message's NumPending: with several filter
	// subjects the server's count was seen to reach 0 before the last
	// messages (a scan then missed the newest dead letters).
	last, err := lastSeq(ctx, st, subjects)
	if err != nil || last == 0 {
		return err
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	if info := cons.CachedInfo(); !start.IsZero() && info != nil && info.NumPending == 0 {
		return nil // nothing since start
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(500))
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	defer it.Stop()
	for {
		nctx, cancel := context.WithTimeout(ctx, scanIdle)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("read stream %s: %w", stream, ctx.Err())
			}
			// Nothing came: done if nothing is left (messages deleted meanwhile).
			if ci, ierr := cons.Info(ctx); ierr == nil && ci.NumPending == 0 {
				return nil
			}
			return fmt.Errorf("read stream %s: %w", stream, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read stream %s: %w", stream, err)
		}
		if meta.Sequence.Stream > last {
			return nil // stored after the scan began
		}
		if err := fn(m, meta); err != nil {
			return err
		}
		if meta.Sequence.Stream == last {
			return nil
		}
	}
}

// lastSeq is the sequence of the stream's last message on any of subjects
// (nil: on any subject); 0 when there is none.
func lastSeq(ctx context.Context, st jetstream.Stream, subjects []string) (uint64, error) {
	if len(subjects) == 0 {
		return st.CachedInfo().State.LastSeq, nil
	}
	var last uint64
	for _, subj := range subjects {
		m, err := st.GetLastMsgForSubject(ctx, subj)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			continue
		case err != nil:
			return 0, fmt.Errorf("read stream %s: last message on %s: %w", st.CachedInfo().Config.Name, subj, err)
		}
		last = max(last, m.Sequence)
	}
	return last, nil
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
