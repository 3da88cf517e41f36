package collector

import "slices"

// The watermark a collector offers is what a quorum of its recent events
// supports, not its newest event: a producer whose clock runs ahead, or one
// event from the future, must not move the watermark and close windows
// before their events are in. Each segment's offer (its newest event time,
// capped at ingest) is capped again at the time that all but 1% of the last
// quorumEvents events ingested within quorumSpan of the newest reached:
// outliers up to that share change nothing, and for events in order the
// offer lags the newest by 1% of the time the recent events span. A slow
// stream has few events in quorumSpan, and with fewer than 100 the offer is
// the newest, as it was before the quorum.
const (
	quorumEvents = 10_000
	// quorumSpan (µs of ingest time) bounds how far back the quorum looks.
	quorumSpan = int64(60_000_000)
	// quorumOutliers is the share of recent events, in 1/100, whose times
	// are ignored as possible outliers.
	quorumOutliers = 1
)

// wmQuorum keeps the watermark offers of the last quorumEvents events.
type wmQuorum struct {
	ring   []offer
	next   int
	newest int64   // newest ingest time seen (µs)
	maxSeq uint64  // highest source sequence seen
	sorted []int64 // scratch
}

type offer struct{ t, ingest int64 }

// add records the offer t of the event at source sequence seq, ingested at
// ingest (µs).
func (q *wmQuorum) add(t, ingest int64, seq uint64) {
	q.newest = max(q.newest, ingest)
	q.maxSeq = max(q.maxSeq, seq)
	if len(q.ring) < quorumEvents {
		q.ring = append(q.ring, offer{t, ingest})
		return
	}
	q.ring[q.next] = offer{t, ingest}
	q.next = (q.next + 1) % quorumEvents
}

// cap is the time all but quorumOutliers% of the recent events reached
// (the k-th newest, k = n·quorumOutliers/100 + 1); with fewer than 100
// events it is the newest. seq is the highest source sequence among the events it was
// taken from: a segment whose offer the cap lowers speaks for them, so its
// offer may count only once the ack floor reaches seq (a segment of events
// from a clock a day ahead, early in the stream, would otherwise carry the
// time of events not yet staged past the ack floor's gate). ok is false
// before the first event.
func (q *wmQuorum) cap() (t int64, seq uint64, ok bool) {
	q.sorted = q.sorted[:0]
	for _, o := range q.ring {
		if o.ingest >= q.newest-quorumSpan {
			q.sorted = append(q.sorted, o.t)
		}
	}
	n := len(q.sorted)
	if n == 0 {
		return 0, 0, false
	}
	slices.Sort(q.sorted)
	k := n*quorumOutliers/100 + 1
	return q.sorted[n-k], q.maxSeq, true
}
