package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/parquet-go/parquet-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/lifecycle"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/pipeline/staging"
	"github.com/windrow/windrow/pipeline/windowstate"
	"github.com/windrow/windrow/windows"
)

// Config configures the collector of one policy.
type Config struct {
	// Tracing records the segment spans of window runs; nil: off.
	Tracing *telemetry.Tracing
	JS      jetstream.JetStream
	Store   objstore.Store
	States  *statestore.Store
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
	// Replicas of the source stream when the collector creates it, or
	// raises it to (a stream windrow created): nats.replicas. Default 1.
	Replicas int
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
	if c.Replicas < 0 {
		errs = append(errs, fmt.Errorf("collector: Replicas %d, want >= 1, or 0 for 1", c.Replicas))
	}
	return errors.Join(errs...)
}

// Stats are the collector's counters since start. Every field is a
// counter: its tags name the metric it is exported as (metric, unit, help;
// app/metrics derives the instruments from them), and a process sums the
// fields of its restarted workers (app/stack), so a new counter is a field
// here and its increment, nothing else.
type Stats struct {
	Received     int64 `metric:"windrow.collector.events.received" unit:"{event}" help:"Messages the collector took from the source stream, redeliveries included."`
	Staged       int64 `metric:"windrow.collector.events.staged" unit:"{event}" help:"Decoded events written to registered staging segments."`
	DeadLettered int64 `metric:"windrow.collector.events.dead_lettered" unit:"{event}" help:"Events sent to the DLQ: bad input, future events, and late events of policies with late: dlq."`
	LateDropped  int64 `metric:"windrow.collector.events.late_dropped" unit:"{event}" help:"Late events counted and dropped (late: drop)."`
	Segments     int64 `metric:"windrow.collector.segments.written" unit:"{segment}" help:"Staging segments written and registered."`
	SegmentBytes int64 `metric:"windrow.collector.segment" unit:"By" help:"Bytes of staging segments written and registered."`
	Flushes      int64 `metric:"windrow.collector.flushes" unit:"{flush}" help:"Collector flushes."`
	Redelivered  int64 `metric:"windrow.collector.events.redelivered" unit:"{event}" help:"Redelivered events of closed windows found already staged (acked, not counted again)."`
}

// Service collects one policy.
// Service collects one policy.
//
// Two goroutines share the work: the intake goroutine pulls, decodes and
// assigns windows into the current batch; the flusher stages a full batch's
// segments, registers them and acks its messages. There are two batches, so
// intake goes on while the other one is flushed, and waits when both are busy.
type Service struct {
	cfg    Config
	layout *records.Layout
	assign *windows.Assigner      // tumbling windows; intake goroutine only
	hop    windows.WindowAssigner // hopping windows or several shapes (nil otherwise); intake goroutine only
	wins   []windows.WindowMicros // reused by hopping assignment
	quorum wmQuorum               // recent events' watermark offers; intake goroutine only
	log    *slog.Logger

	cur     *batch      // intake goroutine only
	free    chan *batch // batches ready for intake
	flushCh chan *batch // batches handed to the flusher

	// sealed holds the starts (Unix µs) of windows known to be sealed. It is
	// read for every event and written rarely, so reads take no lock.
	sealed sync.Map
	// tracing: spans are recorded (Config.Tracing is on).
	tracing bool
	mu      sync.Mutex             // guards closed, shared by intake and flusher
	closed  map[int64]closedWindow // frozen staging facts of sealed windows
	staged  stagedCache            // staged sets of closed windows, for redelivery checks

	failed    atomic.Pointer[error] // a flush failure stops intake until the service restarts
	watermark atomic.Int64          // the policy's watermark in Unix microseconds, 0 before the first
	// horizon is the policy's retirement horizon in Unix microseconds (0:
	// nothing retired): every window starting before it is retired
	// (window.retain). retiredFloor is the record's ack floor.
	horizon      atomic.Int64
	retiredFloor atomic.Uint64

	stats struct {
		received, staged, dlq, late, segments, segBytes, flushes, redelivered atomic.Int64
	}
	life *lifecycle.State
}

