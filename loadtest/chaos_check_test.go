//go:build chaos

package loadtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// chaosExpect is what the generator sent, per event index, kept small.
type chaosExpect struct {
	win       []int16 // index into windows; -1 for a malformed event
	qty       []int8
	reason    map[int]string // DLQ reason of each malformed event
	windows   []string       // window ids, in order
	malformed int
	late      int    // late events (lateRounds), the last of the events
	ids       string // msg id prefix: event i has msg id ids+i (msgID)
	// No generated event may be late: their jitter stays below
	// max_out_of_order, and a producer a day ahead (-chaos.ahead-every)
	// must not move the watermark.
}

func expectEvents(gen Sales, assign *windows.Assigner) *chaosExpect {
	e := &chaosExpect{win: make([]int16, 0, gen.Events), qty: make([]int8, 0, gen.Events), reason: map[int]string{}}
	index := map[string]int16{}
	i := 0
	for ev := range gen.All() {
		if ev.Malformed {
			e.win = append(e.win, -1)
			e.qty = append(e.qty, 0)
			e.reason[i] = ev.Reason
			e.malformed++
		} else {
			e.win = append(e.win, e.window(index, assign.Assign(ev.Time).ID()))
			e.qty = append(e.qty, int8(ev.Quantity))
		}
		i++
	}
	return e
}

// msgID is event i's Nats-Msg-Id.
func (e *chaosExpect) msgID(i int) string { return e.ids + strconv.Itoa(i) }

// window is the index of window id in e.windows (index maps ids to it),
// added when it is new.
func (e *chaosExpect) window(index map[string]int16, id string) int16 {
	w, ok := index[id]
	if !ok {
		w = int16(len(e.windows))
		index[id] = w
		e.windows = append(e.windows, id)
	}
	return w
}

// addLate appends the late events (lateRounds), by event time and
// quantity, after the generated ones: late event j is event G+j, G the
// number of generated events (their msg ids follow on).
func (e *chaosExpect) addLate(times []time.Time, qty []int8, assign *windows.Assigner) {
	index := map[string]int16{}
	for w, id := range e.windows {
		index[id] = int16(w)
	}
	for j, t := range times {
		e.win = append(e.win, e.window(index, assign.Assign(t).ID()))
		e.qty = append(e.qty, qty[j])
		e.late++
	}
}

// chaosWindowRow is one line of the reconciliation table.
type chaosWindowRow struct {
	id                                    string
	published, loaded, dlq, late, dropped int64 // late: dead-lettered with reason late (part of dlq)
	dups                                  int64
	qtyPublished, qtyAccounted            int64
	stagedDups                            int64 // rows the window's last compaction dropped as staged twice or loaded before
	sentLate                              int64 // late events published for the window (lateRounds), part of published
	// qtyLoaded is sum(quantity) of the window's rows in the table;
	// wantLoaded and wantQty are what the generator says they must be:
	// its events of the window, and with late: revise the late events too
	// (with dlq or drop, late events must not change a window's rows).
	qtyLoaded, wantLoaded, wantQty int64
	genLate                        int64 // generated events taken as late (each a problem)
	revision                       int   // the window's final revision
	revisionRows                   int64 // rows of the final revision's batches (append: the rows new to it)
	// inTable counts the table's rows of the window (its _window_start).
	// With tumbling windows they are the window's loaded events; with
	// session windows, the rows of the sessions that ended in the pane,
	// carried in from earlier panes or not, while loaded counts the pane's
	// own events wherever their session was loaded.
	inTable int64
}

// chaosVerification is the independent reconciliation of a run.
type chaosVerification struct {
	rows        []*chaosWindowRow // one per window, then the malformed events
	byID        map[string]*chaosWindowRow
	total       chaosWindowRow
	lost        int64
	problems    []string
	dupLoads    int // load results "duplicate": the ledger caught a repeated load
	duplicateOf map[string]bool
	results     int
	streamMsg   uint64
	// lateEvent marks, by event index, the events dead-lettered as late or
	// dropped as late: not part of any window.
	lateEvent []bool
	// loadedEvent marks, by event index, the events found in the table.
	loadedEvent []bool
}

