package stack

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/app/metrics"
)

// DiskFull returns the disk-full condition of the stores this process
// writes: the object store, when it can run out of local space
// (objstore.DiskFullReporter: the local store), and the warehouse, when
// the loader runs here. /readyz, windrow_ready and windrow_disk_full show
// it. A full disk is transient: the roles retry their writes with backoff
// (the collector is restarted, the compactor backs off, the loader retries
// and redelivers) and no window fails over it.
func (s *Stack) DiskFull() []metrics.DiskFull {
	if !s.opened.Load() {
		return nil
	}
	var out []metrics.DiskFull
	if r, ok := s.Store.(objstore.DiskFullReporter); ok {
		since, full := r.DiskFull()
		out = append(out, metrics.DiskFull{Store: metrics.StoreObjects, Where: s.Store.String(), Full: full, Since: since})
	}
	if slices.Contains(s.cfg.Roles, RoleLoader) && s.Warehouse != nil {
		d := metrics.DiskFull{Store: metrics.StoreWarehouse, Where: s.Warehouse.String()}
		if ns := s.warehouseFull.Load(); ns != 0 {
			d.Full, d.Since = true, time.Unix(0, ns)
		}
		out = append(out, d)
	}
	return out
}

// diskFullProblems are the readiness problems of DiskFull: one line per
// full store.
func (s *Stack) diskFullProblems() []string {
	var out []string
	for _, d := range s.DiskFull() {
		if d.Full {
			out = append(out, d.Reason())
		}
	}
	return out
}

// diskFullWarehouse is the loader's warehouse, watched for a full disk:
// a load that fails with warehouse.ErrDiskFull sets since (Unix
// nanoseconds, the first such failure), the next load that succeeds clears
// it.
type diskFullWarehouse struct {
	warehouse.Warehouse
	since *atomic.Int64
}

func (w diskFullWarehouse) Load(ctx context.Context, b warehouse.Batch) (int64, bool, error) {
	rows, dup, err := w.Warehouse.Load(ctx, b)
	switch {
	case err == nil:
		w.since.Store(0)
	case errors.Is(err, warehouse.ErrDiskFull):
		w.since.CompareAndSwap(0, time.Now().UnixNano())
	}
	return rows, dup, err
}