// batch is what one flush stages and acks.
type batch struct {
	buf     map[int64]*windowBuf
	pending []jetstream.Msg          // every message taken in, to ack after the flush
	futures []jetstream.PubAckFuture // dead-letter and late publishes to await before acking
	rows    int
	bytes   int64
	first   time.Time // when the oldest message arrived
	dec     *records.Decoder
	// wmCap caps what the batch's segments offer the watermark: what a
	// quorum of the collector's recent events supports (see wmQuorum), as
	// of the hand-off; valid when wmCapped.
	wmCap    int64
	wmCapSeq uint64 // the highest source sequence behind wmCap
	wmCapped bool
}

func (b *batch) empty() bool { return len(b.pending) == 0 }

type windowBuf struct {
	win            windows.Window
	rows           []parquet.Row
	msgs           []jetstream.Msg
	minSeq, maxSeq uint64
	minEvt, maxEvt int64
	// wmEvt is the newest event time the segment offers the watermark:
	// each event's time capped at its ingest time.
	wmEvt int64
	links []trace.Link // producers' spans (traceparent headers), up to maxLinks
}

// offer is what the segment offers the watermark: its newest event time
// (each capped at ingest), capped at the quorum of recent events.
//
// gate is the source sequence the collectors' ack floor must reach before
// the offer counts: the segment's own highest sequence (0 here: the
// registration's MaxSourceSeq), or, when the quorum lowered the offer, the
// highest sequence of the events the quorum was taken from.
func (wb *windowBuf) offer(b *batch) (t int64, gate uint64) {
	if b.wmCapped && b.wmCap < wb.wmEvt {
		return b.wmCap, b.wmCapSeq
	}
	return wb.wmEvt, 0
}

// maxLinks caps the producer spans one segment span links to.
const maxLinks = 32

// New checks cfg and builds the service.
func New(cfg Config) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Policy.NotRunYet(""); err != nil {
		return nil, fmt.Errorf("%s %s: %w", "collector", cfg.Policy.Name, err)
	}
	layout, err := records.NewLayout(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", cfg.Policy.Name, err)
	}
	var assign *windows.Assigner
	var hop windows.WindowAssigner
	if cfg.Policy.Window.Kind == windows.Hopping || len(cfg.Policy.WindowHistory) > 0 {
		hop, err = windows.NewEpochAssigner(cfg.Policy) // the shape of each event's time
	} else if cfg.Policy.Window.Kind == windows.SessionWindows {
		// Session windows: staged in panes, cut into sessions by the compactor.
		assign, err = windows.NewAssigner(cfg.Policy.Window.PaneSpec())
	} else {
		assign, err = windows.NewAssigner(cfg.Policy.Window)
	}
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", cfg.Policy.Name, err)
	}
	s := &Service{
		cfg: cfg, layout: layout, assign: assign, hop: hop,
		log:     cfg.Logger.With("service", "collector", "policy", cfg.Policy.Name, "policy_version", cfg.Policy.Version),
		free:    make(chan *batch, 2),
		flushCh: make(chan *batch),
		closed:  map[int64]closedWindow{},
		tracing: cfg.Tracing.Enabled(),
		life:    lifecycle.New("collector " + cfg.Policy.Name),
	}
	for range 2 {
		s.free <- &batch{buf: map[int64]*windowBuf{}, dec: records.NewDecoder(layout)}
	}
	return s, nil
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	return Stats{
		Received: s.stats.received.Load(), Staged: s.stats.staged.Load(), DeadLettered: s.stats.dlq.Load(),
		LateDropped: s.stats.late.Load(), Segments: s.stats.segments.Load(), SegmentBytes: s.stats.segBytes.Load(),
		Flushes: s.stats.flushes.Load(), Redelivered: s.stats.redelivered.Load(),
	}
}

// Shutdown stops pulling, lets Run stage, register and ack what it took
// in, and returns when Run has returned, or with ctx's error when ctx ends
// first (Run then goes on finishing in the background). Before Run it only
// makes a later Run return at once. Shutdown is idempotent.
func (s *Service) Shutdown(ctx context.Context) error { return s.life.Shutdown(ctx) }

