package compactor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/fanin"
	"github.com/windrow/windrow/pipeline/loads"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/pipeline/staging"
	"github.com/windrow/windrow/pipeline/windowstate"
	"github.com/windrow/windrow/windows"
)

// errLostLease means another compactor took the window over meanwhile.
var errLostLease = errors.New("lease lost")

// BatchPrefix is the Hive-style directory of a window run's batches.
func BatchPrefix(policy string, loc *time.Location, st *messages.WindowState) string {
	return loads.BatchPrefix(policy, loc, st.WindowStart, st.Revision)
}

// compact turns a sealed window owned by this instance into batches and load commands.
func (s *Service) compact(ctx context.Context, st *messages.WindowState) (err error) {
	p := s.cfg.Policy
	start := time.Now()
	// Session windows: a pane waits for the one before it (its carried sessions).
	var panes sessionPanes
	if s.layout.IsSession() {
		if panes, err = s.panes(ctx, st); err != nil {
			return err
		}
	}
	ctx, span := s.tracer.Start(telemetry.RunContext(ctx, st.TraceParent), "compactor.compact", trace.WithAttributes(runAttrs(p.Name, st)...))
	defer func() { endSpan(span, err) }()
	in, err := s.readInputs(ctx, st, panes)
	defer in.close()
	if err != nil {
		return err
	}
	prefix := BatchPrefix(p.Name, p.Location(), st)
	out, err := s.merge(ctx, st, panes, in, prefix)
	if err != nil {
		return err
	}
	manifestKey, manifest, err := s.writeManifest(ctx, st, prefix, in, out)
	if err != nil {
		return err
	}
	var batchBytes int64
	for _, b := range out.refs {
		batchBytes += b.Bytes
	}
	next, err := s.markCompacted(ctx, st, windowstate.Compaction{
		Segments: int64(len(in.regs)), StagedRows: in.staged, BaseRows: in.baseRows, Rows: out.loadRows(),
		Duplicates: out.stats.Duplicates, KeyOverflow: out.overflow, CarryRows: out.carried, Carry: out.carryKey,
		Batches: len(out.refs), BatchBytes: batchBytes, Manifest: manifestKey,
		// Nothing new for the table (a revision of redelivered events only):
		// the window is LOADED as it is, without a load.
		Unchanged: st.Revision > 0 && out.stats.Rows-out.overflow == in.baseRows,
	})
	if err != nil {
		return err
	}
	if out.carried > 0 {
		// The sessions carried out are loaded with the next pane: make sure
		// it exists (a crash before this is repaired by the sweep).
		if err := s.openNextPane(ctx, next); err != nil {
			return err
		}
	}
	if next.Status == messages.StatusLoaded {
		s.log.InfoContext(ctx, "window has nothing new to load", "window", st.ID(), "revision", st.Revision,
			"rows", out.stats.Rows, "duplicates", out.stats.Duplicates)
		s.cleanup(ctx, next)
		s.emitRun(ctx, next, nil)
		return nil
	}
	span.SetAttributes(attribute.Int64("windrow.rows", out.stats.Rows), attribute.Int64("windrow.duplicates", out.stats.Duplicates),
		attribute.Int("windrow.batches", len(out.refs)), attribute.Int("windrow.segments", len(in.regs)))
	s.log.InfoContext(ctx, "compacted window", "window", st.ID(), "segments", len(in.regs), "rows", out.stats.Rows, "duplicates", out.stats.Duplicates,
		"batches", len(out.refs), "took", time.Since(start).Round(time.Millisecond))
	return s.publishLoads(ctx, next, manifest)
}

// compactInputs are what a window run reads: its staged segments and, for a
// revision or a session pane, the rows it starts from.
type compactInputs struct {
	regs []staging.Registration
	// segments are the staged segments, opened (and verified) only when
	// the merge reaches them: a window may have more than can be open.
	segments []fanin.Input
	// files are merged with the segments, open throughout: the previous
	// revision's batches (mode replace) and the sessions carried in from
	// the pane before.
	files []*parquet.File
	// known are the batches of earlier revisions (modes append and merge):
	// rows found there are not loaded again.
	known     []*parquet.File
	staged    int64 // rows in the segments, duplicates included
	baseRows  int64 // rows merged in from prior batches or carried sessions
	knownRows int64
	// prior are the earlier revisions' batches (revisions only): merged in
	// as files (replace) or known.
	prior   []messages.BatchRef
	closers []func()
}

