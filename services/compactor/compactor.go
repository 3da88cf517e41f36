package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/fanin"
	"github.com/windrow/windrow/pipeline/lifecycle"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/pipeline/windowstate"
	"github.com/windrow/windrow/windows"
)

// Config configures the compactor of one policy.
type Config struct {
	// Tracing records the compactor's spans of window runs; nil: off.
	Tracing *telemetry.Tracing
	JS      jetstream.JetStream
	Store   objstore.Store
	States  *statestore.Store
	// Watermarks receives the policy's watermark whenever it advances.
	Watermarks *statestore.Watermarks
	Policy     *windows.Policy
	Instance   string // owner name recorded on sealed windows, unique per running compactor; default lifecycle.DefaultInstance()+"/compactor"
	Logger     *slog.Logger
	// Tick is how often the watermark is recomputed. Default 250ms.
	Tick time.Duration
	// Lease is how long a sealed window stays with its owner without renewal
	// before another compactor may take it over. Default 2m.
	Lease time.Duration
	// Sweep is how often window states are scanned for repair work. Default 5s.
	Sweep time.Duration
	// Now is the wall clock, for leases, deadlines and the idle rule's cap.
	// Default time.Now.
	Now func() time.Time
	// Elapsed is a monotonic clock: the time since any fixed origin. The
	// idle rule measures idle spells on it, so that a wall clock that jumps
	// forward closes no window. Default: time since the Service was made.
	Elapsed func() time.Duration
	// RetiredMarkers is how long the delete marker a retired window's state
	// leaves in the windows bucket is kept before the sweep purges it
	// (statestore.PurgeRetired): long enough for every collector to have
	// read the retirement horizon. Default 1h.
	RetiredMarkers time.Duration
	// MergeFanIn is the most Parquet inputs (segments, earlier batches,
	// carried sessions, intermediate runs) a compaction holds open at once.
	// A window with more segments is merged in passes through intermediate
	// runs in MergeDir. Default 64, at least 2.
	MergeFanIn int
	// MergeMemory bounds, in bytes, the estimated read buffers of the
	// inputs a compaction merges at once (and the row group of a run being
	// written); more inputs than fit are merged in passes, as for
	// MergeFanIn. Default 256MiB.
	MergeMemory int64
	// MergeDir is the local directory of intermediate merge runs; it needs
	// room for about one window's compressed data. Default os.TempDir().
	MergeDir string
}

