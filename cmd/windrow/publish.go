package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fastjson"

	"github.com/windrow/windrow/loadtest"
	"github.com/windrow/windrow/ops/flush"
)

func runPublish(ctx context.Context, args []string) error {
	return publish(ctx, os.Stdin, os.Stderr, args)
}

// publish runs `windrow publish ARGS`, reading --file - from stdin and
// writing progress and the report to w.
func publish(ctx context.Context, stdin io.Reader, w io.Writer, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	subject := fs.String("subject", "", "subject to publish to (required), e.g. events.sales.store-001")
	file := fs.String("file", "-", "NDJSON file, one event per line; - for standard input")
	idMode := fs.String("msg-id", idPosition, msgIDHelp)
	flushEnd := fs.Bool("flush", false, "at the end, declare the input of the policies reading --subject complete (as `windrow flush`), so their last windows close now rather than by the idle rule; leave it off while later files of a replay still follow")
	inputID := fs.String("input-id", "", "the input's identity for --msg-id position, e.g. the upstream batch's name: the same NAME and line number give the same id on every run (default: a file's size and content; random for standard input)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var errs []error
	if *subject == "" {
		errs = append(errs, errors.New("--subject is required"))
	}
	ids, err := parseMsgIDMode(*idMode, *subject)
	if err != nil {
		errs = append(errs, err)
	} else if *inputID != "" && !ids.needsInput() {
		errs = append(errs, fmt.Errorf("--input-id: only --msg-id position (and field:NAME, for lines without the field) use it, not --msg-id %s", *idMode))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	in, total, input, err := openInput(stdin, *file, *inputID, ids.needsInput())
	if err != nil {
		return err
	}
	defer in.Close()
	if ids.needsInput() {
		ids.setInput(input)
	}
	if ids.needsInput() && !input.stable {
		fmt.Fprintf(w, "note: %s has no stable identity, so its Nats-Msg-Ids are random for this run: publishing it again will not be deduplicated against this run. Pass --input-id NAME (e.g. the upstream batch's name) for ids that survive a re-run.\n", inputName(*file))
	}

	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	target := lookupStream(ctx, s.JS, *subject)

	// Lines are read into memory in chunks so that publishing stays async.
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	prog := newProgressTo(w)
	start := time.Now()
	var sent, bytesRead, lineNo int64
	var parser fastjson.Parser
	tally := publishTally{stream: target}
	for {
		var lines [][]byte
		var numbers []int64
		for len(lines) < 10000 && sc.Scan() {
			lineNo++
			line := sc.Bytes()
			bytesRead += int64(len(line)) + 1
			if len(strings.TrimSpace(string(line))) == 0 {
				continue
			}
			lines = append(lines, append([]byte(nil), line...))
			numbers = append(numbers, lineNo)
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read %s line %d: %w", inputName(*file), lineNo+1, err)
		}
		if len(lines) == 0 {
			break
		}
		base := sent
		pub := &loadtest.Publisher{JS: s.JS, OnAck: func(_ int, ack *jetstream.PubAck, retried bool) {
			tally.add(ack, retried)
		}, OnProgress: func(n int) {
			done := base + int64(n)
			rate := float64(done) / time.Since(start).Seconds()
			if total > 0 {
				prog.update("published %d events (%.0f%% of %s, %.0f events/s)", done, 100*float64(bytesRead)/float64(total), *file, rate)
			} else {
				prog.update("published %d events (%.0f events/s)", done, rate)
			}
		}}
		err := pub.Publish(ctx, len(lines), func(i int) (string, []byte, string) {
			return *subject, lines[i], ids.id(numbers[i], lines[i], &parser)
		})
		if err != nil {
			return fmt.Errorf("publish %s to %s: %w", inputName(*file), *subject, err)
		}
		sent += int64(len(lines))
	}
	took := time.Since(start)
	prog.done("published %d events to %s in %s (%.0f events/s): %d stored, %d treated as duplicates by the stream",
		sent, *subject, took.Round(time.Millisecond), float64(sent)/took.Seconds(), tally.stored(), tally.duplicates())
	tally.explain(w, ids)
	if ids.needsInput() && !input.stable {
		fmt.Fprintf(w, "note: the Nats-Msg-Ids were random for this run (%s has no stable identity): publishing it again will store every event again; pass --input-id NAME to avoid that.\n", inputName(*file))
	}
	if *flushEnd {
		if target.err != nil {
			return fmt.Errorf("--flush: %w", target.err)
		}
		names, err := flush.PoliciesFor(ctx, s.Policies, target.name, *subject)
		if err != nil {
			return fmt.Errorf("--flush: %w", err)
		}
		if len(names) == 0 {
			fmt.Fprintf(w, "--flush: no stored policy reads %s from stream %s: nothing flushed\n", *subject, target.name)
			return nil
		}
		return requestFlush(ctx, s, w, "windrow publish --flush", names, false)
	}
	return nil
}

// inputName names --file in messages.
func inputName(file string) string {
	if file == "-" {
		return "standard input"
	}
	return file
}

// openInput opens --file and works out its identity (only when the ids need
// it: identifying a file reads its ends). total is its size, 0 when unknown.
func openInput(stdin io.Reader, file, inputID string, identify bool) (in io.ReadCloser, total int64, id inputIdentity, err error) {
	in = io.NopCloser(stdin)
	var regular *os.File
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, 0, id, fmt.Errorf("open input: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, id, fmt.Errorf("open input: %w", err)
		}
		if st.Mode().IsRegular() {
			total, regular = st.Size(), f
		}
		in = f
	}
	switch {
	case !identify:
	case inputID != "":
		id = namedInput(inputID)
	case regular != nil:
		id, err = fileIdentity(regular, total)
	default:
		// Standard input, a pipe or a device: nothing to recognise it by.
		id, err = randomInput(inputName(file))
	}
	if err != nil {
		in.Close()
		return nil, 0, id, err
	}
	return in, total, id, nil
}

// targetStream is the stream a subject's messages go to, as far as the
// publisher may know it.
type targetStream struct {
	name string
	// window is its duplicate window.
	window time.Duration
	// lastSeq was its last sequence before publishing began: a duplicate's
	// PubAck carries the sequence of the message it repeats, and this tells
	// a message stored before the run from one stored during it.
	lastSeq uint64
	// err is why the stream could not be looked up (e.g. no permission for
	// the JetStream API); the fields above are then unknown.
	err error
}

func lookupStream(ctx context.Context, js jetstream.JetStream, subject string) targetStream {
	name, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		return targetStream{err: fmt.Errorf("find the stream of %s: %w", subject, err)}
	}
	st, err := js.Stream(ctx, name)
	if err != nil {
		return targetStream{name: name, err: fmt.Errorf("stream %s: %w", name, err)}
	}
	info := st.CachedInfo()
	return targetStream{name: name, window: info.Config.Duplicates, lastSeq: info.State.LastSeq}
}