func (in *compactInputs) close() {
	for _, c := range in.closers {
		c()
	}
}

// readInputs opens what the window run of st reads (read_segments span).
// The caller closes the inputs, also after an error. A window that can never
// be compacted (registrations lost, segments of an incompatible policy
// version) is failed here.
func (s *Service) readInputs(ctx context.Context, st *messages.WindowState, panes sessionPanes) (in *compactInputs, err error) {
	p := s.cfg.Policy
	in = &compactInputs{}
	_, read := s.tracer.Start(ctx, "compactor.read_segments")
	defer func() {
		if err != nil {
			endSpan(read, err)
		}
	}()
	if in.regs, err = staging.ReadRegistrations(ctx, s.cfg.JS, p.Name, st.ID(), st.RevisionBase, st.LastSegmentSeq); err != nil {
		return in, err
	}
	read.SetAttributes(attribute.Int("windrow.segments", len(in.regs)))
	if int64(len(in.regs)) < st.Segments {
		// Registrations the window state counted are gone from the stream:
		// compacting would silently drop their rows.
		return in, s.failWindow(ctx, st, fmt.Errorf("window %s: state counts %d registered segments, the segments stream holds %d", st.ID(), st.Segments, len(in.regs)))
	}
	in.segments = make([]fanin.Input, 0, len(in.regs))
	for _, r := range in.regs {
		in.segments = append(in.segments, s.segmentInput(r))
		in.staged += r.Rows
	}
	// A revision also reads the batches of earlier runs: merged in (replace)
	// or as known rows that are not loaded again (append, merge).
	if st.Revision > 0 {
		if in.prior, err = loads.Prior(ctx, s.cfg.Store, st); err != nil {
			return in, err
		}
		prior, rows, closePrior, err := s.openPrior(ctx, st, in.prior)
		if err != nil {
			return in, err
		}
		in.closers = append(in.closers, closePrior)
		if p.Load.Mode == windows.LoadReplace {
			in.files = append(prior, in.files...)
			in.baseRows = rows
		} else {
			in.known, in.knownRows = prior, rows
		}
		read.SetAttributes(attribute.Int("windrow.prior_batches", len(in.prior)), attribute.Int64("windrow.prior_rows", rows))
	}
	if panes.carryIn != "" {
		f, closeCarry, err := s.openFile(ctx, panes.carryIn, "")
		if err != nil {
			return in, fmt.Errorf("carried sessions %s: %w", panes.carryIn, err)
		}
		in.closers = append(in.closers, func() { closeCarry() })
		in.files = append(in.files, f)
		in.baseRows = panes.carryInRows
		read.SetAttributes(attribute.Int64("windrow.carried_in_rows", in.baseRows))
	}
	read.SetAttributes(attribute.Int64("windrow.staged_rows", in.staged))
	read.End()
	return in, nil
}

// segmentFault is a segment that can never be compacted: its window fails
// with err.
type segmentFault struct{ err error }

func (e *segmentFault) Error() string { return e.err.Error() }
func (e *segmentFault) Unwrap() error { return e.err }

// segmentInput opens and verifies the segment of r when the merge reaches
// it. A segment that is not what its collector wrote, or that this policy
// version cannot read, is a *segmentFault.
func (s *Service) segmentInput(r staging.Registration) fanin.Input {
	return fanin.Input{Name: r.SegmentID, Open: func(ctx context.Context) (*parquet.File, func() error, error) {
		f, closeFile, err := s.openFile(ctx, r.Object, r.SHA256)
		switch {
		case errors.Is(err, objstore.ErrChecksum):
			// The segment's bytes are not the ones its collector wrote:
			// compacting would load damaged or other rows.
			return nil, nil, &segmentFault{fmt.Errorf("segment %s: %w", r.SegmentID, err)}
		case errors.Is(err, records.ErrSchemaMismatch):
			// Staged under a policy version this one cannot read (a type
			// changed, a required field added): retrying cannot help.
			return nil, nil, &segmentFault{fmt.Errorf("segment %s (staged under policy version %d) does not fit policy version %d: %w",
				r.SegmentID, r.PolicyVersion, s.cfg.Policy.Version, err)}
		case err != nil:
			return nil, nil, fmt.Errorf("segment %s: %w", r.SegmentID, err)
		}
		return f, closeFile, nil
	}}
}

