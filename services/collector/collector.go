package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/services/natsx"
	"github.com/windrow/windrow/services/objstore"
	"github.com/windrow/windrow/services/records"
	"github.com/windrow/windrow/services/staging"
	"github.com/windrow/windrow/services/statestore"
	"github.com/windrow/windrow/windows"
)

// Config configures the collector of one policy.
type Config struct {
	JS     jetstream.JetStream
	Store  *objstore.Local
	States *statestore.Store
	// Watermarks is read every tick: an event whose window the watermark
	// has passed (end + allowed_lateness) is late even before the compactor
	// sealed it.
	Watermarks *statestore.Watermarks
	Policy     *windows.Policy
	Instance   string // identifies this process in segment registrations; default a random id
	Logger     *slog.Logger
	// AckWait of the source consumer. Default 2m: far above max_age (≤30s),
	// so a healthy collector always acks before redelivery.
	AckWait time.Duration
	// PullBatch is how many messages one pull asks for. Default 2000.
	PullBatch int
}

func (c *Config) setDefaults() {
	if c.Instance == "" {
		c.Instance = "collector-" + nuid.Next()[:8]
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AckWait == 0 {
		c.AckWait = 2 * time.Minute
	}
	if c.PullBatch == 0 {
		c.PullBatch = 2000
	}
}

// Validate reports every missing or invalid field.
func (c *Config) Validate() error {
	var errs []error
	if c.JS == nil {
		errs = append(errs, errors.New("collector: JS is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("collector: Store is required"))
	}
	if c.States == nil {
		errs = append(errs, errors.New("collector: States is required"))
	}
	if c.Watermarks == nil {
		errs = append(errs, errors.New("collector: Watermarks is required"))
	}
	if c.Policy == nil {
		errs = append(errs, errors.New("collector: Policy is required"))
	}
	if c.AckWait < 10*time.Second {
		errs = append(errs, fmt.Errorf("collector: AckWait %s, want >= 10s", c.AckWait))
	}
	if c.PullBatch < 1 {
		errs = append(errs, fmt.Errorf("collector: PullBatch %d, want >= 1", c.PullBatch))
	}
	return errors.Join(errs...)
}

// Stats are the collector's counters since start.
type Stats struct {
	Received     int64 // messages delivered, redeliveries included
	Staged       int64 // rows in registered segments
	DeadLettered int64 // records sent to the DLQ (bad input, late with late: dlq, future)
	LateDropped  int64 // late records counted and dropped
	Segments     int64 // segments registered
	SegmentBytes int64 // bytes of registered segments
	Flushes      int64
	Redelivered  int64 // redelivered records of sealed windows found already staged (acked, not counted again)
}

// Service collects one policy.
type Service struct {
	cfg    Config
	layout *records.Layout
	assign *windows.Assigner
	dec    *records.Decoder
	log    *slog.Logger

	mu      sync.Mutex // guards everything below, held by intake and flush
	buf     map[int64]*windowBuf
	pending []jetstream.Msg // every message delivered since the last flush, to ack after it
	rows    int
	bytes   int64
	first   time.Time // when the oldest buffered message arrived
	sealed  map[int64]bool
	failed  error                            // a flush failure stops intake until the service restarts
	futures []jetstream.PubAckFuture         // dead-letter and late publishes since the last flush
	regs    map[int64][]staging.Registration // registrations of sealed windows, for redelivery checks

	watermark atomic.Int64 // the policy's watermark in Unix microseconds, 0 before the first

	stats struct {
		received, staged, dlq, late, segments, segBytes, flushes, redelivered atomic.Int64
	}
	shutdown chan struct{}
	once     sync.Once
}

type windowBuf struct {
	win            windows.Window
	rows           []parquet.Row
	msgs           []jetstream.Msg
	minSeq, maxSeq uint64
	minEvt, maxEvt int64
}

// New checks cfg and builds the service.
func New(cfg Config) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	layout, err := records.NewLayout(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", cfg.Policy.Name, err)
	}
	assign, err := windows.NewAssigner(cfg.Policy.Window)
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", cfg.Policy.Name, err)
	}
	return &Service{
		cfg: cfg, layout: layout, assign: assign, dec: records.NewDecoder(layout),
		log:      cfg.Logger.With("service", "collector", "policy", cfg.Policy.Name, "policy_version", cfg.Policy.Version),
		buf:      map[int64]*windowBuf{},
		sealed:   map[int64]bool{},
		shutdown: make(chan struct{}),
	}, nil
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	return Stats{
		Received: s.stats.received.Load(), Staged: s.stats.staged.Load(), DeadLettered: s.stats.dlq.Load(),
		LateDropped: s.stats.late.Load(), Segments: s.stats.segments.Load(), SegmentBytes: s.stats.segBytes.Load(),
		Flushes: s.stats.flushes.Load(), Redelivered: s.stats.redelivered.Load(),
	}
}

// Shutdown asks Run to stop pulling, flush what it holds and return.
func (s *Service) Shutdown(ctx context.Context) error {
	s.once.Do(func() { close(s.shutdown) })
	return nil
}

// Run collects until ctx is done or Shutdown is called; it flushes and acks
// what it holds before returning.
func (s *Service) Run(ctx context.Context) error {
	p := s.cfg.Policy
	stream, err := natsx.EnsureSourceStream(ctx, s.cfg.JS, p.Source.Stream, p.Source.Subjects)
	if err != nil {
		return err
	}
	maxAckPending := max(2*p.Segment.MaxRows, 20000)
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:        messages.CollectorConsumer(p.Name),
		Description:    "windrow collector of policy " + p.Name,
		FilterSubjects: p.Source.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckWait:        s.cfg.AckWait,
		// Unlimited deliveries: a message is only redelivered when a flush
		// failed (storage or NATS trouble), and giving up on it would lose it.
		// Bad records never loop: they are dead-lettered and acked.
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
	})
	if err != nil {
		return fmt.Errorf("collector %s: consumer: %w", p.Name, err)
	}
	s.log.Info("collecting", "stream", p.Source.Stream, "subjects", p.Source.Subjects, "instance", s.cfg.Instance)

	// One pull request at a time, each expiring within fetchWait: when the
	// service stops, the last request ends by itself and every message it
	// delivered is staged and acked, none is left to wait out the ack wait.
	fetchWait := min(max(p.Segment.MaxAge.D()/2, 100*time.Millisecond), time.Second)
	var lastWM time.Time
	var runErr error
	// Two pull requests are outstanding: the server fills the next while
	// this one is being taken in.
	next := s.fetch(ctx, cons, fetchWait)
	for runErr == nil {
		cur := next
		stopping := ctx.Err() != nil || s.stopping()
		next = nil
		if !stopping {
			next = s.fetch(ctx, cons, fetchWait)
		}
		runErr = s.take(ctx, cur)
		if time.Since(lastWM) >= 250*time.Millisecond {
			s.readWatermark(ctx)
			lastWM = time.Now()
		}
		if stopping {
			break
		}
	}
	if next != nil && runErr == nil {
		runErr = s.take(ctx, next)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := s.flushLocked(flushCtx); err != nil && runErr == nil {
			runErr = err
		}
	}
	return runErr
}