func (s *Service) err() error {
	if e := s.failed.Load(); e != nil {
		return *e
	}
	return nil
}

func (s *Service) fail(err error) error {
	err = fmt.Errorf("collector %s: %w", s.cfg.Policy.Name, err)
	s.failed.CompareAndSwap(nil, &err)
	return s.err()
}

func (s *Service) isSealed(start int64) bool {
	_, ok := s.sealed.Load(start)
	return ok
}

// Run collects until ctx is done or Shutdown is called; it flushes and acks
// what it holds before returning (after ctx ended too: the flush and its acks
// run on a context without ctx's cancellation, so nothing taken in waits out
// the ack wait). Run runs once; a second call returns an error.
func (s *Service) Run(ctx context.Context) error {
	if err := s.life.Start(); err != nil {
		return err
	}
	defer s.life.Done()
	if s.life.Stopping() {
		return nil
	}
	cons, err := s.consumer(ctx)
	if err != nil {
		if ctx.Err() != nil || s.life.Stopping() {
			return nil // stopped while starting: nothing taken in, nothing to flush
		}
		return err
	}
	// Retired windows are known before the first event is placed: a window
	// before the horizon must never be staged again.
	if err := s.readRetirement(ctx); err != nil {
		if ctx.Err() != nil || s.life.Stopping() {
			return nil
		}
		return fmt.Errorf("collector %s: %w", s.cfg.Policy.Name, err)
	}
	s.log.Info("collecting", "stream", s.cfg.Policy.Source.Stream, "subjects", s.cfg.Policy.Source.Subjects, "instance", s.cfg.Instance)
	flusherDone := s.startFlusher(ctx)
	s.cur = <-s.free
	runErr := s.pull(ctx, cons)
	// Flush what was taken in (handed back if the service failed), then let
	// the flusher finish.
	if !s.cur.empty() {
		s.cur.wmCap, s.cur.wmCapSeq, s.cur.wmCapped = s.quorum.cap()
		s.flushCh <- s.cur
		s.cur = nil
	}
	close(s.flushCh)
	<-flusherDone
	if runErr == nil {
		runErr = s.err()
	}
	return runErr
}

// consumer makes sure the source stream and the policy's durable consumer
// exist.
func (s *Service) consumer(ctx context.Context) (jetstream.Consumer, error) {
	p := s.cfg.Policy
	// Bounded: EnsureSourceStream retries while the cluster cannot answer;
	// past a minute the error goes to the worker loop, which logs it and
	// starts the collector again with backoff.
	ectx, cancel := context.WithTimeout(ctx, time.Minute)
	stream, err := natsx.EnsureSourceStream(ectx, s.cfg.JS, p.Source.Stream, p.Source.Subjects, natsx.WithReplicas(s.cfg.Replicas))
	cancel()
	if err != nil {
		return nil, err
	}
	for _, w := range natsx.SourceStreamWarnings(stream.CachedInfo().Config) {
		s.log.Warn("source stream can lose events: "+w, "stream", p.Source.Stream)
	}
	if w := natsx.ReplicaWarning(stream.CachedInfo().Config, s.cfg.Replicas); w != "" {
		s.log.Warn(w, "stream", p.Source.Stream)
	}
	maxAckPending := max(4*p.Segment.MaxRows, 20000)
	cfg := jetstream.ConsumerConfig{
		Durable:       messages.CollectorConsumer(p.Name),
		Description:   "windrow collector of policy " + p.Name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       s.cfg.AckWait,
		// Unlimited deliveries: a message is only redelivered when a flush
		// failed (storage or NATS trouble), and giving up on it would lose it.
		// Bad records never loop: they are dead-lettered and acked.
		MaxDeliver: -1,
		// Two batches (one taking in, one flushing) must fit, or the row
		// trigger could never fire.
		MaxAckPending: maxAckPending,
	}
	// One subject uses the single filter every JetStream server knows;
	// several need nats-server 2.10 or later.
	if len(p.Source.Subjects) == 1 {
		cfg.FilterSubject = p.Source.Subjects[0]
	} else {
		cfg.FilterSubjects = p.Source.Subjects
	}
	if cfg.Metadata, err = s.recordExpired(ctx, stream, cfg.Durable); err != nil {
		return nil, err
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cfg)
	if errors.Is(err, jetstream.ErrConsumerMultipleFilterSubjectsNotSupported) {
		// The old server created the consumer without any filter: remove it
		// rather than leave a consumer that would read every subject.
		if derr := stream.DeleteConsumer(ctx, cfg.Durable); derr != nil {
			s.log.Warn("delete consumer created without its filter", "consumer", cfg.Durable, "err", derr)
		}
		return nil, fmt.Errorf("collector %s: policy has %d source subjects; consuming several needs nats-server 2.10 or later (or use one wildcard subject): %w", p.Name, len(p.Source.Subjects), err)
	}
	if err != nil {
		return nil, fmt.Errorf("collector %s: consumer: %w", p.Name, err)
	}
	return cons, nil
}