// mergeOutcome is what the merge of a window run wrote.
type mergeOutcome struct {
	stats    records.MergeStats
	refs     []messages.BatchRef
	overflow int64  // rows of keys over the cap, dead-lettered
	carryKey string // the sessions carried into the next pane, "" if none
	carried  int64  // rows in carryKey
}

// loadRows are the rows the window's batches hold for the table.
func (o *mergeOutcome) loadRows() int64 { return o.stats.Rows - o.overflow - o.carried }

// merge runs the k-way merge of the sorted inputs that drops a source
// sequence seen before (dedup), written out as batches under prefix (child
// spans of merge_dedup); session panes cut sessions and carry the open ones
// out. With more segments than MergeFanIn or MergeMemory allow open at
// once, they are first merged in passes into intermediate runs (fanin). It
// checks that every input row is accounted for.
func (s *Service) merge(ctx context.Context, st *messages.WindowState, panes sessionPanes, in *compactInputs, prefix string) (*mergeOutcome, error) {
	p := s.cfg.Policy
	mctx, span := s.tracer.Start(ctx, "compactor.merge_dedup")
	bw := &batchWriter{ctx: mctx, s: s, st: st, prefix: prefix, lastRenew: time.Now(), known: map[string]bool{},
		ownBytes: int64(p.Output.TargetFileSize) / KeyFileDivisor}
	if s.layout.HasKey() && !s.layout.IsSession() {
		bw.sorted = p.Key
	}
	for _, b := range in.prior {
		// Keys loaded before stay admitted: a key's own files, or the
		// keys of a shared file.
		if b.Key != "" {
			bw.known[b.Key] = true
		}
		for _, k := range b.Keys {
			bw.known[k] = true
		}
	}
	write := bw.write
	var carry *carryWriter
	var cutter *sessionCutter
	if s.layout.IsSession() {
		carry = &carryWriter{ctx: mctx, s: s, key: prefix + "/carry.parquet"}
		cutter = &sessionCutter{layout: s.layout, gap: p.Window.Gap.D().Microseconds(), paneEnd: st.WindowEnd.UnixMicro(),
			carryOut: panes.carryOut, emit: bw.writeRun, carry: carry.write}
		write = cutter.add
	}
	out := &mergeOutcome{}
	fan := fanin.Config{Layout: s.layout, FanIn: s.cfg.MergeFanIn, Memory: s.cfg.MergeMemory, Dir: s.cfg.MergeDir,
		Progress: func(context.Context) error { return bw.keepLease() }}
	stats, report, err := fanin.Merge(mctx, fan, in.known, in.files, in.segments, write)
	span.SetAttributes(attribute.Int("windrow.merge_passes", report.Passes), attribute.Int("windrow.merge_runs", report.Runs),
		attribute.Int("windrow.merge_max_open", report.MaxOpen))
	if err == nil && cutter != nil {
		if err = cutter.flush(); err == nil {
			out.carryKey, err = carry.finish()
		}
	}
	if err == nil {
		err = bw.finish()
	}
	if err != nil {
		bw.abort()
		if carry != nil {
			carry.abort()
		}
		var fault *segmentFault
		if errors.As(err, &fault) {
			endSpan(span, err)
			return nil, s.failWindow(ctx, st, fault.err)
		}
		err = fmt.Errorf("compact window %s: %w", st.ID(), err)
		endSpan(span, err)
		if errors.Is(err, errKeyOverflow) {
			return nil, s.failWindow(ctx, st, err)
		}
		return nil, err
	}
	out.stats, out.refs, out.overflow = stats, bw.refs, int64(len(bw.overflow))
	if out.overflow > 0 {
		// Before the window is COMPACTED: a crash here republishes the same
		// records (same msg ids) on the retry.
		if err := s.deadLetterOverflow(ctx, st, bw.overflow); err != nil {
			endSpan(span, err)
			return nil, err
		}
	}
	span.SetAttributes(attribute.Int64("windrow.rows", stats.Rows), attribute.Int64("windrow.duplicates", stats.Duplicates),
		attribute.Int("windrow.batches", len(bw.refs)))
	span.End()
	if stats.Rows+stats.Duplicates != in.staged+in.baseRows || stats.Known != in.knownRows {
		return nil, fmt.Errorf("compact window %s: merged %d rows + %d duplicates (%d known), segments hold %d, earlier batches %d",
			st.ID(), stats.Rows, stats.Duplicates, stats.Known, in.staged, in.baseRows+in.knownRows)
	}
	if out.carryKey != "" {
		out.carried = carry.rows
	}
	return out, nil
}

