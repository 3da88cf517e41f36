// Package windowstate is the window state machine: what each event does to
// a window's state (messages.WindowState), as pure functions.
//
// A window's status goes OPEN → SEALED → COMPACTED → LOADED, or FAILED;
// a LOADED window goes back to SEALED under its next revision (late:
// revise), and to COMPACTED when it is replayed. Every function here takes
// the current state (nil when the window has none) and an event with its
// inputs, and returns the next state or an error that says why there is
// none:
//
//   - ErrNoChange: the event changes nothing (it is counted already, or
//     is stale): write nothing, and carry on;
//   - a *RefusedError (errors.Is(err, ErrRefused)): the event does not apply
//     to the window in its current status (another compactor sealed it, the
//     lease is lost, the window moved on). Callers decide what a refusal
//     means to them: often "nothing for me to do", sometimes an error.
//
// No other errors are returned. The functions are deterministic: they read
// no clock (callers pass now), do no I/O, and never modify cur: the state
// they return shares nothing with it (it may share the event's inputs,
// such as Compaction.Batches). They do not set UpdatedAt or validate the
// result: the state store does that when it writes.
//
// Callers run them inside the state store's compare-and-set
// (adapters/statestore Store.Update), which may call them several times
// against newer states, and translate ErrNoChange (and refusals they
// skip) into statestore.ErrNoChange: the store is an adapter and knows
// nothing of this package. Logging, tracing and the side effects of a
// transition stay with the caller.
//
// This package imports only the standard library and messages.
package windowstate
