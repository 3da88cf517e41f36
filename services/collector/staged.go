package collector

import (
	"slices"
	"sync"
	"time"

	"github.com/windrow/windrow/messages"
)

// Bounds of the staged-set cache: the closed windows whose redeliveries a
// collector answers at a time are few (a recovery re-drains the windows of
// the last minutes), and a window of n events costs at most 16n bytes.
const (
	stagedCacheWindows = 8
	stagedCacheBytes   = 32 << 20
	// stagedRecheck is how long a staged set answers "staged" before its
	// window's state is read again to see whether its key still holds (a
	// "not staged" answer always reads it first).
	stagedRecheck = time.Second
)

// seqSet is an immutable set of source sequences, exact: a bitmap over
// [lo, lo+64·len(bits)) when that is the smaller form (dense: the window's
// events make up much of the stream between its first and last), else the
// sorted runs of consecutive sequences (sparse, or few long runs). Lookup is
// O(1) in the bitmap and O(log runs) in the runs.
type seqSet struct {
	lo   uint64
	bits []uint64
	runs []seqRun
}

// seqRun is a run of consecutive sequences, first and last included.
type seqRun struct{ first, last uint64 }

// newSeqSet builds the set of seqs; it sorts seqs in place.
func newSeqSet(seqs []uint64) seqSet {
	if len(seqs) == 0 {
		return seqSet{}
	}
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	runs := 1
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			runs++
		}
	}
	lo, hi := seqs[0], seqs[len(seqs)-1]
	if words := (hi-lo)/64 + 1; words*8 <= uint64(runs)*16 {
		bits := make([]uint64, words)
		for _, seq := range seqs {
			d := seq - lo
			bits[d/64] |= 1 << (d % 64)
		}
		return seqSet{lo: lo, bits: bits}
	}
	s := seqSet{runs: make([]seqRun, 0, runs)}
	r := seqRun{seqs[0], seqs[0]}
	for _, seq := range seqs[1:] {
		if seq != r.last+1 {
			s.runs = append(s.runs, r)
			r.first = seq
		}
		r.last = seq
	}
	s.runs = append(s.runs, r)
	return s
}

func (s *seqSet) has(seq uint64) bool {
	if s.bits != nil {
		if seq < s.lo {
			return false
		}
		d := seq - s.lo
		return d/64 < uint64(len(s.bits)) && s.bits[d/64]&(1<<(d%64)) != 0
	}
	_, ok := slices.BinarySearchFunc(s.runs, seq, func(r seqRun, seq uint64) int {
		switch {
		case r.last < seq:
			return -1
		case r.first > seq:
			return 1
		}
		return 0
	})
	return ok
}

// size is the set's memory in bytes, roughly.
func (s *seqSet) size() int { return 64 + 8*len(s.bits) + 16*len(s.runs) }

// stagedKey names what a closed window's staged set was built from; while
// the window's state yields the same key, the set is still the answer.
type stagedKey struct {
	window       string
	revision     int
	base, cutoff uint64 // registrations in (base, cutoff]: RevisionBase, LastSegmentSeq
	fromBatches  bool   // COMPACTED or LOADED: read from the batches, not the segments
	manifest     string // the run's manifest (with fromBatches)
	prior        string // the prior batches' manifest, and whether all of it
	priorAll     bool
	replays      int
}

// stagedKeyOf is the key of the staged set of the window in state st.
func stagedKeyOf(st *messages.WindowState) stagedKey {
	k := stagedKey{window: st.Key(), revision: st.Revision, base: st.RevisionBase, cutoff: st.LastSegmentSeq,
		fromBatches: st.Status == messages.StatusCompacted || st.Status == messages.StatusLoaded,
		prior:       st.PriorManifest, priorAll: st.PriorAll, replays: st.Replays}
	if k.fromBatches {
		k.manifest = st.Manifest
	}
	return k
}

// stagedIndex is the staged set of one closed window.
type stagedIndex struct {
	key     stagedKey
	set     seqSet
	checked time.Time // when key was last found to match the window's state; guarded by stagedCache.mu
}

// stagedCache keeps the staged sets of the closed windows most recently
// checked: at most stagedCacheWindows of them, and within stagedCacheBytes
// except that the newest is kept whatever its size (dropping it would make
// every lookup of its window rebuild it).
type stagedCache struct {
	mu      sync.Mutex
	entries []*stagedIndex // most recently used first
}

// get returns the window's index, if cached, and when its key was last
// confirmed.
func (c *stagedCache) get(window string) (*stagedIndex, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ix := range c.entries {
		if ix.key.window == window {
			copy(c.entries[1:i+1], c.entries[:i])
			c.entries[0] = ix
			return ix, ix.checked
		}
	}
	return nil, time.Time{}
}

// confirm records that ix's key matched the window's state at t.
func (c *stagedCache) confirm(ix *stagedIndex, t time.Time) {
	c.mu.Lock()
	ix.checked = t
	c.mu.Unlock()
}

// put caches ix, replacing the window's previous index, and evicts the
// least recently used beyond the bounds.
func (c *stagedCache) put(ix *stagedIndex) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = slices.DeleteFunc(c.entries, func(e *stagedIndex) bool { return e.key.window == ix.key.window })
	c.entries = slices.Insert(c.entries, 0, ix)
	total := 0
	for i, e := range c.entries {
		total += e.set.size()
		if i > 0 && (i >= stagedCacheWindows || total > stagedCacheBytes) {
			clear(c.entries[i:])
			c.entries = c.entries[:i]
			break
		}
	}
}