// writeManifest writes the run's batch manifest next to its batches and
// returns its key: the list of the run's batches (the window state only
// counts them) and of the earlier revisions' batches it was made with.
func (s *Service) writeManifest(ctx context.Context, st *messages.WindowState, prefix string, in *compactInputs, out *mergeOutcome) (string, *messages.BatchManifest, error) {
	p := s.cfg.Policy
	manifest := &messages.BatchManifest{
		Policy: p.Name, PolicyVersion: p.Version, WindowStart: st.WindowStart, WindowEnd: st.WindowEnd, Revision: st.Revision,
		Table: p.Load.Table, Columns: records.Columns(s.cfg.Policy), Batches: out.refs, Prior: in.prior, Rows: out.loadRows(), Duplicates: out.stats.Duplicates,
		Segments: len(in.regs), CreatedAt: time.Now().UTC(),
	}
	data, err := messages.Encode(manifest)
	if err != nil {
		return "", nil, err
	}
	key := prefix + "/manifest.json"
	if _, err := s.cfg.Store.Put(ctx, key, data); err != nil {
		return "", nil, err
	}
	return key, manifest, nil
}

// markCompacted records the run's outcome in the window's state
// (windowstate.Compacted); errLostLease if another compactor owns the
// window now.
func (s *Service) markCompacted(ctx context.Context, st *messages.WindowState, made windowstate.Compaction) (*messages.WindowState, error) {
	now := s.cfg.Now().UTC()
	lost := false
	next, err := s.cfg.States.Update(ctx, st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		out, err := windowstate.Compacted(cur, now, s.cfg.Instance, made)
		lost = errors.Is(err, windowstate.ErrRefused)
		if err != nil {
			return nil, noWrite(err)
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	if lost {
		return nil, fmt.Errorf("compact window %s: %w", st.ID(), errLostLease)
	}
	s.stats.compacted.Add(1)
	return next, nil
}

// openFile opens a Parquet object of the policy (a segment, a batch, a
// carry file) with the compactor's layout; close releases it. With sha (its
// writer's hex SHA-256) the object is verified first, and read only if it
// holds the bytes that were written (else an error wrapping
// objstore.ErrChecksum).
func (s *Service) openFile(ctx context.Context, key, sha string) (f *parquet.File, close func() error, err error) {
	obj, err := s.cfg.Store.Open(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	if sha != "" {
		if err := objstore.Verify(ctx, key, obj, sha); err != nil {
			obj.Close()
			return nil, nil, err
		}
	}
	if f, err = s.layout.OpenFile(obj, obj.Size()); err != nil {
		obj.Close()
		return nil, nil, err
	}
	return f, obj.Close, nil
}

// publishLoads publishes one LoadCommand per batch not yet loaded (m: the
// run's manifest, nil to read it). Ids are deterministic, so publishing
// again is harmless.
func (s *Service) publishLoads(ctx context.Context, st *messages.WindowState, m *messages.BatchManifest) (err error) {
	p := s.cfg.Policy
	// From the sweep (a republish) ctx holds no span: the span joins the run.
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = telemetry.RunContext(ctx, st.TraceParent)
	}
	ctx, span := s.tracer.Start(ctx, "compactor.publish_loads", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.Int("windrow.batches", st.BatchCount), attribute.Int("windrow.loaded_batches", st.LoadedParts.Count())))
	defer func() { endSpan(span, err) }()
	if m == nil {
		if m, err = loads.Manifest(ctx, s.cfg.Store, st); err != nil {
			return err
		}
	}
	return loads.Publish(ctx, s.cfg.JS, p, st, m)
}

// poisonError is a message that can never be processed.
type poisonError struct {
	reason string
	err    error
}

func (e *poisonError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *poisonError) Unwrap() error { return e.err }

// applyResult records one load result in the window's state. A result that
// cannot be decoded is a *poisonError.
func (s *Service) applyResult(ctx context.Context, m jetstream.Msg) (err error) {
	var res messages.LoadResult
	if err := messages.Decode(m.Headers().Get(messages.HeaderType), m.Data(), &res); err != nil {
		return &poisonError{reason: "undecodable load result", err: err}
	}
	// A child of the loader's span that published the result.
	ctx, span := s.tracer.Start(telemetry.Extract(ctx, m.Headers()), "compactor.apply_result", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("windrow.batch_id", res.BatchID), attribute.String("windrow.load_status", string(res.Status))))
	defer func() { endSpan(span, err) }()
	now := s.cfg.Now().UTC()
	became := messages.WindowStatus("")
	st, err := s.cfg.States.Update(ctx, messages.WindowKey(res.Policy, messages.WindowID(res.WindowStart)), func(cur *messages.WindowState) (*messages.WindowState, error) {
		became = ""
		next, err := windowstate.ApplyLoadResult(cur, &res, now)
		if err != nil {
			return nil, noWrite(err)
		}
		switch {
		case res.Status == messages.LoadFailed:
			became = messages.StatusFailed
		case next.Status == messages.StatusLoaded: // it was not LOADED before
			became = messages.StatusLoaded
		}
		return next, nil
	})
	if err != nil {
		return err
	}
	switch became {
	case messages.StatusLoaded:
		span.SetAttributes(attribute.String("windrow.window_status", string(became)))
		s.log.InfoContext(ctx, "loaded window", "window", st.ID(), "rows", st.LoadedRows, "batches", st.BatchCount, "table", res.Table)
		s.cleanup(ctx, st)
		s.emitRun(ctx, st, nil)
	case messages.StatusFailed:
		span.SetAttributes(attribute.String("windrow.window_status", string(became)))
		s.log.ErrorContext(ctx, "window load failed", "window", st.ID(), "err", st.Error)
		s.emitRun(ctx, st, errors.New(st.Error))
	}
	return nil
}