// recordExpired returns the metadata of the policy's consumer with the
// events the source stream removed before the consumer reached them added
// to its record (natsx.Expired): those below the stream's first sequence,
// counted only when the stream holds nothing but the policy's subjects.
// Once the consumer is created or moves past them they can no longer be
// told apart from collected ones, so the count is taken here, as the
// collector starts (docs/decisions/0009-source-stream-limits.md).
func (s *Service) recordExpired(ctx context.Context, stream jetstream.Stream, durable string) (map[string]string, error) {
	p := s.cfg.Policy
	var meta map[string]string
	var delivered uint64
	cons, err := stream.Consumer(ctx, durable)
	switch {
	case err == nil:
		info := cons.CachedInfo()
		meta, delivered = maps.Clone(info.Config.Metadata), info.Delivered.Stream
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("collector %s: consumer: %w", p.Name, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("collector %s: source stream %s: %w", p.Name, p.Source.Stream, err)
	}
	if !natsx.HoldsOnly(info.Config.Subjects, p.Source.Subjects) {
		return meta, nil
	}
	rec := natsx.ParseExpired(meta)
	if gap := rec.Gap(info.State.FirstSeq, delivered); gap > 0 {
		rec = rec.Add(info.State.FirstSeq, delivered)
		s.log.Warn("the source stream removed events before they were collected: they are lost (counted as expired by reconcile)",
			"stream", p.Source.Stream, "expired", gap, "through_seq", rec.Through, "expired_total", rec.Count)
		meta = rec.Set(meta)
	}
	return meta, nil
}

// startFlusher starts the goroutine that stages, registers and acks the
// batches handed to flushCh, until it is closed; the channel it returns is
// closed when the goroutine ends.
func (s *Service) startFlusher(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range s.flushCh {
			if s.err() == nil {
				if err := s.flush(context.WithoutCancel(ctx), b); err != nil {
					s.fail(err)
				}
			}
			if s.err() != nil {
				s.handBack(b)
			}
			s.recycle(b)
		}
	}()
	return done
}

// pull takes messages in until ctx ends, Shutdown is called or the service
// fails. One pull request at a time is taken in while the next is filled;
// each expires within fetchWait, so when the service stops the last requests
// end by themselves and every message they delivered is staged and acked,
// none is left to wait out the ack wait.
func (s *Service) pull(ctx context.Context, cons jetstream.Consumer) error {
	p := s.cfg.Policy
	fetchWait := min(max(p.Segment.MaxAge.D()/2, 100*time.Millisecond), time.Second)
	var lastWM time.Time
	var runErr error
	next := s.fetch(ctx, cons, fetchWait)
	for runErr == nil {
		cur := next
		stopping := ctx.Err() != nil || s.life.Stopping()
		next = nil
		if !stopping {
			next = s.fetch(ctx, cons, fetchWait)
		}
		runErr = s.take(ctx, cur)
		if runErr == nil {
			runErr = s.err() // the flusher failed, or the consumer is gone
		}
		if time.Since(lastWM) >= 250*time.Millisecond {
			s.readWatermark(ctx)
			lastWM = time.Now()
		}
		if stopping {
			break
		}
	}
	if next != nil {
		if runErr == nil {
			runErr = s.take(ctx, next)
		} else {
			s.nakAll(next)
		}
	}
	return runErr
}