func (c *Config) setDefaults() {
	if c.Instance == "" {
		c.Instance = lifecycle.DefaultInstance() + "/compactor"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Tick == 0 {
		c.Tick = 250 * time.Millisecond
	}
	if c.Lease == 0 {
		c.Lease = 2 * time.Minute
	}
	if c.Sweep == 0 {
		c.Sweep = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Elapsed == nil {
		origin := time.Now() // carries a monotonic reading: time.Since uses it
		c.Elapsed = func() time.Duration { return time.Since(origin) }
	}
	if c.RetiredMarkers == 0 {
		c.RetiredMarkers = time.Hour
	}
	if c.MergeFanIn == 0 {
		c.MergeFanIn = fanin.DefaultFanIn
	}
	if c.MergeMemory == 0 {
		c.MergeMemory = fanin.DefaultMemory
	}
	if c.MergeDir == "" {
		c.MergeDir = os.TempDir()
	}
}

// Validate reports every missing or invalid field.
func (c *Config) Validate() error {
	var errs []error
	if c.JS == nil {
		errs = append(errs, errors.New("compactor: JS is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("compactor: Store is required"))
	}
	if c.States == nil {
		errs = append(errs, errors.New("compactor: States is required"))
	}
	if c.Watermarks == nil {
		errs = append(errs, errors.New("compactor: Watermarks is required"))
	}
	if c.Policy == nil {
		errs = append(errs, errors.New("compactor: Policy is required"))
	}
	if c.Tick < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("compactor: Tick %s, want >= 10ms", c.Tick))
	}
	if c.Lease < time.Second {
		errs = append(errs, fmt.Errorf("compactor: Lease %s, want >= 1s", c.Lease))
	}
	if c.MergeFanIn < 2 {
		errs = append(errs, fmt.Errorf("compactor: MergeFanIn %d, want >= 2", c.MergeFanIn))
	}
	if c.MergeMemory < 1<<20 {
		errs = append(errs, fmt.Errorf("compactor: MergeMemory %d bytes, want >= 1MiB", c.MergeMemory))
	}
	return errors.Join(errs...)
}

// Service compacts one policy.
type Service struct {
	cfg    Config
	layout *records.Layout
	log    *slog.Logger

	mu          sync.Mutex // guards the fields below, shared with the registration follower
	wm          *windows.Watermark
	points      []point                  // registrations whose sequences are not yet below the ack floor
	open        map[int64]windows.Window // windows that may still need sealing
	staged      bool                     // some staged event time fed the watermark
	byIdle      bool                     // the idle rule, not a staged event time, set the watermark's value
	byFlush     bool                     // a flush request set the watermark's value
	flush       pendingFlush             // the newest flush request, from a KV watcher
	ticks       uint64                   // ticks started, to order flush requests against consumer infos
	published   time.Time                // watermark last written to the watermarks bucket
	ackFloor    uint64                   // the collectors' consumer's ack floor at the last tick
	publishedAt time.Duration            // when (Config.Elapsed)

	idx         *windowIndex         // the policy's window states, kept by a KV watcher (index.go)
	collectors  jetstream.Consumer   // the collectors' consumer, tick goroutine only
	republished map[string]time.Time // sweep goroutine only: when load commands of a COMPACTED window were last published again
	slaMarked   map[string]bool      // sweep goroutine only: overdue windows already marked on their trace
	tempsSwept  time.Time            // sweep goroutine only: when stale temporary files were last removed
	// Sweep goroutine only: when this process last deleted a retired
	// window's state (or started: earlier runs may have left markers), and
	// last purged the markers of retired windows.
	lastRetired, markersPurged time.Time
	// diskFull is the backoff of compactions after one found the object
	// store's disk full (tick and sweep goroutine only): none is started
	// before diskFullUntil; the wait doubles while the disk stays full.
	diskFullWait  time.Duration
	diskFullUntil time.Time

	stats struct {
		sealed, compacted, results, terminated atomic.Int64
	}
	tracer trace.Tracer

	life  *lifecycle.State
	fatal chan error // a consume context cannot go on
}

// Stats are a compactor's counters since it started. Every field is a
// counter exported as the metric its tags name (see collector.Stats).
type Stats struct {
	Sealed            int64 `metric:"windrow.compactor.windows.sealed" unit:"{window}" help:"Windows this process's compactor sealed."`
	Compacted         int64 `metric:"windrow.compactor.windows.compacted" unit:"{window}" help:"Windows this process's compactor compacted into batches."`
	Results           int64 `metric:"windrow.compactor.results.applied" unit:"{result}" help:"Load results applied to window states."`
	ResultsTerminated int64 `metric:"windrow.compactor.results.terminated" unit:"{result}" help:"Unreadable load results terminated."`
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	return Stats{
		Sealed: s.stats.sealed.Load(), Compacted: s.stats.compacted.Load(),
		Results: s.stats.results.Load(), ResultsTerminated: s.stats.terminated.Load(),
	}
}

type point struct {
	maxSeq uint64
	maxEvt time.Time
}

// New checks cfg and builds the service.
func New(cfg Config) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Policy.NotRunYet(""); err != nil {
		return nil, fmt.Errorf("%s %s: %w", "compactor", cfg.Policy.Name, err)
	}
	layout, err := records.NewLayout(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("compactor %s: %w", cfg.Policy.Name, err)
	}
	return &Service{
		cfg: cfg, layout: layout,
		log:         cfg.Logger.With("service", "compactor", "policy", cfg.Policy.Name, "policy_version", cfg.Policy.Version),
		wm:          windows.NewWatermark(cfg.Policy.Window),
		open:        map[int64]windows.Window{},
		republished: map[string]time.Time{},
		slaMarked:   map[string]bool{},
		lastRetired: cfg.Now(), // markers an earlier run left are purged too
		tracer:      cfg.Tracing.Tracer(),
		life:        lifecycle.New("compactor " + cfg.Policy.Name),
		fatal:       make(chan error, 1),
	}, nil
}

// Watermark returns the policy's current watermark, if any.
func (s *Service) Watermark() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wm.Value()
}