// cleanup deletes a loaded window's staged segments and their
// registrations; the batches stay, and redelivery checks use them.
func (s *Service) cleanup(ctx context.Context, st *messages.WindowState) {
	if s.cfg.Policy.Window.Late == windows.LateRevise || st.Next != nil || st.Revision > 0 {
		// Segments of the next revision may be registered already: only
		// what this run read goes.
		if err := s.cleanupRevised(ctx, st); err != nil {
			s.log.WarnContext(ctx, "delete staged segments and registrations", "window", st.ID(), "revision", st.Revision, "err", err)
			return
		}
	} else {
		if err := s.cfg.Store.DeletePrefix(ctx, staging.WindowPrefix(st.Policy, st.ID())); err != nil {
			s.log.WarnContext(ctx, "delete staged segments", "window", st.ID(), "err", err)
		}
		stream, err := s.cfg.JS.Stream(ctx, messages.StreamSegments)
		if err == nil {
			err = stream.Purge(ctx, jetstream.WithPurgeSubject(messages.SegmentSubject(st.Policy, st.ID())))
		}
		if err != nil {
			s.log.WarnContext(ctx, "purge segment registrations", "window", st.ID(), "err", err)
			return
		}
	}
	_, err := s.cfg.States.Update(ctx, st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		next, err := windowstate.StagingDeleted(cur, st.Revision)
		if err != nil {
			return nil, noWrite(err)
		}
		return next, nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "record staging cleanup", "window", st.ID(), "err", err)
	}
}

// failWindow marks a sealed window owned by this instance FAILED, for an
// operator to look at; it returns cause.
func (s *Service) failWindow(ctx context.Context, st *messages.WindowState, cause error) error {
	_, err := s.cfg.States.Update(ctx, st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		next, err := windowstate.Fail(cur, s.cfg.Instance, cause.Error())
		if err != nil {
			return nil, noWrite(err)
		}
		return next, nil
	})
	if err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// KeyFileDivisor decides which keys of a keyed policy get batch files of
// their own. A key whose rows in a window run reach
// output.target_file_size / KeyFileDivisor bytes (uncompressed, as rawSize
// estimates them) is written under its key path ("store_id=042/"); the rows
// of every smaller key go into the run's shared files, key after key in key
// order, with the key columns declared as the files' sort order. So the
// files of a window are bounded by its bytes, not by its keys (decision
// 0015). No load mode, revision or session needs a file per key: loads
// are per batch (append) or per window (replace, merge), never per key.
const KeyFileDivisor = 16