func (s *Service) stopping() bool {
	select {
	case <-s.shutdown:
		return true
	default:
		return false
	}
}

// fetch issues one pull request; nil when it could not be made (logged,
// retried by the caller's next round).
func (s *Service) fetch(ctx context.Context, cons jetstream.Consumer, wait time.Duration) jetstream.MessageBatch {
	batch, err := cons.Fetch(s.cfg.PullBatch, jetstream.FetchMaxWait(wait))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("fetch", "err", err)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		return nil
	}
	return batch
}

// take takes in the messages of one pull request and flushes on the age trigger.
func (s *Service) take(ctx context.Context, batch jetstream.MessageBatch) error {
	if batch != nil {
		for m := range batch.Messages() {
			if err := s.intake(ctx, m); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			s.log.Warn("fetch", "err", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 && time.Since(s.first) >= s.cfg.Policy.Segment.MaxAge.D() {
		return s.flushLocked(context.WithoutCancel(ctx))
	}
	return nil
}

func (s *Service) readWatermark(ctx context.Context) {
	wm, ok, err := s.cfg.Watermarks.Get(ctx, s.cfg.Policy.Name)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read watermark", "err", err)
		}
		return
	}
	if ok {
		s.watermark.Store(wm.Watermark.UnixMicro())
	}
}

// intake decodes one message into its window's buffer and flushes when a
// row or byte trigger is reached.
func (s *Service) intake(ctx context.Context, m jetstream.Msg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		// Leave it un-acked: it is redelivered after the restart.
		return s.failed
	}
	s.stats.received.Add(1)
	meta, err := m.Metadata()
	if err != nil {
		// Not a JetStream message: cannot happen on a pull consumer.
		return fmt.Errorf("collector: message metadata: %w", err)
	}
	if s.rows == 0 && len(s.pending) == 0 {
		s.first = time.Now()
	}
	s.pending = append(s.pending, m)
	data := m.Data()
	s.bytes += int64(len(data))
	seq := meta.Sequence.Stream
	ingest := meta.Timestamp.UnixMicro()
	row, evt, err := s.dec.Decode(data, seq, ingest)
	if err != nil {
		var de *records.DecodeError
		if !errors.As(err, &de) {
			return err
		}
		s.deadLetter(ctx, m, seq, de.Reason, de.Error(), "")
		return s.maybeFlush(ctx)
	}
	p := s.cfg.Policy
	if horizon := p.Window.FutureHorizon.D(); horizon > 0 && evt > ingest+horizon.Microseconds() {
		s.deadLetter(ctx, m, seq, messages.ReasonFuture, fmt.Sprintf("event time %s is more than %s after ingest time %s",
			time.UnixMicro(evt).UTC().Format(time.RFC3339), horizon, meta.Timestamp.UTC().Format(time.RFC3339)), "")
		return s.maybeFlush(ctx)
	}
	start, end := s.assign.AssignMicros(evt)
	if wm := s.watermark.Load(); s.sealed[start] || (wm != 0 && end+p.Window.AllowedLateness.D().Microseconds() <= wm) {
		win := windows.Window{Start: time.UnixMicro(start).UTC(), End: time.UnixMicro(end).UTC()}
		if err := s.lateOrStaged(ctx, m, seq, meta.NumDelivered, evt, win); err != nil {
			return err
		}
		return s.maybeFlush(ctx)
	}
	wb := s.buf[start]
	if wb == nil {
		wb = &windowBuf{win: windows.Window{Start: time.UnixMicro(start).UTC(), End: time.UnixMicro(end).UTC()}, minSeq: seq, minEvt: evt, maxEvt: evt}
		s.buf[start] = wb
	}
	wb.rows = append(wb.rows, row)
	wb.msgs = append(wb.msgs, m)
	wb.minSeq, wb.maxSeq = min(wb.minSeq, seq), max(wb.maxSeq, seq)
	wb.minEvt, wb.maxEvt = min(wb.minEvt, evt), max(wb.maxEvt, evt)
	s.rows++
	return s.maybeFlush(ctx)
}