// Run seals, compacts and tracks load results until ctx is done or
// Shutdown is called. It returns nil when stopped, and an error when it
// cannot go on (a consumer it needs is gone): its supervisor restarts it.
// Run runs once; a second call returns an error.
func (s *Service) Run(ctx context.Context) (err error) {
	if err := s.life.Start(); err != nil {
		return err
	}
	defer s.life.Done()
	defer func() {
		if ctx.Err() != nil {
			err = nil // stopped, possibly while starting: a clean stop
		}
	}()
	if s.life.Stopping() {
		return nil
	}
	p := s.cfg.Policy
	follow, err := s.followRegistrations(ctx)
	if err != nil {
		return err
	}
	defer s.drain(follow, "registrations")
	results, err := s.consumeResults(ctx)
	if err != nil {
		return err
	}
	// Drained first (defers run last in, first out): a result being applied
	// finishes and is acked before Run returns.
	defer s.drain(results, "load results")

	// The watermark never goes back, also across restarts.
	if wm, ok, err := s.cfg.Watermarks.Get(ctx, p.Name); err != nil {
		return fmt.Errorf("compactor %s: %w", p.Name, err)
	} else if ok {
		s.mu.Lock()
		s.wm.Restore(wm.Watermark)
		s.published, s.byIdle, s.byFlush = wm.Watermark, wm.Idle, wm.Flush
		s.flush.applied = wm.FlushRev
		s.mu.Unlock()
	}
	// The sweep reads the states that can need work from an index a KV
	// watcher keeps, instead of listing every state.
	ictx, stopIndex := context.WithCancel(ctx)
	defer stopIndex()
	if err := s.startIndex(ictx); err != nil {
		return err
	}
	if err := s.cfg.Watermarks.WatchFlush(ictx, p.Name, func(req messages.FlushRequest, rev uint64) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.flush.req, s.flush.rev, s.flush.seenTick = req, rev, s.ticks
	}); err != nil {
		return err
	}
	s.log.Info("compacting", "instance", s.cfg.Instance)
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	lastSweep := time.Time{}
	for {
		if s.cfg.Now().Sub(lastSweep) >= s.cfg.Sweep {
			if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("sweep", "err", err)
			}
			lastSweep = s.cfg.Now()
		}
		if err := s.tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.life.Stop():
			return nil
		case err := <-s.fatal:
			return fmt.Errorf("compactor %s: %w", p.Name, err)
		case <-tick.C:
		}
	}
}

// Shutdown stops taking in registrations and results, lets the tick, sweep
// or result in flight finish (a result is acked), and returns when Run has
// returned, or with ctx's error when ctx ends first. Before Run it only makes
// a later Run return at once. Shutdown is idempotent.
func (s *Service) Shutdown(ctx context.Context) error { return s.life.Shutdown(ctx) }

// drainWait bounds how long Run waits for a drained consumer to finish the
// message in its handler.
const drainWait = 30 * time.Second

// drain stops cc from pulling and waits until its handler has finished the
// messages already delivered (bounded by drainWait).
func (s *Service) drain(cc jetstream.ConsumeContext, what string) {
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(drainWait):
		s.log.Warn("consumer still draining; stopped", "consumer", what, "after", drainWait)
		cc.Stop()
	}
}

