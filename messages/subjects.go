package messages

import (
	"strconv"
	"strings"
)

// Streams and buckets windrow provisions. Names are fixed so that every
// service instance, whatever process it runs in, finds the same ones.
const (
	// StreamSegments holds SegmentRegistered messages, subject per policy and window.
	StreamSegments = "WINDROW_SEGMENTS"
	// StreamLoad holds LoadCommand messages, one per batch.
	StreamLoad = "WINDROW_LOAD"
	// StreamResults holds LoadResult messages.
	StreamResults = "WINDROW_RESULTS"
	// StreamDLQ holds dead-lettered events and late-drop markers.
	StreamDLQ = "WINDROW_DLQ"
	// StreamEvents holds WindowSealed notices and other lifecycle events for observers.
	StreamEvents = "WINDROW_EVENTS"

	// BucketWindows is the KV bucket of window states, key "<policy>.<window id>".
	BucketWindows = "windrow_windows"
	// BucketPolicies is the KV bucket of policies, key "<policy>".
	BucketPolicies = "windrow_policies"
	// BucketWatermarks is the KV bucket of policy watermarks, key "<policy>",
	// written by compactors and read by collectors to classify late events.
	BucketWatermarks = "windrow_watermarks"
)

// Subject prefixes; full subjects are built by the functions below.
const (
	prefixSegments = "windrow.segments."
	prefixLoad     = "windrow.load."
	prefixResults  = "windrow.result."
	prefixDLQ      = "windrow.dlq."
	prefixLate     = "windrow.late."
	prefixEvents   = "windrow.events."
)

// Subject filters of the windrow streams.
const (
	SubjectsSegments = prefixSegments + ">"
	SubjectsLoad     = prefixLoad + ">"
	SubjectsResults  = prefixResults + ">"
	SubjectsEvents   = prefixEvents + ">"
)

// SubjectsDLQ lists the subjects of StreamDLQ.
var SubjectsDLQ = []string{prefixDLQ + ">", prefixLate + ">"}

// SegmentSubject is where a segment of policy's window is registered.
func SegmentSubject(policy, windowID string) string {
	return prefixSegments + policy + "." + windowID
}

// SegmentFilter matches every segment registration of a policy.
func SegmentFilter(policy string) string { return prefixSegments + policy + ".>" }

// LoadSubject is where load commands of a policy are published.
func LoadSubject(policy string) string { return prefixLoad + policy }

// ResultSubject is where load results of a policy are published.
func ResultSubject(policy string) string { return prefixResults + policy }

// DLQSubject is where windrow versions before the per-event dead-letter
// subjects put a policy's dead letters; they are still read.
func DLQSubject(policy string) string { return prefixDLQ + policy }

// DeadLetterSubject is where the dead letter of source sequence seq of a
// policy goes: one subject per event (and window, where an event can be
// dead-lettered for several: hopping windows, key overflow), so a publish
// that expects the subject to be empty stores each dead letter once, however
// often the event is delivered. Policy names hold no dots, so it is never
// another policy's subject.
func DeadLetterSubject(policy string, seq uint64, windowID string) string {
	s := prefixDLQ + policy + ".seq." + strconv.FormatUint(seq, 10)
	if windowID != "" {
		s += "." + windowID
	}
	return s
}

// DeadLetterFilter matches every per-event dead-letter subject of a policy
// ("*" for all policies).
func DeadLetterFilter(policy string) string { return prefixDLQ + policy + ".seq.>" }

// RedrivenSubject is where `windrow dlq redrive` records the dead letters it
// re-published. Policy names hold no dots, so it is never another policy's
// dead-letter subject.
func RedrivenSubject(policy string) string { return prefixDLQ + policy + ".redriven" }

// DiscardedSubject is where `windrow dlq discard` (and a rebuild from the
// stream, for late events it recovered) records that the WINDROW_DLQ message
// dlqSeq, a dead letter or late-drop marker, is discarded: one subject per
// message, written once.
func DiscardedSubject(policy string, dlqSeq uint64) string {
	return prefixDLQ + policy + ".discarded." + strconv.FormatUint(dlqSeq, 10)
}

// DiscardedFilter matches every discard record of a policy ("*" for all
// policies).
func DiscardedFilter(policy string) string { return prefixDLQ + policy + ".discarded.>" }

// DLQFilter matches every dead-letter subject.
func DLQFilter() string { return prefixDLQ + ">" }

// LateSubject is where windrow versions before the per-event late subjects
// put the late-drop markers of a policy's window; they are still read.
func LateSubject(policy, windowID string) string { return prefixLate + policy + "." + windowID }

// LateMarkerSubject is where the late-drop marker of source sequence seq in
// a policy's window goes: one subject per event and window, written once
// (see DeadLetterSubject).
func LateMarkerSubject(policy, windowID string, seq uint64) string {
	return prefixLate + policy + "." + windowID + "." + strconv.FormatUint(seq, 10)
}

// LateFilter matches every late marker of a policy.
func LateFilter(policy string) string { return prefixLate + policy + ".>" }

// SealedSubject is where WindowSealed notices of a policy go.
func SealedSubject(policy string) string { return prefixEvents + "sealed." + policy }

// WindowKey is the KV key of a window's state.
func WindowKey(policy, windowID string) string { return policy + "." + windowID }

// RetirementKey is the key of a policy's retirement record (Retirement)
// in BucketWatermarks.
func RetirementKey(policy string) string { return policy + ".retired" }

// FlushKey is the key of a policy's flush request (FlushRequest) in
// BucketWatermarks.
func FlushKey(policy string) string { return policy + ".flush" }

// WindowKeyFilter matches every window key of a policy.
func WindowKeyFilter(policy string) string { return policy + ".*" }

// SplitWindowKey splits a window KV key into policy and window id.
func SplitWindowKey(key string) (policy, windowID string, ok bool) {
	i := strings.LastIndexByte(key, '.')
	if i <= 0 || i == len(key)-1 {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

// CollectorConsumer is the durable consumer shared by a policy's collectors on
// its source stream. Compactors read its ack floor for the watermark.
func CollectorConsumer(policy string) string { return "windrow_collector_" + policy }

// ResultsConsumer is the durable consumer of a policy's load results, shared
// by its compactors.
func ResultsConsumer(policy string) string { return "windrow_results_" + policy }