// fetch issues one pull request; nil when it could not be made (logged,
// retried in the next round).
func (s *Service) fetch(ctx context.Context, cons jetstream.Consumer, wait time.Duration) jetstream.MessageBatch {
	mb, err := cons.Fetch(s.cfg.PullBatch, jetstream.FetchMaxWait(wait))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("fetch", "err", err)
			if err := s.checkConsumer(ctx); err != nil {
				s.fail(err)
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		return nil
	}
	return mb
}

// checkConsumer, after a failed pull, finds out whether the durable
// consumer is gone (deleted by an operator, lost with a stream restored from
// a backup): then the service fails and its restart creates it again, which
// redelivers the stream from its start (dedup and the redelivery checks
// keep that exactly once). Otherwise it waits a little, so that a server in
// trouble is not asked in a tight loop.
func (s *Service) checkConsumer(ctx context.Context) error {
	p := s.cfg.Policy
	_, err := s.cfg.JS.Consumer(ctx, p.Source.Stream, messages.CollectorConsumer(p.Name))
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("consumer %s on stream %s is gone: %w", messages.CollectorConsumer(p.Name), p.Source.Stream, err)
	}
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
	}
	return nil
}

// take takes in the messages of one pull request and hands the batch to the
// flusher on the age trigger.
func (s *Service) take(ctx context.Context, mb jetstream.MessageBatch) error {
	if mb != nil {
		for m := range mb.Messages() {
			if err := s.intake(ctx, m); err != nil {
				// The message and the rest of the pull request go back at
				// once rather than after the ack wait.
				if nerr := m.Nak(); nerr != nil {
					s.log.Warn("nak of a message not taken in; redelivered after the ack wait", "err", nerr)
				}
				s.nakAll(mb)
				return err
			}
		}
		if err := mb.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			s.log.Warn("fetch", "err", err)
			if err := s.checkConsumer(ctx); err != nil {
				return err
			}
		}
	}
	if !s.cur.empty() && time.Since(s.cur.first) >= s.cfg.Policy.Segment.MaxAge.D() {
		return s.handOff()
	}
	return nil
}

// handOff gives the current batch to the flusher and takes a free one,
// waiting while both are busy.
func (s *Service) handOff() error {
	s.cur.wmCap, s.cur.wmCapSeq, s.cur.wmCapped = s.quorum.cap()
	s.flushCh <- s.cur
	s.cur = <-s.free
	return s.err()
}

// handBack returns the messages of a batch that could not be staged with a
// NAK, so that they are redelivered at once instead of after the ack wait.
// Those already acked by a partial flush answer the NAK with nothing.
func (s *Service) handBack(b *batch) {
	for _, m := range b.pending {
		if err := m.Nak(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			s.log.Warn("nak after failed flush; redelivered after the ack wait", "err", err)
			return
		}
	}
}

// nakAll hands back every message still to come from a pull request that
// will not be taken in (the service failed).
func (s *Service) nakAll(mb jetstream.MessageBatch) {
	for m := range mb.Messages() {
		if err := m.Nak(); err != nil {
			s.log.Warn("nak of a message not taken in; redelivered after the ack wait", "err", err)
		}
	}
}

func (s *Service) recycle(b *batch) {
	clear(b.pending)
	b.pending = b.pending[:0]
	clear(b.futures)
	b.futures = b.futures[:0]
	clear(b.buf)
	b.rows, b.bytes = 0, 0
	b.dec.Reset()
	s.free <- b
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
	if err := s.readRetirement(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("read retirement horizon", "err", err)
	}
}

// errCreateWindow stops a registration that would create a window's state
// until the retirement horizon has been read afresh.
var errCreateWindow = errors.New("create window state: read the retirement horizon first")