// consumeErrors is the error handler of the service's consume contexts:
// errors the client recovers from (missed heartbeats, a leader change) are
// logged; a closed connection, and for a durable consumer its deletion, end
// Run with an error, so that its supervisor restarts it and the consumer is
// made again. (An ordered consumer makes itself again on its own.)
func (s *Service) consumeErrors(what string, durable bool) jetstream.ConsumeErrHandler {
	return func(_ jetstream.ConsumeContext, err error) {
		gone := errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrBadRequest)
		if errors.Is(err, jetstream.ErrConnectionClosed) || (durable && gone) {
			select {
			case s.fatal <- fmt.Errorf("consume %s: %w", what, err):
			default: // one is enough
			}
			return
		}
		if !s.life.Stopping() {
			s.log.Warn("consume "+what, "err", err)
		}
	}
}

// followRegistrations follows the policy's segment registrations (an
// ordered consumer from the start of the stream) into the watermark.
func (s *Service) followRegistrations(ctx context.Context) (jetstream.ConsumeContext, error) {
	p := s.cfg.Policy
	regs, err := s.cfg.JS.OrderedConsumer(ctx, messages.StreamSegments, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{messages.SegmentFilter(p.Name)}, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("compactor %s: follow registrations: %w", p.Name, err)
	}
	follow, err := regs.Consume(s.onRegistration, s.consumeErrors("registrations", false))
	if err != nil {
		return nil, fmt.Errorf("compactor %s: follow registrations: %w", p.Name, err)
	}
	return follow, nil
}

// consumeResults applies the policy's load results to its window states,
// from the durable consumer the policy's compactors share.
func (s *Service) consumeResults(ctx context.Context) (jetstream.ConsumeContext, error) {
	p := s.cfg.Policy
	results, err := s.cfg.JS.CreateOrUpdateConsumer(ctx, messages.StreamResults, jetstream.ConsumerConfig{
		Durable:       messages.ResultsConsumer(p.Name),
		Description:   "windrow compactors of policy " + p.Name + ": load results",
		FilterSubject: messages.ResultSubject(p.Name),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		// A result that cannot be applied (KV unavailable) is retried with a
		// delay, without limit: dropping it would leave the window unloaded.
		MaxDeliver: -1,
	})
	if err != nil {
		return nil, fmt.Errorf("compactor %s: results consumer: %w", p.Name, err)
	}
	rc, err := results.Consume(func(m jetstream.Msg) { s.onResult(ctx, m) }, s.consumeErrors("load results", true))
	if err != nil {
		return nil, fmt.Errorf("compactor %s: consume results: %w", p.Name, err)
	}
	return rc, nil
}

// onResult applies one load result and acks it; see applyResult.
func (s *Service) onResult(ctx context.Context, m jetstream.Msg) {
	err := s.applyResult(ctx, m)
	var poison *poisonError
	switch {
	case errors.As(err, &poison):
		// It will never become readable: terminate it, with the
		// reason logged and counted, rather than redeliver it forever.
		s.stats.terminated.Add(1)
		s.log.Error("load result terminated", "reason", poison.reason, "err", poison.err)
		if err := m.Term(); err != nil {
			s.log.Warn("terminate load result; redelivered after the ack wait", "err", err)
		}
		return
	case err != nil:
		s.log.Warn("apply load result; retrying", "err", err)
		if err := m.NakWithDelay(time.Second); err != nil {
			s.log.Warn("nak load result; redelivered after the ack wait", "err", err)
		}
		return
	}
	s.stats.results.Add(1)
	if err := m.Ack(); err != nil {
		s.log.Warn("ack load result", "err", err)
	}
}

