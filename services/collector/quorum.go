package collector

import "slices"

// The watermark a collector offers is what a quorum of its recent events
// supports, not its newest event: a producer whose clock runs ahead, or one
// event from the future, must not move the watermark and close windows
// before their events are in. Each segment's offer (its newest event time,
// capped at ingest) is capped again at the time that all but 1% of the last
// quorumEvents events reached: outliers up to that share change nothing,
// and for events in order the offer lags the newest by 1% of the time the
// recent events span.
const (
	quorumEvents = 10_000
	// quorumOutliers is the share of recent events, in 1/100, whose times
	// are ignored as possible outliers.
	quorumOutliers = 1
)

// wmQuorum keeps the watermark offers of the last quorumEvents events.
type wmQuorum struct {
	ring   []int64
	next   int
	sorted []int64 // scratch
}

// add records an event's offer (µs).
func (q *wmQuorum) add(t int64) {
	if len(q.ring) < quorumEvents {
		q.ring = append(q.ring, t)
		return
	}
	q.ring[q.next] = t
	q.next = (q.next + 1) % quorumEvents
}

// cap is the time all but quorumOutliers% of the recent events reached
// (the k-th newest, k = n·quorumOutliers/100 + 1); with fewer than 100
// events it is the newest. ok is false before the first event.
func (q *wmQuorum) cap() (t int64, ok bool) {
	n := len(q.ring)
	if n == 0 {
		return 0, false
	}
	q.sorted = append(q.sorted[:0], q.ring...)
	slices.Sort(q.sorted)
	k := n*quorumOutliers/100 + 1
	return q.sorted[n-k], true
}