func (s *Service) maybeFlush(ctx context.Context) error {
	seg := s.cfg.Policy.Segment
	if s.rows >= seg.MaxRows || s.bytes >= int64(seg.MaxBytes) || len(s.pending) >= 4*seg.MaxRows {
		return s.flushLocked(context.WithoutCancel(ctx))
	}
	return nil
}

// flushLocked writes one segment per buffered window, registers them, and
// acks every pending message. On failure nothing is acked: the messages are
// redelivered and the service must restart.
func (s *Service) flushLocked(ctx context.Context) error {
	if len(s.pending) == 0 {
		return nil
	}
	s.stats.flushes.Add(1)
	flushStart := time.Now()
	starts := make([]int64, 0, len(s.buf))
	for k := range s.buf {
		starts = append(starts, k)
	}
	slices.Sort(starts)
	for _, start := range starts {
		if err := s.stage(ctx, s.buf[start]); err != nil {
			s.failed = fmt.Errorf("collector %s: flush: %w", s.cfg.Policy.Name, err)
			return s.failed
		}
	}
	// Dead-letter and late publishes must be stored before their sources are acked.
	if err := s.awaitPublishes(ctx); err != nil {
		s.failed = fmt.Errorf("collector %s: %w", s.cfg.Policy.Name, err)
		return s.failed
	}
	for _, m := range s.pending {
		if err := m.Ack(); err != nil {
			// The data is staged; a lost ack means a redelivery that dedup absorbs.
			s.log.Warn("ack", "err", err)
		}
	}
	s.log.Debug("flushed", "messages", len(s.pending), "rows", s.rows, "windows", len(s.buf), "took", time.Since(flushStart).Round(time.Millisecond))
	clear(s.pending)
	s.pending = s.pending[:0]
	clear(s.buf)
	s.rows, s.bytes = 0, 0
	s.dec.Reset()
	return nil
}