// publishTally counts the stream's answers to one run's publishes.
type publishTally struct {
	stream targetStream
	// fresh are the publishes the stream stored.
	fresh int64
	// retried are duplicates answering a publish sent again after an error,
	// of a message stored during this run: its earlier attempt, whose ack was
	// lost, stored it (with hash or field ids possibly an identical line
	// instead; the count errs on the side of stored only for such retries).
	retried int64
	// before are duplicates of messages stored before this run began.
	before int64
	// during are duplicates of messages stored during this run.
	during int64
	// unknown are duplicates that could not be placed (no stream info).
	unknown int64
}

func (t *publishTally) add(ack *jetstream.PubAck, retried bool) {
	switch {
	case !ack.Duplicate:
		t.fresh++
	case t.stream.err == nil && ack.Sequence <= t.stream.lastSeq:
		t.before++
	case retried:
		t.retried++
	case t.stream.err == nil:
		t.during++
	default:
		t.unknown++
	}
}

func (t *publishTally) stored() int64     { return t.fresh + t.retried }
func (t *publishTally) duplicates() int64 { return t.before + t.during + t.unknown }

// explain says, loudly, why events were not stored. The exit status stays 0:
// the stream did what its duplicate window is for, and a re-run is expected
// to end here; but it may also be events lost to a poor choice of ids.
func (t *publishTally) explain(w io.Writer, ids *msgIDs) {
	if t.retried > 0 {
		fmt.Fprintf(w, "  (%d of the stored were stored by an attempt whose ack was lost; their retry was answered as a duplicate of it)\n", t.retried)
	}
	if t.duplicates() == 0 {
		return
	}
	stream, window := "the stream", "its duplicate window"
	if t.stream.err == nil {
		stream = "the stream " + t.stream.name
		window = "its duplicate window of " + t.stream.window.String()
	}
	fmt.Fprintf(w, "WARNING: %d events were NOT stored: %s treated them as duplicates (same Nats-Msg-Id within %s):\n", t.duplicates(), stream, window)
	if t.before > 0 {
		fmt.Fprintf(w, "  %d repeat messages it stored before this run began: %s\n", t.before, ids.reasonBefore())
	}
	if t.during > 0 {
		fmt.Fprintf(w, "  %d repeat messages stored during this run: %s\n", t.during, ids.reasonDuring())
	}
	if t.unknown > 0 {
		fmt.Fprintf(w, "  %d of them: %s (when they were stored is unknown: %v)\n", t.unknown, ids.reasonUnknown(), t.stream.err)
	}
}

func (m *msgIDs) reasonBefore() string {
	switch {
	case m.mode == idHash:
		return "identical lines on this subject were published before (--msg-id hash)"
	case m.field != "":
		return fmt.Sprintf("events with the same %s were published before", m.field)
	}
	return "this input was published before — expected when re-publishing it after a crash"
}

func (m *msgIDs) reasonDuring() string {
	switch {
	case m.mode == idHash:
		return "identical lines in this input — with --msg-id hash, identical lines within the duplicate window are dropped (the default --msg-id position keeps them)"
	case m.field != "":
		return fmt.Sprintf("lines with the same %s in this input — with --msg-id field:%s, they count as one event", m.field, m.field)
	}
	return "someone else published this input at the same time"
}

func (m *msgIDs) reasonUnknown() string {
	switch {
	case m.mode == idHash:
		return "identical lines are the likely reason (--msg-id hash drops identical lines within the duplicate window; the default --msg-id position keeps them)"
	case m.field != "":
		return fmt.Sprintf("events with the same %s, in this input or published before", m.field)
	}
	return "this input was published before (a re-run), or at the same time by someone else"
}