func (v *chaosVerification) problem(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

// verifyChaos reads the source stream (every event the stream accepted,
// mapped back to the generated event by its msg id), the table, the DLQ and
// the late markers, and checks that every accepted event is in exactly one
// of table and DLQ, in its window, with its quantity.
func verifyChaos(ctx context.Context, js jetstream.JetStream, wh chaosWarehouse, p *windows.Policy, want *chaosExpect) (*chaosVerification, error) {
	v := &chaosVerification{byID: map[string]*chaosWindowRow{}, duplicateOf: map[string]bool{}, lateEvent: make([]bool, len(want.win)),
		loadedEvent: make([]bool, len(want.win))}
	session := p.Window.Kind == windows.SessionWindows
	for _, id := range want.windows {
		r := &chaosWindowRow{id: id}
		v.rows = append(v.rows, r)
		v.byID[id] = r
	}
	bad := &chaosWindowRow{id: "(malformed)"}
	revise := p.Window.Late == windows.LateRevise
	firstLate := len(want.win) - want.late
	for i, w := range want.win {
		if w >= 0 && (i < firstLate || revise) {
			v.rows[w].wantLoaded++
			v.rows[w].wantQty += int64(want.qty[i])
		}
	}

	// The source stream: sequence → generated event.
	stream, err := js.Stream(ctx, p.Source.Stream)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	v.streamMsg = info.State.Msgs
	seqEvent := make([]int32, last+1)
	for i := range seqEvent {
		seqEvent[i] = -1
	}
	eventSeq := make([]uint64, len(want.win))
	prefix := want.ids
	err = readStream(ctx, js, p.Source.Stream, p.Source.Subjects, true, func(m jetstream.Msg) error {
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		seq := meta.Sequence.Stream
		id := m.Headers().Get(jetstream.MsgIDHeader)
		i, err := strconv.Atoi(strings.TrimPrefix(id, prefix))
		if !strings.HasPrefix(id, prefix) || err != nil || i < 0 || i >= len(want.win) || seq > last {
			v.problem("source stream message %d has msg id %q: not one of the generated events", seq, id)
			return nil
		}
		if eventSeq[i] != 0 {
			v.problem("event %d was accepted twice by the source stream (sequences %d and %d): its msg id did not deduplicate", i, eventSeq[i], seq)
		}
		eventSeq[i] = seq
		seqEvent[seq] = int32(i)
		if w := want.win[i]; w >= 0 {
			r := v.rows[w]
			r.published++
			r.qtyPublished += int64(want.qty[i])
			if i >= firstLate {
				r.sentLate++
			}
		} else {
			bad.published++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read source stream: %w", err)
	}
	for i, seq := range eventSeq {
		if seq == 0 {
			v.problem("event %d (msg id %s) is not in the source stream: its publish was acknowledged, then lost", i, want.msgID(i))
		}
	}

	seen := make([]uint8, last+1)
	mark := func(seq uint64, where string) (int, bool) {
		if seq == 0 || seq > last || seqEvent[seq] < 0 {
			v.problem("%s holds source sequence %d, which is not a generated event", where, seq)
			return 0, false
		}
		seen[seq]++
		return int(seqEvent[seq]), true
	}
	winOf := func(i int) string {
		if w := want.win[i]; w >= 0 {
			return want.windows[w]
		}
		return "(malformed)"
	}

	// The table.
	db, release, err := wh.DB(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := db.QueryContext(ctx, `SELECT _source_seq, quantity, _window_start FROM `+p.Load.Table)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", p.Load.Table, err)
	}
	for rows.Next() {
		var seq, qty int64
		var start time.Time
		if err := rows.Scan(&seq, &qty, &start); err != nil {
			rows.Close()
			return nil, err
		}
		win := messages.WindowID(start)
		i, ok := mark(uint64(seq), "the table")
		if !ok {
			continue
		}
		r := v.byID[win]
		if r == nil && session && want.win[i] >= 0 && win > winOf(i) {
			// A pane after the event's own: its session was carried
			// there, into a pane that has no event of its own.
			r = &chaosWindowRow{id: win}
			v.rows = append(v.rows, r)
			v.byID[win] = r
		}
		if r == nil {
			v.problem("the table holds event %d (seq %d) in window %s, which no generated event belongs to", i, seq, win)
			continue
		}
		r.inTable++
		if session && want.win[i] >= 0 {
			// The session decides the pane (checked session by session in
			// verifySessions); carried sessions only move forward. The
			// event counts in its own pane's balance.
			if win < winOf(i) {
				v.problem("the table holds event %d (seq %d) in pane %s, before its own pane %s", i, seq, win, winOf(i))
			}
			r = v.rows[want.win[i]]
		} else if want := winOf(i); want != win {
			v.problem("the table holds event %d (seq %d) in window %s, want %s", i, seq, win, want)
		}
		if seen[seq] > 1 {
			r.dups++
		}
		if int64(want.qty[i]) != qty {
			v.problem("the table holds event %d (seq %d) with quantity %d, want %d", i, seq, qty, want.qty[i])
		}
		r.loaded++
		r.qtyAccounted += qty
		r.qtyLoaded += qty
		v.loadedEvent[i] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}

	// Dead letters: malformed events, and late events (late: dlq).
	err = readStream(ctx, js, messages.StreamDLQ, []string{messages.DLQSubject(p.Name), messages.DeadLetterFilter(p.Name)}, true, func(m jetstream.Msg) error {
		h := m.Headers()
		seq, _ := strconv.ParseUint(h.Get(messages.HeaderSourceSeq), 10, 64)
		i, ok := mark(seq, "the DLQ")
		if !ok {
			return nil
		}
		reason := h.Get(messages.HeaderReason)
		r := bad
		if w := want.win[i]; w >= 0 {
			r = v.rows[w]
		}
		if seen[seq] > 1 {
			r.dups++
		}
		r.dlq++
		switch {
		case reason == messages.ReasonLate:
			if want.win[i] < 0 || h.Get(messages.HeaderWindow) != winOf(i) {
				v.problem("event %d (seq %d) dead-lettered as late in window %q, want window %s", i, seq, h.Get(messages.HeaderWindow), winOf(i))
			}
			r.late++
			r.qtyAccounted += int64(want.qty[i])
			v.lateEvent[i] = true
		case want.win[i] >= 0:
			v.problem("well-formed event %d (seq %d) dead-lettered with reason %q", i, seq, reason)
		case reason != want.reason[i]:
			v.problem("malformed event %d (seq %d) dead-lettered with reason %q, want %q", i, seq, reason, want.reason[i])
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read dlq: %w", err)
	}
	// Late-drop markers (late: drop); none with this policy, counted anyway.
	err = readStream(ctx, js, messages.StreamDLQ, []string{messages.LateFilter(p.Name)}, true, func(m jetstream.Msg) error {
		seq, _ := strconv.ParseUint(m.Headers().Get(messages.HeaderSourceSeq), 10, 64)
		i, ok := mark(seq, "the late markers")
		if !ok {
			return nil
		}
		r := bad
		if w := want.win[i]; w >= 0 {
			r = v.rows[w]
		}
		if seen[seq] > 1 {
			r.dups++
		}
		r.dropped++
		r.qtyAccounted += int64(want.qty[i])
		v.lateEvent[i] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read late markers: %w", err)
	}

	// Every accepted event exactly once: none lost, none twice.
	for seq := uint64(1); seq <= last; seq++ {
		i := seqEvent[seq]
		if i < 0 {
			continue
		}
		switch {
		case seen[seq] == 0:
			v.lost++
			if v.lost <= 20 {
				v.problem("lost: event %d (seq %d, window %s) is neither in the table nor in the DLQ nor counted late", i, seq, winOf(int(i)))
			}
		case seen[seq] > 1:
			v.problem("duplicate: event %d (seq %d, window %s) is accounted for %d times", i, seq, winOf(int(i)), seen[seq])
		}
	}
	if v.lost > 20 {
		v.problem("lost: %d events in all", v.lost)
	}

	// Late or not: an event sent late (for a window already loaded) must be
	// dead-lettered as late (late: dlq), counted as late-dropped (drop), or
	// loaded in a revision (revise); a generated event must be loaded.
	wrong := 0
	for i, w := range want.win {
		if w < 0 || eventSeq[i] == 0 || seen[eventSeq[i]] != 1 {
			continue // malformed, or lost or doubled: reported above
		}
		var msg string
		switch {
		case i >= firstLate && revise && !v.loadedEvent[i]:
			msg = "was sent late for a loaded window, yet is not loaded in a revision"
		case i >= firstLate && !revise && !v.lateEvent[i]:
			msg = "was sent late for a loaded window, yet is not taken as late"
		case i < firstLate && v.lateEvent[i]:
			v.rows[w].genLate++
			msg = "was taken as late, though its time is within max_out_of_order of the events before it"
		default:
			continue
		}
		if wrong++; wrong <= 20 {
			v.problem("event %d (seq %d, window %s) %s", i, eventSeq[i], winOf(i), msg)
		}
	}
	if wrong > 20 {
		v.problem("%d events in all are late where they should not be, or the other way round", wrong)
	}

	v.rows = append(v.rows, bad)
	for _, r := range v.rows {
		if r.published != r.loaded+r.dlq+r.dropped {
			v.problem("window %s: published %d ≠ loaded %d + dead-lettered %d + late-dropped %d", r.id, r.published, r.loaded, r.dlq, r.dropped)
		}
		if r != bad && r.qtyPublished != r.qtyAccounted {
			v.problem("window %s: sum(quantity) published %d ≠ loaded + late %d", r.id, r.qtyPublished, r.qtyAccounted)
		}
		if r.dups != 0 {
			v.problem("window %s: %d duplicates", r.id, r.dups)
		}
		if r != bad && (r.loaded != r.wantLoaded || r.qtyLoaded != r.wantQty) {
			v.problem("window %s: the table holds %d events with sum(quantity) %d; the generator expects %d with %d", r.id, r.loaded, r.qtyLoaded, r.wantLoaded, r.wantQty)
		}
		v.total.published += r.published
		v.total.loaded += r.loaded
		v.total.dlq += r.dlq
		v.total.late += r.late
		v.total.dropped += r.dropped
		v.total.dups += r.dups
		v.total.qtyPublished += r.qtyPublished
		v.total.qtyAccounted += r.qtyAccounted
		v.total.sentLate += r.sentLate
		v.total.qtyLoaded += r.qtyLoaded
		v.total.wantLoaded += r.wantLoaded
		v.total.wantQty += r.wantQty
		v.total.genLate += r.genLate
		v.total.inTable += r.inTable
	}
	if bad.published != int64(want.malformed) {
		v.problem("%d malformed events in the source stream, generated %d", bad.published, want.malformed)
	}
	if v.total.sentLate != int64(want.late) {
		v.problem("%d late events in the source stream, published %d", v.total.sentLate, want.late)
	}
	// The DLQ and the late markers hold exactly the malformed events and
	// the events sent late (late: dlq or drop); generated events taken as
	// late are problems of their own above, counted here so that they are
	// not reported twice.
	wantDLQ, wantDropped := int64(want.malformed), int64(0)
	switch p.Window.Late {
	case windows.LateDLQ:
		wantDLQ += int64(want.late) + v.total.genLate
	case windows.LateDrop:
		wantDropped += int64(want.late) + v.total.genLate
	}
	if v.total.dlq != wantDLQ || v.total.dropped != wantDropped {
		v.problem("the DLQ holds %d dead letters and %d late-drop markers of the policy; want %d and %d (%d malformed, %d sent late, %d generated events late)",
			v.total.dlq, v.total.dropped, wantDLQ, wantDropped, want.malformed, want.late, v.total.genLate)
	}

	// Evidence that kills landed between a warehouse commit and its ack:
	// load results the ledger turned into "duplicate".
	err = readStream(ctx, js, messages.StreamResults, []string{messages.ResultSubject(p.Name)}, false, func(m jetstream.Msg) error {
		var res messages.LoadResult
		if err := messages.Decode(m.Headers().Get(messages.HeaderType), m.Data(), &res); err != nil {
			return err
		}
		v.results++
		switch res.Status {
		case messages.LoadDuplicate:
			v.dupLoads++
			v.duplicateOf[res.BatchID] = true
		case messages.LoadFailed:
			v.problem("load of batch %s failed: %s", res.BatchID, res.Error)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read load results: %w", err)
	}
	return v, nil
}

// readStream reads every message of stream on subjects, oldest first.
func readStream(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, headersOnly bool, fn func(jetstream.Msg) error) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	var total uint64
	for _, subj := range subjects {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
		if err != nil {
			return err
		}
		for _, n := range info.State.Subjects {
			total += n
		}
	}
	if total == 0 {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: subjects,
		DeliverPolicy: jetstream.DeliverAllPolicy, HeadersOnly: headersOnly, InactiveThreshold: 30 * time.Second})
	if err != nil {
		return err
	}
	var seen uint64
	// On a cluster a fetch can meet a consumer whose assignment a node has
	// not applied yet ("no responders"), or a leader change: the ordered
	// consumer goes on from the last message it delivered, so try again.
	transient := 0
	for seen < total {
		batch, err := cons.Fetch(int(min(total-seen, 10000)), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			if transient < 20 && retryRead(err) {
				transient++
				time.Sleep(500 * time.Millisecond)
				continue
			}
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			seen++
			if err := fn(m); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			if n == 0 && transient < 20 && retryRead(err) {
				transient++
				time.Sleep(500 * time.Millisecond)
				continue
			}
			return err
		}
		if n == 0 {
			return fmt.Errorf("%s: read %d of %d messages, then nothing more", stream, seen, total)
		}
	}
	return nil
}

// retryRead reports whether a failed fetch of the checks may succeed again.
func retryRead(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "leadership")
}

// crossCheck holds windrow's own reconciliation against the independent one.
func crossCheck(r *inspect.Reconciliation, v *chaosVerification, events int) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for _, p := range r.Problems {
		add("windrow reconcile: %s", p)
	}
	if r.Published != int64(events) {
		add("windrow reconcile: published %d, generated %d", r.Published, events)
	}
	if r.InFlight != 0 || r.Staging != 0 {
		add("windrow reconcile: %d in flight, %d staged rows after everything settled", r.InFlight, r.Staging)
	}
	if r.Rows != v.total.loaded {
		add("windrow reconcile: %d rows loaded, the table holds %d", r.Rows, v.total.loaded)
	}
	if r.DeadLetters != v.total.dlq {
		add("windrow reconcile: %d dead letters, the DLQ holds %d for the policy", r.DeadLetters, v.total.dlq)
	}
	if r.LateDropped != v.total.dropped {
		add("windrow reconcile: %d late-dropped, %d markers", r.LateDropped, v.total.dropped)
	}
	seen := map[string]bool{}
	for _, w := range r.Windows {
		id := w.State.ID()
		seen[id] = true
		for _, p := range w.Problems {
			add("windrow reconcile: window %s: %s", id, p)
		}
		row := v.byID[id]
		if row == nil {
			add("window %s has a state (rows %d, carried in %d) but neither a generated event nor a row in the table", id, w.State.Rows, w.State.BaseRows)
			continue
		}
		row.stagedDups = w.State.Duplicates
		row.revision = w.State.Revision
		row.revisionRows = w.State.Rows
		if w.State.Status != messages.StatusLoaded {
			add("window %s is %s", id, w.State.Status)
		}
		if n := w.State.Next; n != nil {
			add("window %s: revision %d is loaded, yet %d late rows wait for the next one", id, w.State.Revision, n.StagedRows)
		}
		// In load mode replace a revision's batches are the complete
		// window; otherwise the table also holds every earlier revision's.
		var earlier int64
		if w.State.Revision > 0 && r.Policy.Load.Mode != windows.LoadReplace {
			earlier = w.State.PriorRows
		}
		if w.Warehouse != row.inTable || w.State.Rows+earlier != row.inTable || w.State.LoadedRows+earlier != row.inTable {
			add("window %s revision %d: state rows %d, loaded rows %d, earlier revisions' rows %d, warehouse count %d; the table holds %d",
				id, w.State.Revision, w.State.Rows, w.State.LoadedRows, earlier, w.Warehouse, row.inTable)
		}
		if w.Late != row.late+row.dropped {
			add("window %s: windrow counts %d late, the DLQ and markers hold %d", id, w.Late, row.late+row.dropped)
		}
	}
	for id := range v.byID {
		if !seen[id] {
			add("window %s has generated events but no state", id)
		}
	}
	return out
}

// chaosReport renders a run.
type chaosReport struct {
	seed     uint64
	events   int
	duration time.Duration
	monkey   *monkey
	procs    []*proc
	roles    map[string][]*proc
	stores   string // where objects and tables are
	policies []*chaosPolicyReport
	problems []string
}

// chaosPolicyReport is one policy's part of a run's report.
type chaosPolicyReport struct {
	policy    *windows.Policy
	events    int // generated and late
	reconcile *inspect.Reconciliation
	verify    *chaosVerification
	late      *lateRounds    // nil without late events (-chaos.late-share 0, or session windows)
	sessions  *chaosSessions // nil unless session windows
}

func (r *chaosReport) String() string {
	var b strings.Builder
	kills := map[string]int{}
	total := 0
	for role, ps := range r.roles {
		for _, p := range ps {
			_, k, _, _ := p.stats()
			kills[role] += k
			total += k
		}
	}
	restarts := map[string][]string{}
	aimed := map[string]int{}
	for _, k := range r.monkey.records {
		if k.server != "" {
			what := k.mode
			if k.target != k.server {
				what += " " + k.target // a cluster's node
			}
			restarts[k.server] = append(restarts[k.server], what)
		} else if k.aimed && k.mode != modeRandom.name {
			aimed[k.role+" "+k.mode]++
		}
	}
	var names []string
	for _, pr := range r.policies {
		names = append(names, fmt.Sprintf("%s: %d events, %d windows", pr.policy.Name, pr.events, len(pr.verify.rows)-1))
	}
	fmt.Fprintf(&b, "windrow chaos run: seed %d, %d events, %d policies (%s), %s in all; %s\n", r.seed, r.events, len(r.policies), strings.Join(names, "; "), r.duration.Round(time.Second), r.stores)
	fmt.Fprintf(&b, "kills (SIGKILL): %d — collector %d, compactor %d, loader %d\n",
		total, kills["collector"], kills["compactor"], kills["loader"])
	for _, sv := range r.monkey.servers {
		fmt.Fprintf(&b, "%s server restarts: %d (%s)\n", sv.name, len(restarts[sv.name]), strings.Join(restarts[sv.name], ", "))
	}
	fmt.Fprintf(&b, "kills that landed where aimed:\n")
	for _, role := range []string{"collector", "compactor", "loader"} {
		for _, m := range roleModes[role] {
			if m.name == modeRandom.name {
				continue
			}
			fmt.Fprintf(&b, "  %-9s %-14s %d  (%s)\n", role, m.name, aimed[role+" "+m.name], m.doc)
		}
	}
	terms := 0
	for _, k := range r.monkey.records {
		if strings.HasPrefix(k.mode, "sigterm") {
			terms++
		}
	}
	fmt.Fprintf(&b, "graceful stops (SIGTERM), each exited with status 0: %d\n", terms)
	for _, role := range []string{"collector", "compactor", "loader"} {
		m := roleTermModes[role]
		fmt.Fprintf(&b, "  %-9s %-15s %d  (%s)\n", role, m.name, aimed[role+" "+m.name], m.doc)
	}
	for _, p := range r.procs {
		lives, _, unplanned, _ := p.stats()
		if len(unplanned) > 0 {
			fmt.Fprintf(&b, "%s: %d lives, %d exits nobody asked for (restarted): %s\n", p.name, lives, len(unplanned), strings.Join(unplanned, "; "))
		}
	}
	for _, pr := range r.policies {
		pr.write(&b)
	}
	fmt.Fprintf(&b, "\nchaos actions (replay with -chaos.seed=%d):\n", r.seed)
	for _, k := range r.monkey.records {
		fmt.Fprintf(&b, "  %2d %7s %-11s %-13s waited %6s then %6s, down %6s  %s\n", k.n, k.at.Round(100*time.Millisecond), k.target, k.mode,
			k.waited.Round(time.Millisecond), k.delay.Round(100*time.Microsecond), k.down.Round(time.Millisecond), k.note)
	}
	if len(r.problems) == 0 {
		fmt.Fprintf(&b, "\nPASS: for each policy, every accepted event is loaded once or dead-lettered once, none lost, none twice\n")
		for _, pr := range r.policies {
			if pr.sessions != nil {
				fmt.Fprintf(&b, "PASS: %s: the table's sessions are the independent cut of the accepted events, each loaded once, whole, with the pane it ends in\n", pr.policy.Name)
			}
		}
	} else {
		fmt.Fprintf(&b, "\nFAIL: %d problems\n", len(r.problems))
	}
	return b.String()
}

// write renders the policy's part of the report: its windows and reconciliations.
func (r *chaosPolicyReport) write(b *strings.Builder) {
	v := r.verify
	p := r.policy
	fmt.Fprintf(b, "\npolicy %s (source %s %s, %s windows, late: %s, load into %s, mode %s): %d events\n", p.Name, p.Source.Stream, strings.Join(p.Source.Subjects, " "),
		p.Window.Kind, p.Window.Late, p.Load.Table, p.Load.Mode, r.events)
	var staged int64
	for _, row := range v.rows {
		staged += row.stagedDups
	}
	fmt.Fprintf(b, "redelivery absorbed: compaction dropped %d rows staged twice (or, in a revision, loaded before) in the windows' last runs; %d of %d load results were \"duplicate\" (a batch committed, then its command delivered again)\n",
		staged, v.dupLoads, v.results)
	revised, maxRev, revisions := 0, 0, 0
	v.total.revisionRows = 0
	for _, row := range v.rows {
		if row.revision > 0 {
			revised++
		}
		revisions += row.revision
		maxRev = max(maxRev, row.revision)
		v.total.revisionRows += row.revisionRows
	}
	v.total.revision = revisions // the total line: revisions in all
	if l := r.late; l != nil {
		fmt.Fprintf(b, "late: %s: %d late events for loaded windows in %d rounds (%d publishes retried), %d dead-lettered as late, %d late-dropped; %d windows revised, %d revisions in all, highest revision %d\n",
			p.Window.Late, len(l.times), len(l.log), l.retries, v.total.late, v.total.dropped, revised, revisions, maxRev)
		for k, rd := range l.log {
			fmt.Fprintf(b, "  round %d at %7s: %5d events for %s\n", k+1, rd.at.Round(100*time.Millisecond), rd.events, strings.Join(rd.windows, " "))
		}
	}
	fmt.Fprintf(b, "\nper window: published = loaded + dead-lettered + late-dropped (late: dead-lettered as late, part of dead-lettered; sent late: published for a loaded window, part of published; expected: the generator's events of the window, with late: revise its late events too; rev: final revision, its rows: the batches of that revision)\n")
	fmt.Fprintf(b, "%-17s %9s %9s %9s %9s %13s %12s %5s %10s %13s %13s %10s %12s %3s %9s %s\n", "window", "published", "sent late", "loaded", "expected", "dead-lettered", "late-dropped", "late", "duplicates", "qty published", "qty accounted", "qty loaded", "qty expected", "rev", "its rows", "")
	line := func(row *chaosWindowRow) {
		ok := "ok"
		if row.published != row.loaded+row.dlq+row.dropped || row.qtyPublished != row.qtyAccounted || row.dups != 0 ||
			(row.id != "(malformed)" && (row.loaded != row.wantLoaded || row.qtyLoaded != row.wantQty)) {
			ok = "MISMATCH"
		}
		fmt.Fprintf(b, "%-17s %9d %9d %9d %9d %13d %12d %5d %10d %13d %13d %10d %12d %3d %9d %s\n", row.id, row.published, row.sentLate, row.loaded, row.wantLoaded, row.dlq, row.dropped, row.late, row.dups,
			row.qtyPublished, row.qtyAccounted, row.qtyLoaded, row.wantQty, row.revision, row.revisionRows, ok)
	}
	for _, row := range v.rows {
		line(row)
	}
	v.total.id = "total"
	line(&v.total)
	if v.lost > 0 {
		fmt.Fprintf(b, "LOST: %d events\n", v.lost)
	}
	if v.total.genLate > 0 {
		fmt.Fprintf(b, "generated events taken as late: %d (each reported as a problem)\n", v.total.genLate)
	}
	if r.sessions != nil {
		fmt.Fprintf(b, "\n%s\n", r.sessions)
	}
	ok := "OK"
	if !r.reconcile.OK() {
		ok = "PROBLEMS"
	}
	fmt.Fprintf(b, "windrow reconcile %s: %s — %s\n", p.Name, r.reconcile.Summary(), ok)
}
