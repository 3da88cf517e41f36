// Package windows holds window policies and the pure logic that turns event times
// into windows (tumbling, hopping, session) and key paths. It is a leaf: it does no I/O (policies are parsed from
// bytes; only time.LoadLocation reads the host's zone database), imports nothing
// of NATS, and never reads the clock. Every result is a function of its arguments,
// so the same events and policy always give the same windows.
//
// Files:
//
//   - policy.go: the Policy type and its parts, with documented defaults and limits.
//   - duration.go: Duration ("24h") and ByteSize ("64MiB") for YAML and JSON.
//   - parse.go: ParsePolicy — strict YAML, SetDefaults, Validate, errors with
//     file:line, field path and what would be valid, every problem at once.
//   - validate.go: SetDefaults, Validate, and field look-ups.
//   - window.go: Window, window IDs, and Assigner (event time → tumbling window).
//   - kinds.go, hopping.go: WindowAssigner (an event's windows) and
//     HoppingAssigner (size/slide windows built from tumbling panes).
//   - epochs.go: shape changes — PastShape (window_history), SwitchInstant
//     (the instant a new shape may apply from) and EpochAssigner (an event's
//     windows of the shape that applied at its time).
//   - session.go: Sessions (per-key windows closed after a gap).
//   - keys.go: key paths (Hive-style, escaped) and the per-window key cap.
//   - support.go: NotRunYet — what the language accepts and the services do
//     not run yet (hopping, session, key).
//   - watermark.go: Watermark (the event-time clock) and Segment.Due.
//   - errors.go: ErrInvalidPolicy, ErrInvalidWindowID and FieldError.
//
// # Windows
//
// Windows are half-open [Start, End), in UTC. Sizes dividing 24h align to local
// midnight in the policy's time zone (a day with a DST change has a 23h or 25h
// daily window); sizes of n whole days span n local days, aligned to the epoch's
// local day number. A window's ID is its start, "20060102T150405Z".
//
// A policy's window shape may change: the change applies from a switch
// instant T that ends a window of the old shape and starts one of the new
// shape (Policy.SwitchInstant), recorded in Policy.WindowHistory. Events
// before T get windows of the old shape, events from T those of the new one,
// and no window covers instants on both sides of T (EpochAssigner).
//
// # Watermark rule
//
// The watermark of a policy is the newest event time among staged records minus
// window.max_out_of_order. The caller (the collector) only reports event times of
// records that are durably staged and below the consumer's ack floor, so the
// watermark never runs ahead of what could be redelivered. When the source has
// had nothing pending or in flight for window.idle_timeout, the watermark
// advances by the time elapsed since it went idle (measured by the caller on a
// monotonic clock), never past the wall clock less max_out_of_order; a flush
// (the input declared complete at a wall time) moves it to that time less
// max_out_of_order. The watermark never goes back; a lower candidate is ignored.
//
// A window closes (is sealed) once the watermark reaches End + allowed_lateness;
// events for a closed window are late and handled by window.late.
package windows
