package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// ClusterConfig configures a Cluster.
type ClusterConfig struct {
	JS         jetstream.JetStream
	Policies   *policystore.Store
	Watermarks *statestore.Watermarks
	// Windows is the windrow_windows bucket; it is watched, not listed.
	Windows jetstream.KeyValue
	// Interval between refreshes of the policies, consumer lag and
	// watermarks. Default 5s.
	Interval time.Duration
	// Timeout bounds one refresh. Default 4s.
	Timeout time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
}

// Cluster keeps the cluster-wide gauges of every policy in a cached
// snapshot, so that a scrape reads memory only:
//
//   - every Interval, one bounded refresh reads the policies bucket, the
//     collector consumer of each policy (one consumer info request), its
//     source stream (one stream info, two with interior deletes, and one
//     more consumer info: inspect.SourceExpired) and its watermark (one KV
//     get);
//   - the windows bucket is watched: an index of each window's status, end,
//     load time and batch counts is kept up to date from the bucket's
//     updates, never by listing every state again. The aggregates (windows
//     by status, SLA) are computed from the index at each refresh.
type Cluster struct {
	cfg ClusterConfig

	mu   sync.Mutex
	snap Snapshot

	idxMu  sync.Mutex
	idx    map[string]windowEntry // by key; nil until the watch delivered the bucket's current values
	synced bool
}

// Snapshot is the cached cluster view.
type Snapshot struct {
	// At is when it was refreshed; zero before the first refresh.
	At time.Time
	// WindowsSynced: the window aggregates are known (the watch has
	// delivered the bucket's current values).
	WindowsSynced bool
	Policies      map[string]PolicySnapshot
}

// PolicySnapshot is the cluster view of one policy.
type PolicySnapshot struct {
	// Lag is pending + ack pending of the collector consumer; HasLag is
	// false while the consumer does not exist or could not be read.
	Lag    int64
	HasLag bool
	// Expired is the events the source stream removed before the
	// collectors' consumer reached them (inspect.SourceExpired); HasExpired
	// is false while the stream does not exist or could not be read.
	Expired    int64
	HasExpired bool
	// Watermark is the policy's watermark in the watermarks bucket; zero
	// before the compactor published one.
	Watermark time.Time
	// WatermarkMoved is when the compactor last wrote a new watermark
	// (it writes only when the value changes); zero with Watermark.
	WatermarkMoved time.Time
	Windows        map[messages.WindowStatus]int64
	PastSLA        int64 // not LOADED, end + sla.deadline passed
	SLAMissed      int64 // PastSLA plus LOADED after end + sla.deadline
	Batches        int64 // batches the windows list
	BatchesLoaded  int64 // of those, loaded
}

// windowEntry is what the index keeps of a window state.
type windowEntry struct {
	policy        string
	status        messages.WindowStatus
	end, loadedAt time.Time
	batches       int
	loadedBatches int
}

// stateFields are the fields of a WindowState the index needs.
type stateFields struct {
	Policy      string                `json:"policy"`
	WindowEnd   time.Time             `json:"window_end"`
	Status      messages.WindowStatus `json:"status"`
	BatchCount  int                   `json:"batch_count"`
	LoadedParts messages.PartSet      `json:"loaded_parts"`
	LoadedAt    time.Time             `json:"loaded_at"`
}