// readRetirement reads the policy's retirement record (horizon, ack floor).
func (s *Service) readRetirement(ctx context.Context) error {
	r, ok, err := s.cfg.Watermarks.Retirement(ctx, s.cfg.Policy.Name)
	if err != nil || !ok {
		return err
	}
	s.retiredFloor.Store(r.AckFloor)
	s.horizon.Store(r.Horizon.UnixMicro()) // the floor first: a reader that sees the horizon sees its floor
	return nil
}

// retiredDetail is the detail of the dead letters of retired windows' events.
const retiredDetail = "window retired (window.retain)"

// retired handles an event of a retired window (before the retirement
// horizon), whatever window.late says: an event at or below the record's
// ack floor was handled before the window was retired (staged, loaded, or
// late already) and is delivered again (a consumer reset): acked, counted
// as redelivered; any other is late (late: drop, a marker; dlq and revise,
// a dead letter with reason late). The window is never staged again.
func (s *Service) retired(b *batch, m jetstream.Msg, seq uint64, evt int64, win windows.Window) {
	if seq <= s.retiredFloor.Load() {
		s.stats.redelivered.Add(1)
		return
	}
	s.late(b, m, seq, evt, win, retiredDetail)
}

// intake decodes one message into its window's buffer and hands the batch
// off when a row or byte trigger is reached.
func (s *Service) intake(ctx context.Context, m jetstream.Msg) error {
	if err := s.err(); err != nil {
		// Leave it un-acked: it is redelivered after the restart.
		return err
	}
	s.stats.received.Add(1)
	meta, err := m.Metadata()
	if err != nil {
		// Not a JetStream message: cannot happen on a pull consumer.
		return fmt.Errorf("collector: message metadata: %w", err)
	}
	b := s.cur
	if b.empty() {
		b.first = time.Now()
	}
	b.pending = append(b.pending, m)
	data := m.Data()
	b.bytes += int64(len(data))
	seq := meta.Sequence.Stream
	ingest := meta.Timestamp.UnixMicro()
	row, evt, err := b.dec.Decode(data, seq, ingest)
	if err != nil {
		var de *records.DecodeError
		if !errors.As(err, &de) {
			return err
		}
		s.deadLetter(b, m, seq, de.Reason, de.Error(), "")
		return s.maybeHandOff()
	}
	p := s.cfg.Policy
	if horizon := p.Window.FutureHorizon.D(); horizon > 0 && evt > ingest+horizon.Microseconds() {
		s.deadLetter(b, m, seq, messages.ReasonFuture, fmt.Sprintf("event time %s is more than %s after ingest time %s",
			time.UnixMicro(evt).UTC().Format(time.RFC3339), horizon, meta.Timestamp.UTC().Format(time.RFC3339)), "")
		return s.maybeHandOff()
	}
	// What the event may tell the watermark: its time, but never past its
	// arrival, so that a producer whose clock runs ahead cannot move the
	// watermark past the present and close windows before they end (its
	// events are still staged in their windows). Live events arrive after
	// their time, backfills long after: for them the cap changes nothing.
	wmEvt := min(evt, ingest)
	s.quorum.add(wmEvt, ingest, seq)
	if s.hop == nil {
		start, end := s.assign.AssignMicros(evt)
		if err := s.place(ctx, b, m, seq, meta.NumDelivered, evt, wmEvt, row, start, end); err != nil {
			return err
		}
		return s.maybeHandOff()
	}
	// Hopping: the event belongs to every window that covers it.
	s.wins = s.hop.AssignAllMicros(evt, s.wins[:0])
	for _, w := range s.wins {
		if err := s.place(ctx, b, m, seq, meta.NumDelivered, evt, wmEvt, row, w.StartUs, w.EndUs); err != nil {
			return err
		}
	}
	return s.maybeHandOff()
}

