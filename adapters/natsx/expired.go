package natsx

import (
	"slices"
	"strconv"
)

// Keys of the collector consumer's metadata recording the events the
// source stream removed before the consumer reached them (see
// docs/decisions/0009-source-stream-limits.md).
const (
	// MetaExpired is how many were recorded, in total.
	MetaExpired = "windrow_expired"
	// MetaExpiredThrough is the stream sequence recorded through: a later
	// gap is counted from above it, so nothing is counted twice.
	MetaExpiredThrough = "windrow_expired_through"
)

// Expired is the record of a collector consumer's metadata.
type Expired struct {
	Count   uint64
	Through uint64
}

// ParseExpired reads the record from consumer metadata; zero without one.
func ParseExpired(meta map[string]string) Expired {
	var e Expired
	e.Count, _ = strconv.ParseUint(meta[MetaExpired], 10, 64)
	e.Through, _ = strconv.ParseUint(meta[MetaExpiredThrough], 10, 64)
	return e
}

// Gap is how many messages below the stream's first sequence firstSeq the
// consumer never delivered (delivered is its Delivered.Stream, 0 without
// a consumer) and the record does not hold yet.
func (e Expired) Gap(firstSeq, delivered uint64) uint64 {
	from := max(delivered, e.Through)
	if firstSeq == 0 || firstSeq-1 <= from {
		return 0
	}
	return firstSeq - 1 - from
}

// Add records the gap below firstSeq and returns the new record.
func (e Expired) Add(firstSeq, delivered uint64) Expired {
	if gap := e.Gap(firstSeq, delivered); gap > 0 {
		return Expired{Count: e.Count + gap, Through: firstSeq - 1}
	}
	return e
}

// Set writes the record into meta (allocated if nil) and returns it.
func (e Expired) Set(meta map[string]string) map[string]string {
	if meta == nil {
		meta = map[string]string{}
	}
	meta[MetaExpired] = strconv.FormatUint(e.Count, 10)
	meta[MetaExpiredThrough] = strconv.FormatUint(e.Through, 10)
	return meta
}

// HoldsOnly reports whether every subject of a stream is covered by one of
// a policy's subjects: then every message the stream removes was one of
// the policy's events, and counting them is exact.
func HoldsOnly(streamSubjects, policySubjects []string) bool {
	return len(streamSubjects) > 0 && !slices.ContainsFunc(streamSubjects, func(s string) bool {
		return !slices.ContainsFunc(policySubjects, func(p string) bool { return SubjectCovers(p, s) })
	})
}