// batchWriter splits merged rows into files of about the target size. With
// a key, rows come key by key (key fields sort first): a key is held in
// memory while it is small (at most target_file_size / KeyFileDivisor raw
// bytes), then written into the shared file when it ends, or into files of
// its own under its key path once it is large. A window with more distinct
// keys than max_keys_per_window overflows as the policy says. Part numbers
// are given as files are started, so a retried compaction names the same
// files alike.
type batchWriter struct {
	ctx       context.Context
	s         *Service
	st        *messages.WindowState
	prefix    string
	refs      []messages.BatchRef // the batches in part order, once finished
	done      []partRef           // the files closed so far
	parts     int                 // batch files started: the next file's part number
	lastRenew time.Time
	shared    *batchFile // the open shared file: small keys' rows, or every row without a key
	own       *batchFile // the open file of the current key, when it is large
	ownBytes  int64      // raw bytes from which a key gets files of its own
	sorted    []string   // the key columns, declared as the sort order of the files
	key       string     // key path of the rows being written ("" without a key)
	started   bool       // a key run has begun
	admitted  bool       // the current key is admitted
	large     bool       // the current key has files of its own
	// pending are copies of the current key's rows while it is small.
	pending      []parquet.Row
	pendingBytes int64
	known        map[string]bool // admitted keys: loaded by an earlier revision, or within the cap
	overflow     []uint64        // source sequences of rows of keys over the cap (key_overflow: dlq)
}

type partRef struct {
	part int
	ref  messages.BatchRef
}

// batchFile is a batch file being written.
type batchFile struct {
	out    objstore.Writer
	pw     *parquet.Writer
	part   int
	object string
	key    string   // the key path of a key's own file; "" for a shared file
	keys   []string // the key paths of a shared file's rows, in order
	rows   int64
	span   trace.Span
}

// write takes the next rows of the merge.
func (b *batchWriter) write(rows []parquet.Row) error {
	l := b.s.layout
	if !l.HasKey() {
		return b.writeRun(rows)
	}
	for len(rows) > 0 {
		n := 1
		for n < len(rows) && l.SameKey(rows[0], rows[n]) {
			n++
		}
		run := rows[:n]
		rows = rows[n:]
		if kp := l.KeyPath(run[0]); kp != b.key || !b.started {
			if err := b.endKey(); err != nil {
				return err
			}
			b.key = kp
			b.started = true
			b.admitted = b.known[kp] || len(b.known) < b.s.cfg.Policy.KeyLimit()
			if b.admitted {
				b.known[kp] = true
			}
		}
		if limit := b.s.cfg.Policy.KeyLimit(); !b.admitted {
			if b.s.cfg.Policy.KeyOverflowMode() == windows.KeyOverflowError {
				return fmt.Errorf("%w: window %s holds more than max_keys_per_window %d distinct keys (key_overflow: error)",
					errKeyOverflow, b.st.ID(), limit)
			}
			for _, r := range run {
				b.overflow = append(b.overflow, l.Seq(r))
			}
			continue
		}
		if err := b.keyRows(run); err != nil {
			return err
		}
	}
	return nil
}

// errKeyOverflow: a window has more keys than allowed and the policy says error.
var errKeyOverflow = errors.New("key overflow")

// keyRows takes rows of the current key: held while the key is small,
// written to files of its own from the moment it is large.
func (b *batchWriter) keyRows(run []parquet.Row) error {
	if b.large {
		return b.writeTo(&b.own, b.key, run)
	}
	for _, r := range run {
		b.pending = append(b.pending, r.Clone()) // run is only valid until write returns
		b.pendingBytes += rawSize(r)
	}
	if b.pendingBytes < b.ownBytes {
		return nil
	}
	b.large = true
	return b.flushPending(&b.own, b.key)
}

// endKey ends the current key: a small one goes into the shared file, a
// large one's file is closed.
func (b *batchWriter) endKey() error {
	if b.large {
		b.large = false
		if b.own == nil {
			return nil
		}
		return b.closeFile(&b.own)
	}
	return b.flushPending(&b.shared, "")
}