// place puts a decoded event into the buffer of window [start, end), or
// takes the late path when that window is closed.
func (s *Service) place(ctx context.Context, b *batch, m jetstream.Msg, seq, delivered uint64, evt, wmEvt int64, row parquet.Row, start, end int64) error {
	p := s.cfg.Policy
	if h := s.horizon.Load(); h != 0 && start < h {
		s.retired(b, m, seq, evt, windows.Window{Start: time.UnixMicro(start).UTC(), End: time.UnixMicro(end).UTC()})
		return nil
	}
	// With late: revise every event is staged: the registration's compare-and-set
	// decides whether it joins the window's current run or its next revision.
	if wm := s.watermark.Load(); p.Window.Late != windows.LateRevise && ((wm != 0 && end+p.Window.AllowedLateness.D().Microseconds() <= wm) || s.isSealed(start)) {
		win := windows.Window{Start: time.UnixMicro(start).UTC(), End: time.UnixMicro(end).UTC()}
		return s.lateOrStaged(ctx, b, m, seq, delivered, evt, win)
	}
	wb := b.buf[start]
	if wb == nil {
		wb = &windowBuf{win: windows.Window{Start: time.UnixMicro(start).UTC(), End: time.UnixMicro(end).UTC()}, minSeq: seq, minEvt: evt, maxEvt: evt, wmEvt: wmEvt}
		b.buf[start] = wb
	}
	wb.rows = append(wb.rows, row)
	wb.msgs = append(wb.msgs, m)
	if s.tracing && len(wb.links) < maxLinks {
		if tp := m.Headers().Get("traceparent"); tp != "" {
			if sc, ok := telemetry.ParseTraceParent(tp); ok {
				wb.links = append(wb.links, trace.Link{SpanContext: sc})
			}
		}
	}
	wb.minSeq, wb.maxSeq = min(wb.minSeq, seq), max(wb.maxSeq, seq)
	wb.minEvt, wb.maxEvt = min(wb.minEvt, evt), max(wb.maxEvt, evt)
	wb.wmEvt = max(wb.wmEvt, wmEvt)
	b.rows++
	return nil
}

func (s *Service) maybeHandOff() error {
	seg := s.cfg.Policy.Segment
	b := s.cur
	if b.rows >= seg.MaxRows || b.bytes >= int64(seg.MaxBytes) || len(b.pending) >= 4*seg.MaxRows {
		return s.handOff()
	}
	return nil
}

