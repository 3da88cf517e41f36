// Package loadtest generates realistic event streams for windrow's demo,
// benchmarks and end-to-end tests, and measures runs against them.
//
// Generated streams are deterministic for a seed: the same seed gives the
// same events in the same order, so a failing run can be replayed, and the
// expected per-window counts and sums are computed from the same events the
// publisher sent.
package loadtest