// NewCluster checks cfg and returns an idle Cluster; Run keeps it fresh.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	var errs []error
	if cfg.JS == nil {
		errs = append(errs, errors.New("JS: required"))
	}
	if cfg.Policies == nil {
		errs = append(errs, errors.New("Policies: required"))
	}
	if cfg.Watermarks == nil {
		errs = append(errs, errors.New("Watermarks: required"))
	}
	if cfg.Windows == nil {
		errs = append(errs, errors.New("Windows: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("metrics cluster: %w", err)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 4 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Cluster{cfg: cfg}, nil
}

// Snapshot returns the cached view; it never does I/O.
func (c *Cluster) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snap
}

// Run watches the windows bucket and refreshes the snapshot every Interval
// until ctx ends. A failed refresh keeps the previous values and is logged
// at debug level; a watch that ends (NATS connection closed) is restarted.
func (c *Cluster) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.watch(ctx)
	}()
	defer wg.Wait()
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Debug("metrics refresh", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh reads the policies, their consumer lag and watermarks (bounded by
// Timeout) and recomputes the window aggregates from the index.
func (c *Cluster) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	policies, err := c.cfg.Policies.List(ctx)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	prev := c.Snapshot()
	snap := Snapshot{At: c.cfg.Now(), Policies: make(map[string]PolicySnapshot, len(policies))}
	var errs []error
	for _, p := range policies {
		ps := PolicySnapshot{}
		if lag, err := inspect.CollectorLag(ctx, c.cfg.JS, p.Source.Stream, p.Name); err == nil {
			ps.Lag, ps.HasLag = int64(lag.Pending)+int64(lag.AckPending), true
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, err)
			old := prev.Policies[p.Name]
			ps.Lag, ps.HasLag = old.Lag, old.HasLag // keep the last known value
		}
		if loss, err := inspect.SourceExpired(ctx, c.cfg.JS, p); err == nil {
			ps.Expired, ps.HasExpired = loss.Expired, true
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, err)
			old := prev.Policies[p.Name]
			ps.Expired, ps.HasExpired = old.Expired, old.HasExpired
		}
		if wm, ok, err := c.cfg.Watermarks.Get(ctx, p.Name); err != nil {
			errs = append(errs, fmt.Errorf("watermark of %s: %w", p.Name, err))
			ps.Watermark, ps.WatermarkMoved = prev.Policies[p.Name].Watermark, prev.Policies[p.Name].WatermarkMoved
		} else if ok {
			ps.Watermark, ps.WatermarkMoved = wm.Watermark, wm.UpdatedAt
		}
		snap.Policies[p.Name] = ps
	}
	snap.WindowsSynced = c.aggregate(policies, snap.At, snap.Policies)
	c.mu.Lock()
	c.snap = snap
	c.mu.Unlock()
	return errors.Join(errs...)
}

// aggregate fills the window counts of each policy from the index; false
// while the index is not synced.
func (c *Cluster) aggregate(policies []*windows.Policy, now time.Time, out map[string]PolicySnapshot) bool {
	deadline := make(map[string]time.Duration, len(policies))
	for _, p := range policies {
		deadline[p.Name] = time.Duration(p.SLA.Deadline)
		ps := out[p.Name]
		ps.Windows = make(map[messages.WindowStatus]int64, len(Statuses))
		out[p.Name] = ps
	}
	c.idxMu.Lock()
	defer c.idxMu.Unlock()
	if !c.synced {
		return false
	}
	for _, w := range c.idx {
		ps, ok := out[w.policy]
		if !ok {
			continue // a window of a deleted policy
		}
		ps.Windows[w.status]++
		ps.Batches += int64(w.batches)
		ps.BatchesLoaded += int64(w.loadedBatches)
		// The one SLA rule of windrow status and the trace marks.
		st := messages.WindowState{Status: w.status, WindowEnd: w.end, LoadedAt: w.loadedAt}
		switch st.SLA(deadline[w.policy], now) {
		case messages.SLAOverdue:
			ps.PastSLA++
			ps.SLAMissed++
		case messages.SLAMissed:
			ps.SLAMissed++
		}
		out[w.policy] = ps
	}
	return true
}

// watch keeps the index from the windows bucket, restarting the watch when
// it ends, until ctx ends.
func (c *Cluster) watch(ctx context.Context) {
	for ctx.Err() == nil {
		err := c.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		c.cfg.Logger.Debug("metrics: windows watch ended; restarting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.cfg.Interval):
		}
	}
}

func (c *Cluster) watchOnce(ctx context.Context) error {
	w, err := natsx.Watch(ctx, c.cfg.Windows, []string{">"})
	if err != nil {
		return err
	}
	defer func() {
		_ = w.Stop()
		// The watcher's message handler blocks while its channel is full:
		// keep reading until the stopped subscription closes it, so that
		// the handler never holds up the connection's shutdown.
		go func() {
			for range w.Updates() {
			}
		}()
	}()
	building := map[string]windowEntry{} // the current values, until the marker
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case e, ok = <-w.Updates():
		}
		if !ok {
			return errors.New("watch closed")
		}
		if e == nil { // all current values delivered
			c.idxMu.Lock()
			c.idx, c.synced = building, true
			c.idxMu.Unlock()
			building = nil
			continue
		}
		if building != nil {
			apply(building, e)
			continue
		}
		c.idxMu.Lock()
		apply(c.idx, e)
		c.idxMu.Unlock()
	}
}

// apply records one bucket update in idx.
func apply(idx map[string]windowEntry, e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		delete(idx, e.Key())
		return
	}
	var st stateFields
	if err := json.Unmarshal(e.Value(), &st); err != nil || st.Policy == "" {
		delete(idx, e.Key()) // not a window state windrow wrote; not counted
		return
	}
	idx[e.Key()] = windowEntry{policy: st.Policy, status: st.Status, end: st.WindowEnd, loadedAt: st.LoadedAt,
		batches: st.BatchCount, loadedBatches: st.LoadedParts.Count()}
}