func (b *batchWriter) flushPending(f **batchFile, key string) error {
	if len(b.pending) == 0 {
		return nil
	}
	err := b.writeTo(f, key, b.pending)
	clear(b.pending)
	b.pending, b.pendingBytes = b.pending[:0], 0
	return err
}

// rawSize estimates a row's uncompressed bytes: a byte array's length, 8
// for any other value.
func rawSize(row parquet.Row) int64 {
	var n int64
	for _, v := range row {
		switch {
		case v.IsNull():
			n++
		case v.Kind() == parquet.ByteArray || v.Kind() == parquet.FixedLenByteArray:
			n += int64(len(v.ByteArray()))
		default:
			n += 8
		}
	}
	return n
}

// writeRun writes rows into the shared files (sessions, and policies
// without a key).
func (b *batchWriter) writeRun(rows []parquet.Row) error { return b.writeTo(&b.shared, "", rows) }

// writeTo writes rows into *f (started under key path key when there is
// none), closing it at output.max_file_rows or the target size and going
// on in the next.
func (b *batchWriter) writeTo(f **batchFile, key string, rows []parquet.Row) error {
	p := b.s.cfg.Policy
	limit := int64(p.Output.MaxFileRows)
	for len(rows) > 0 {
		if *f == nil {
			nf, err := b.startFile(key)
			if err != nil {
				return err
			}
			*f = nf
		}
		cur := *f
		n := int64(len(rows))
		if limit > 0 {
			n = min(n, limit-cur.rows)
		}
		if _, err := cur.pw.WriteRows(rows[:n]); err != nil {
			return fmt.Errorf("write batch rows: %w", err)
		}
		cur.rows += n
		rows = rows[n:]
		if cur.key == "" && b.key != "" && (len(cur.keys) == 0 || cur.keys[len(cur.keys)-1] != b.key) {
			cur.keys = append(cur.keys, b.key)
		}
		if (limit > 0 && cur.rows >= limit) || cur.pw.Size() >= int64(p.Output.TargetFileSize) {
			if err := b.closeFile(f); err != nil {
				return err
			}
		}
		if err := b.keepLease(); err != nil {
			return err
		}
	}
	return nil
}

// startFile starts the next batch file, under key path key ("" for a
// shared file).
func (b *batchWriter) startFile(key string) (*batchFile, error) {
	p := b.s.cfg.Policy
	part := b.parts
	id := messages.BatchID(p.Name, b.st.WindowStart, b.st.Revision, part)
	f := &batchFile{part: part, key: key, object: fmt.Sprintf("%s/%spart-%04d.parquet", b.prefix, key, part)}
	_, f.span = b.s.tracer.Start(b.ctx, "compactor.write_batch", trace.WithAttributes(
		attribute.String("windrow.batch_id", id), attribute.Int("windrow.part", part), attribute.String("windrow.key", key)))
	w, err := b.s.cfg.Store.Create(b.ctx, f.object)
	if err != nil {
		endSpan(f.span, err)
		return nil, err
	}
	b.parts++
	f.out = w
	f.pw = b.s.layout.NewWriter(w, records.FileOptions{
		Codec: records.Codec(p.Output.Compression), RowGroupRows: p.Output.RowGroupSize, SortedBy: b.sorted,
		Metadata: map[string]string{
			"windrow.batch_id":       id,
			"windrow.policy":         p.Name,
			"windrow.policy_version": strconv.FormatUint(p.Version, 10),
			"windrow.window_start":   b.st.WindowStart.Format(time.RFC3339),
			"windrow.window_end":     b.st.WindowEnd.Format(time.RFC3339),
		},
	})
	return f, nil
}

// keepLease renews the lease on the window every lease/3 while it is being
// compacted.
func (b *batchWriter) keepLease() error {
	if time.Since(b.lastRenew) > b.s.cfg.Lease/3 {
		if err := b.s.renew(b.ctx, b.st); err != nil {
			return err
		}
		b.lastRenew = time.Now()
	}
	return nil
}