// stage writes and registers one window's segment. If the window turns out to
// be sealed, its rows take the late path instead.
func (s *Service) stage(ctx context.Context, wb *windowBuf) error {
	p := s.cfg.Policy
	winID := wb.win.ID()
	slices.SortFunc(wb.rows, s.layout.Compare)
	segID := fmt.Sprintf("%016x-%s", wb.minSeq, nuid.Next())
	key := staging.SegmentKey(p.Name, winID, segID)
	w, err := s.cfg.Store.Create(ctx, key)
	if err != nil {
		return err
	}
	if err := s.layout.WriteFile(w, wb.rows, records.FileOptions{Codec: records.Codec(windows.CompressSnappy)}); err != nil {
		w.Abort()
		return fmt.Errorf("write segment %s: %w", key, err)
	}
	size, _, err := w.Commit()
	if err != nil {
		return err
	}
	reg := &messages.SegmentRegistered{
		Policy: p.Name, PolicyVersion: p.Version, WindowStart: wb.win.Start, WindowEnd: wb.win.End,
		SegmentID: segID, Object: key, Rows: int64(len(wb.rows)), Bytes: size,
		MinSourceSeq: wb.minSeq, MaxSourceSeq: wb.maxSeq,
		MinEventTime: time.UnixMicro(wb.minEvt).UTC(), MaxEventTime: time.UnixMicro(wb.maxEvt).UTC(),
		Collector: s.cfg.Instance, CreatedAt: time.Now().UTC(),
	}
	ack, err := natsx.Publish(ctx, s.cfg.JS, messages.SegmentSubject(p.Name, winID), reg, nil)
	if err != nil {
		return err
	}
	var late bool
	_, err = s.cfg.States.Update(ctx, messages.WindowKey(p.Name, winID), func(cur *messages.WindowState) (*messages.WindowState, error) {
		late = false
		if cur == nil {
			return &messages.WindowState{
				Policy: p.Name, PolicyVersion: p.Version, WindowStart: wb.win.Start, WindowEnd: wb.win.End,
				Status: messages.StatusOpen, Segments: 1, StagedRows: reg.Rows, LastSegmentSeq: ack.Sequence,
				MinEventTime: reg.MinEventTime, MaxEventTime: reg.MaxEventTime, FirstStagedAt: reg.CreatedAt,
			}, nil
		}
		if cur.Status != messages.StatusOpen {
			// Sealed meanwhile. The seal froze the cutoff: a registration at
			// or below it is part of the window, one above it is not.
			late = ack.Sequence > cur.LastSegmentSeq
			s.sealed[wb.win.Start.UnixMicro()] = true
			return nil, statestore.ErrNoChange
		}
		cur.Segments++
		cur.StagedRows += reg.Rows
		cur.LastSegmentSeq = max(cur.LastSegmentSeq, ack.Sequence)
		if reg.MinEventTime.Before(cur.MinEventTime) {
			cur.MinEventTime = reg.MinEventTime
		}
		if reg.MaxEventTime.After(cur.MaxEventTime) {
			cur.MaxEventTime = reg.MaxEventTime
		}
		return cur, nil
	})
	if err != nil {
		return fmt.Errorf("register segment %s: %w", segID, err)
	}
	if late {
		// The window was sealed while this segment was being written: the
		// compactor's cutoff excludes it. Its rows are late.
		if err := s.cfg.Store.Delete(ctx, key); err != nil {
			s.log.Warn("delete late segment", "key", key, "err", err)
		}
		for _, m := range wb.msgs {
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("late segment %s: %w", segID, err)
			}
			if err := s.lateOrStaged(ctx, m, meta.Sequence.Stream, meta.NumDelivered, 0, wb.win); err != nil {
				return err
			}
		}
		return nil
	}
	s.stats.staged.Add(reg.Rows)
	s.stats.segments.Add(1)
	s.stats.segBytes.Add(size)
	return nil
}