// flush writes one segment per window of the batch, registers them, and
// acks every message of the batch. On failure nothing more is acked: the
// messages are redelivered and the service must restart.
func (s *Service) flush(ctx context.Context, b *batch) error {
	s.stats.flushes.Add(1)
	flushStart := time.Now()
	starts := make([]int64, 0, len(b.buf))
	for k := range b.buf {
		starts = append(starts, k)
	}
	slices.Sort(starts)
	for _, start := range starts {
		if err := s.stage(ctx, b, b.buf[start]); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	// Dead-letter and late publishes must be stored before their sources are acked.
	if err := s.awaitPublishes(ctx, b); err != nil {
		return err
	}
	ackStart := time.Now()
	for _, m := range b.pending {
		if err := m.Ack(); err != nil {
			// The data is staged; a lost ack means a redelivery that dedup absorbs.
			s.log.Warn("ack", "err", err)
		}
	}
	s.log.Debug("flushed", "messages", len(b.pending), "rows", b.rows, "windows", len(b.buf),
		"took", time.Since(flushStart).Round(time.Millisecond), "acks_took", time.Since(ackStart).Round(time.Millisecond))
	return nil
}

func (s *Service) stage(ctx context.Context, b *batch, wb *windowBuf) error {
	p := s.cfg.Policy
	winID := wb.win.ID()
	t0 := time.Now()
	wmEvt, wmGate := wb.offer(b)
	reg, ack, err := staging.Write(ctx, s.cfg.JS, s.cfg.Store, s.layout, p,
		&staging.Segment{Window: wb.win, Rows: wb.rows, MinSeq: wb.minSeq, MaxSeq: wb.maxSeq, MinEvt: wb.minEvt, MaxEvt: wb.maxEvt, WatermarkEvt: wmEvt, WatermarkSeq: wmGate}, s.cfg.Instance)
	if err != nil {
		return err
	}
	segID, key, size := reg.SegmentID, reg.Object, reg.Bytes
	var late, retiring bool
	var run string // the window run's traceparent
	seg := windowstate.Segment{Reg: reg, Seq: ack.Sequence, StagedAt: t0}
	// A window's state is created only after the retirement horizon was
	// read afresh: the delete marker of a retired window's state is purged
	// after a while (statestore.PurgeRetired), and this collector's copy of
	// the horizon may be up to a pull old.
	horizonFresh := false
	for {
		_, err = s.cfg.States.Update(ctx, messages.WindowKey(p.Name, winID), func(cur *messages.WindowState) (*messages.WindowState, error) {
			late, retiring = false, false
			var w windowstate.Window
			if cur == nil {
				if !horizonFresh {
					return nil, errCreateWindow
				}
				run = s.cfg.Tracing.NewRun(ctx)
				w = windowstate.Window{Policy: p.Name, PolicyVersion: p.Version, Start: wb.win.Start, End: wb.win.End,
					TraceParent: run, TraceID: telemetry.TraceID(run)}
			}
			// A window sealed meanwhile takes the segment only at or below its
			// cutoff, or into its next revision (late: revise); else it is late.
			next, err := windowstate.Register(cur, w, seg, p.Window.Late == windows.LateRevise)
			switch {
			case errors.Is(err, windowstate.ErrLate):
				late, retiring = true, cur.Retiring
				s.sealed.Store(wb.win.Start.UnixMicro(), true)
				return nil, statestore.ErrNoChange
			case errors.Is(err, windowstate.ErrNoChange):
				return nil, statestore.ErrNoChange
			case err != nil:
				return nil, err
			}
			if next.Status == messages.StatusOpen {
				run = next.TraceParent
			}
			return next, nil
		})
		if !errors.Is(err, errCreateWindow) {
			break
		}
		if err := s.readRetirement(ctx); err != nil {
			return fmt.Errorf("register segment %s: %w", segID, err)
		}
		if h := s.horizon.Load(); h != 0 && wb.win.Start.UnixMicro() < h {
			err = statestore.ErrDeleted // retired: handled as below
			break
		}
		horizonFresh = true
	}
	retired := retiring || errors.Is(err, statestore.ErrDeleted)
	if errors.Is(err, statestore.ErrDeleted) {
		// The window was retired after this collector last read the
		// horizon: its state is gone and is never created again.
		if err := s.readRetirement(ctx); err != nil {
			return fmt.Errorf("register segment %s: %w", segID, err)
		}
		late = true
	} else if err != nil {
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
			if retired {
				s.retired(b, m, meta.Sequence.Stream, 0, wb.win)
				continue
			}
			if err := s.lateOrStaged(ctx, b, m, meta.Sequence.Stream, meta.NumDelivered, 0, wb.win); err != nil {
				return err
			}
		}
		return nil
	}
	s.stats.staged.Add(reg.Rows)
	s.stats.segments.Add(1)
	s.stats.segBytes.Add(size)
	if s.tracing && run != "" {
		// Recorded now that the run is known, over the segment's write and
		// registration.
		_, span := s.cfg.Tracing.Tracer().Start(telemetry.RunContext(ctx, run), "collector.segment",
			trace.WithTimestamp(t0), trace.WithLinks(wb.links...), trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				attribute.String("windrow.policy", p.Name), attribute.Int64("windrow.policy_version", int64(p.Version)),
				attribute.String("windrow.window", winID), attribute.String("windrow.segment", segID),
				attribute.String("windrow.object", key), attribute.Int64("windrow.rows", reg.Rows), attribute.Int64("windrow.bytes", size),
				attribute.Int64("windrow.source_seq.min", int64(reg.MinSourceSeq)), attribute.Int64("windrow.source_seq.max", int64(reg.MaxSourceSeq)),
				attribute.Int("windrow.producer_links", len(wb.links)),
				attribute.String("windrow.collector", s.cfg.Instance),
			))
		span.End()
	}
	return nil
}