func (s *Service) onRegistration(m jetstream.Msg) {
	var reg messages.SegmentRegistered
	if err := messages.Decode(m.Headers().Get(messages.HeaderType), m.Data(), &reg); err != nil {
		s.log.Error("skipping undecodable segment registration", "subject", m.Subject(), "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.points = append(s.points, point{maxSeq: reg.WatermarkGate(), maxEvt: reg.WatermarkFeed()})
	s.open[reg.WindowStart.UnixMicro()] = windows.Window{Start: reg.WindowStart.UTC(), End: reg.WindowEnd.UTC()}
}

// pendingFlush is the newest flush request the watcher delivered.
type pendingFlush struct {
	req      messages.FlushRequest
	rev      uint64 // its KV revision; 0: none yet
	seenTick uint64 // Service.ticks when it arrived: only a later tick's consumer info covers it
	applied  uint64 // revision of the last request applied
}

// tick advances the watermark and seals and compacts every window it closed.
func (s *Service) tick(ctx context.Context) error {
	p := s.cfg.Policy
	if s.collectors == nil {
		cons, err := s.cfg.JS.Consumer(ctx, p.Source.Stream, messages.CollectorConsumer(p.Name))
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil // no collector has started yet
		}
		if err != nil {
			return fmt.Errorf("collector consumer: %w", err)
		}
		s.collectors = cons
	}
	s.mu.Lock()
	s.ticks++
	thisTick := s.ticks
	s.mu.Unlock()
	info, err := s.collectors.Info(ctx)
	if err != nil {
		s.collectors = nil // look it up again next time (deleted, recreated)
		return fmt.Errorf("collector consumer info: %w", err)
	}
	now, elapsed := s.cfg.Now(), s.cfg.Elapsed()
	s.mu.Lock()
	s.ackFloor = info.AckFloor.Stream
	keep := s.points[:0]
	for _, pt := range s.points {
		if pt.maxSeq <= info.AckFloor.Stream {
			before, _ := s.wm.Value()
			s.wm.Staged(pt.maxEvt)
			if after, _ := s.wm.Value(); after.After(before) {
				s.byIdle, s.byFlush = false, false
			}
			s.staged = true
		} else {
			keep = append(keep, pt)
		}
	}
	s.points = keep
	// The idle rule starts only once events have been staged: before that
	// there is no window to close, and a watermark from the wall clock
	// would turn a replay of history that starts later into late data.
	if s.staged && info.NumPending == 0 && info.NumAckPending == 0 && len(s.points) == 0 {
		before, _ := s.wm.Value()
		idleFor := s.wm.Idle(now, elapsed)
		if after, _ := s.wm.Value(); after.After(before) {
			s.byIdle, s.byFlush = true, false
		}
		// A flush request applies once a consumer info taken after it
		// arrived shows everything published before it acked, and the
		// source stayed idle for idle_timeout (so that the registrations of
		// the last segments, published before their acks, have arrived).
		if f := &s.flush; f.rev > f.applied && f.seenTick < thisTick && idleFor >= s.cfg.Policy.Window.IdleTimeout.D() {
			f.applied = f.rev
			before, _ := s.wm.Value()
			s.wm.Flushed(f.req.At)
			if after, _ := s.wm.Value(); after.After(before) {
				s.byIdle, s.byFlush = false, true
				s.log.Info("flush: input declared complete", "at", f.req.At, "by", f.req.By, "watermark", after)
			}
		}
	} else {
		s.wm.Busy()
	}
	var due []windows.Window
	for _, w := range s.open {
		if s.wm.Closed(w) {
			due = append(due, w)
		}
	}
	wm, hasWM := s.wm.Value()
	idle, flushed, flushRev := s.byIdle, s.byFlush, s.flush.applied
	// Written when it moved, at most once a second (the idle rule moves it
	// on every tick); collectors read it every 250ms.
	publish := hasWM && !wm.Equal(s.published) && (s.published.IsZero() || elapsed-s.publishedAt >= time.Second)
	s.mu.Unlock()

	if publish {
		if err := s.cfg.Watermarks.Put(ctx, messages.Watermark{Policy: p.Name, Watermark: wm.UTC(), Idle: idle, Flush: flushed, FlushRev: flushRev}); err != nil {
			return err
		}
		s.mu.Lock()
		s.published, s.publishedAt = wm, elapsed
		s.mu.Unlock()
	}

	// Nearest deadline first.
	slices.SortFunc(due, func(a, b windows.Window) int { return a.End.Compare(b.End) })
	for _, w := range due {
		st, err := s.seal(ctx, w, wm)
		if err != nil {
			return err
		}
		s.mu.Lock()
		delete(s.open, w.Start.UnixMicro())
		s.mu.Unlock()
		if st != nil && !s.diskFullBackoff() {
			// (While backing off, the sweep compacts it later.)
			if err := s.compact(ctx, st); err != nil {
				s.logCompactErr(st, err)
			}
		}
	}
	return nil
}

// seal closes an OPEN window. It returns the state when this instance owns
// the sealed window, nil when there is nothing for it to do.
func (s *Service) seal(ctx context.Context, w windows.Window, wm time.Time) (*messages.WindowState, error) {
	p := s.cfg.Policy
	now := s.cfg.Now().UTC()
	sealed := false
	st, err := s.cfg.States.Update(ctx, messages.WindowKey(p.Name, w.ID()), func(cur *messages.WindowState) (*messages.WindowState, error) {
		sealed = false
		next, err := windowstate.Seal(cur, now, wm, windowstate.Lease{Owner: s.cfg.Instance, For: s.cfg.Lease})
		if err != nil {
			return nil, noWrite(err)
		}
		sealed = true
		return next, nil
	})
	if err != nil {
		return nil, fmt.Errorf("seal window %s: %w", w.ID(), err)
	}
	if !sealed {
		return nil, nil
	}
	s.stats.sealed.Add(1)
	_, span := s.tracer.Start(telemetry.RunContext(ctx, st.TraceParent), "compactor.seal", trace.WithTimestamp(now),
		trace.WithAttributes(append(runAttrs(p.Name, st),
			attribute.String("windrow.watermark", wm.UTC().Format(time.RFC3339Nano)),
			attribute.Int64("windrow.segments", st.Segments), attribute.Int64("windrow.cutoff_seq", int64(st.LastSegmentSeq)),
			attribute.String("windrow.compactor", s.cfg.Instance))...))
	defer span.End()
	s.log.InfoContext(trace.ContextWithSpan(ctx, span), "sealed window", "window", w.ID(), "watermark", wm.UTC(), "segments", st.Segments, "cutoff", st.LastSegmentSeq)
	notice := &messages.WindowSealed{
		Policy: p.Name, PolicyVersion: p.Version, WindowStart: st.WindowStart, WindowEnd: st.WindowEnd, Revision: st.Revision,
		Watermark: st.Watermark, Segments: st.Segments, CutoffSeq: st.LastSegmentSeq, SealedAt: now,
	}
	if _, err := natsx.Publish(ctx, s.cfg.JS, messages.SealedSubject(p.Name), notice, nil); err != nil {
		// The notice is for observers; the state in KV is what counts.
		s.log.Warn("publish window sealed notice", "window", w.ID(), "err", err)
	}
	return st, nil
}

// tempSweepEvery is how often the policy's pending-write files left by
// killed processes are looked for; tempMaxAge is how old one must be.
const (
	tempSweepEvery = time.Hour
	tempMaxAge     = time.Hour
)

// removeStaleTemps deletes what a process killed mid-write left behind in
// the policy's staging and batch prefixes (the local store's ".tmp-" files),
// in stores that can leave something (objstore.TempSweeper), and the
// intermediate merge runs of compactions killed midway in MergeDir.
func (s *Service) removeStaleTemps(ctx context.Context) {
	// Run directories carry file system (wall clock) times, not Now's.
	if n, err := fanin.RemoveStale(s.cfg.MergeDir, time.Now().Add(-tempMaxAge)); err != nil {
		s.log.Warn("remove stale merge runs", "dir", s.cfg.MergeDir, "err", err)
	} else if n > 0 {
		s.log.Info("removed merge runs left by interrupted compactions", "dir", s.cfg.MergeDir, "runs", n)
	}
	sweeper, ok := s.cfg.Store.(objstore.TempSweeper)
	if !ok {
		return
	}
	p := s.cfg.Policy
	for _, prefix := range []string{"staging/" + p.Name, "batches/" + p.Name} {
		n, err := sweeper.RemoveStaleTemps(ctx, prefix, s.cfg.Now().Add(-tempMaxAge))
		if err != nil && ctx.Err() == nil {
			s.log.Warn("remove stale temporary files", "prefix", prefix, "err", err)
		}
		if n > 0 {
			s.log.Info("removed temporary files left by interrupted writes", "prefix", prefix, "files", n)
		}
	}
}

// republishEvery bounds how often a COMPACTED window's load commands are
// published again (the load stream's duplicate window is 20 minutes).
const republishEvery = 5 * time.Minute

// sweep repairs what a crash may have left: windows OPEN in KV that no
// registration announced to this instance, SEALED windows whose owner's
// lease expired, and COMPACTED windows whose load commands may be lost;
// then it retires old windows (retire).
func (s *Service) sweep(ctx context.Context) error {
	p := s.cfg.Policy
	rec, _, err := s.cfg.Watermarks.Retirement(ctx, p.Name)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	if now.Sub(s.tempsSwept) >= tempSweepEvery {
		s.tempsSwept = now
		s.removeStaleTemps(ctx)
	}
	pl := s.idx.plan(p.Name, rec, s.retireRule(now))
	// In window order: within a policy, nearest deadline first. Only the
	// windows that can need work are read (see index.go).
	for _, start := range pl.work {
		st, _, err := s.cfg.States.Get(ctx, p.Name, messages.WindowID(start))
		if errors.Is(err, statestore.ErrNotFound) {
			continue // deleted since the index saw it
		}
		if err != nil {
			return err
		}
		if st.Retiring && rec.Retired(st.WindowStart) {
			// Counted in the retirement record; its deletion was interrupted.
			if err := s.deleteRetired(ctx, st); err != nil {
				return err
			}
			continue
		}
		s.markOverdue(ctx, st)
		if _, next := pl.pane(st.WindowEnd); st.CarryRows > 0 && (st.Status == messages.StatusCompacted || st.Status == messages.StatusLoaded) && !next {
			// Session windows: the pane that loads the sessions this one
			// carried is missing (a crash right after the compaction).
			if err := s.openNextPane(ctx, st); err != nil {
				return err
			}
		}
		switch st.Status {
		case messages.StatusOpen:
			s.mu.Lock()
			s.open[st.WindowStart.UnixMicro()] = windows.Window{Start: st.WindowStart.UTC(), End: st.WindowEnd.UTC()}
			s.mu.Unlock()
			// early_every, early_rows: loaded before it closes.
			sealed, err := s.sealEarly(ctx, st, now)
			if err != nil {
				return err
			}
			if sealed != nil {
				if err := s.compact(ctx, sealed); err != nil {
					s.logCompactErr(sealed, err)
				}
			}
		case messages.StatusSealed:
			if (st.Owner != s.cfg.Instance && now.Before(st.LeaseUntil)) || s.diskFullBackoff() {
				continue
			}
			claimed, err := s.claim(ctx, st)
			if err != nil {
				return err
			}
			if claimed != nil {
				if err := s.compact(ctx, claimed); err != nil {
					s.logCompactErr(st, err)
				} else {
					s.diskFullWait = 0
				}
			}
		case messages.StatusCompacted:
			// Publish the load commands again in case they were lost, but
			// at most every republishEvery: well inside the load stream's
			// duplicate window, so repeats are dropped there instead of
			// piling up while a loader is down.
			if now.Sub(st.UpdatedAt) < s.cfg.Sweep || now.Sub(s.republished[st.Key()]) < republishEvery {
				continue
			}
			if err := s.publishLoads(ctx, st, nil); err != nil {
				return err
			}
			s.republished[st.Key()] = now
		case messages.StatusLoaded:
			if !st.StagingDeleted {
				s.cleanup(ctx, st)
				continue
			}
			closed := s.closed(windows.Window{Start: st.WindowStart.UTC(), End: st.WindowEnd.UTC()})
			if !s.reviseDue(st, now, closed) {
				continue
			}
			rev, err := s.startRevision(ctx, st, closed)
			if err != nil {
				return err
			}
			if rev != nil {
				if err := s.compact(ctx, rev); err != nil {
					s.log.Error("compact revision; will retry after the lease", "window", st.ID(), "revision", rev.Revision, "err", err)
				}
			}
		}
	}
	if err := s.retire(ctx, pl, rec, now); err != nil {
		return err
	}
	return s.purgeRetired(ctx, now)
}

// purgeRetired purges the delete markers of retired windows older than
// RetiredMarkers, at most once per RetiredMarkers, while this process has
// retired windows whose markers may remain.
func (s *Service) purgeRetired(ctx context.Context, now time.Time) error {
	if s.lastRetired.IsZero() || now.Sub(s.markersPurged) < s.cfg.RetiredMarkers {
		return nil
	}
	n, err := s.cfg.States.PurgeRetired(ctx, s.cfg.JS, s.cfg.Policy.Name, now.Add(-s.cfg.RetiredMarkers))
	if err != nil {
		return err
	}
	s.markersPurged = now
	if s.lastRetired.Before(now.Add(-s.cfg.RetiredMarkers)) {
		s.lastRetired = time.Time{} // every marker it left was old enough
	}
	if n > 0 {
		s.log.Info("purged the delete markers of retired windows", "markers", n, "older_than", s.cfg.RetiredMarkers)
	}
	return nil
}

// Bounds of the backoff after a compaction found the disk full: from the
// sweep interval, doubling up to diskFullMaxWait.
const diskFullMaxWait = time.Minute

// diskFullBackoff says whether compactions wait, after one found the object
// store's disk full, before they are tried again.
func (s *Service) diskFullBackoff() bool {
	return s.diskFullWait > 0 && s.cfg.Now().Before(s.diskFullUntil)
}

// logCompactErr logs a failed compaction, which the sweep retries. A full
// disk (objstore.ErrDiskFull) is transient: the window stays SEALED, and
// compactions back off (diskFullBackoff) until one succeeds.
func (s *Service) logCompactErr(st *messages.WindowState, err error) {
	if errors.Is(err, errPaneWaits) {
		s.log.Debug("compact pane later", "window", st.ID(), "err", err)
		return
	}
	if errors.Is(err, objstore.ErrDiskFull) {
		s.diskFullWait = min(max(2*s.diskFullWait, s.cfg.Sweep), diskFullMaxWait)
		s.diskFullUntil = s.cfg.Now().Add(s.diskFullWait)
		s.log.Error("compact window: the object store's disk is full; the window waits, retried after the backoff until space is freed",
			"window", st.ID(), "backoff", s.diskFullWait, "err", err)
		return
	}
	s.log.Error("compact window; will retry after the lease", "window", st.ID(), "err", err)
}

// claim takes over a sealed window from an owner whose lease expired (or
// from this instance's previous life).
func (s *Service) claim(ctx context.Context, st *messages.WindowState) (*messages.WindowState, error) {
	now := s.cfg.Now().UTC()
	claimed := false
	out, err := s.cfg.States.Update(ctx, st.Key(), func(cur *messages.WindowState) (*messages.WindowState, error) {
		claimed = false
		next, err := windowstate.Claim(cur, now, windowstate.Lease{Owner: s.cfg.Instance, For: s.cfg.Lease})
		if err != nil {
			return nil, noWrite(err)
		}
		if cur.Owner != s.cfg.Instance {
			s.log.Info("taking over sealed window", "window", cur.ID(), "from", cur.Owner)
		}
		claimed = true
		return next, nil
	})
	if err != nil || !claimed {
		return nil, err
	}
	return out, nil
}