func (b *batchWriter) closeFile(fp **batchFile) error {
	f := *fp
	if err := f.pw.Close(); err != nil {
		return fmt.Errorf("close batch: %w", err)
	}
	size, sha, err := f.out.Commit()
	if err != nil {
		return err
	}
	*fp = nil
	ref := messages.BatchRef{
		BatchID: messages.BatchID(b.s.cfg.Policy.Name, b.st.WindowStart, b.st.Revision, f.part),
		Object:  f.object, Rows: f.rows, Bytes: size, SHA256: sha, Key: f.key, Keys: f.keys,
	}
	b.done = append(b.done, partRef{f.part, ref})
	f.span.SetAttributes(attribute.String("windrow.object", ref.Object), attribute.Int64("windrow.rows", ref.Rows),
		attribute.Int64("windrow.bytes", ref.Bytes), attribute.Int("windrow.keys", len(ref.Keys)))
	f.span.End()
	return nil
}

// finish ends the last key and closes the open files; the refs are in part
// order.
func (b *batchWriter) finish() error {
	if err := b.endKey(); err != nil {
		return err
	}
	for _, f := range []**batchFile{&b.own, &b.shared} {
		if *f != nil {
			if err := b.closeFile(f); err != nil {
				return err
			}
		}
	}
	slices.SortFunc(b.done, func(x, y partRef) int { return x.part - y.part })
	b.refs = make([]messages.BatchRef, len(b.done))
	for i, d := range b.done {
		b.refs[i] = d.ref
	}
	return nil
}

func (b *batchWriter) abort() {
	for _, f := range []*batchFile{b.own, b.shared} {
		if f == nil {
			continue
		}
		_ = f.out.Abort()
		endSpan(f.span, errors.New("batch aborted"))
	}
	b.own, b.shared = nil, nil
}

// renew extends this instance's lease on a window it is compacting.
func (s *Service) renew(ctx context.Context, st *messages.WindowState) error {
	lost := false
	_, err := s.cfg.States.Update(ctx, st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		next, err := windowstate.RenewLease(cur, s.cfg.Now().UTC(), windowstate.Lease{Owner: s.cfg.Instance, For: s.cfg.Lease})
		lost = errors.Is(err, windowstate.ErrRefused)
		if err != nil {
			return nil, noWrite(err)
		}
		return next, nil
	})
	if err == nil && lost {
		err = errLostLease
	}
	return err
}

// deadLetterOverflow sends the original events of rows whose key came after
// the window's first max_keys_per_window keys to the dead-letter stream
// (reason key_overflow), read back from the source stream by sequence.
func (s *Service) deadLetterOverflow(ctx context.Context, st *messages.WindowState, seqs []uint64) error {
	p := s.cfg.Policy
	stream, err := s.cfg.JS.Stream(ctx, p.Source.Stream)
	if err != nil {
		return fmt.Errorf("key overflow: source stream: %w", err)
	}
	detail := fmt.Sprintf("window %s holds more than max_keys_per_window %d distinct keys", st.ID(), p.KeyLimit())
	for _, seq := range seqs {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			return fmt.Errorf("key overflow: read source event %d: %w", seq, err)
		}
		// One subject per event and window, written once: a window compacted
		// again dead-letters none of its events twice.
		out := nats.NewMsg(messages.DeadLetterSubject(p.Name, seq, st.ID()))
		out.Data = raw.Data
		for k, v := range raw.Header {
			if k != messages.HeaderMsgID && k != "Nats-Expected-Stream" {
				out.Header[k] = v
			}
		}
		out.Header.Set(messages.HeaderMsgID, fmt.Sprintf("dlq-%s-%d-key-%s", p.Name, seq, st.ID()))
		out.Header.Set(messages.HeaderPolicy, p.Name)
		out.Header.Set(messages.HeaderReason, messages.ReasonKeyOverflow)
		out.Header.Set(messages.HeaderDetail, detail)
		out.Header.Set(messages.HeaderSourceStream, p.Source.Stream)
		out.Header.Set(messages.HeaderSourceSubject, raw.Subject)
		out.Header.Set(messages.HeaderSourceSeq, strconv.FormatUint(seq, 10))
		out.Header.Set(messages.HeaderWindow, st.ID())
		if _, err := natsx.PublishOnce(ctx, s.cfg.JS, out); err != nil {
			return fmt.Errorf("key overflow: dead-letter event %d: %w", seq, err)
		}
	}
	s.log.WarnContext(ctx, "rows over the key cap dead-lettered", "window", st.ID(), "rows", len(seqs), "max_keys_per_window", p.KeyLimit())
	return nil
}
