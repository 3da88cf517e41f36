// Package dlq reads and re-drives dead-lettered events.
//
// The collector dead-letters a bad event by publishing its original payload
// and headers, plus Windrow-Reason, -Detail, -Source-Stream, -Source-Subject,
// -Source-Seq and -Policy, to windrow.dlq.<policy>.seq.<source seq> in
// WINDROW_DLQ; late-drop markers (no payload) go to
// windrow.late.<policy>.<window>.<source seq>. Each subject is written once
// (a publish expecting it empty), so an event is dead-lettered once however
// often it is delivered; dead letters of earlier versions, on
// windrow.dlq.<policy> and windrow.late.<policy>.<window>, are read too.
// List, Entries and Get read them; Redrive publishes selected dead letters
// back to the subject they came from, as they were or replaced by fixed
// payloads; Discard settles them without a redrive.
//
// Discard contract: discarding dead letter (or marker) N of policy P stores
// one record on windrow.dlq.<P>.discarded.<N> (a publish expecting the
// subject empty: written once, whatever re-runs happen) with N's headers,
// Windrow-Discard-Of: N, Windrow-Discard-Reason and, when the event is in
// the table all the same (a rebuild recovered it), Windrow-Discard-Loaded:
// true. N itself stays, so its event is never dead-lettered again. Entries
// and List leave discarded ones out unless asked (Filter.Discarded), Redrive
// never sends them, and a reconciliation counts each as discarded, or as
// loaded only.
//
// Redrive contract: a dead letter is re-published at most once, whatever
// crashes or re-runs happen. For each dead letter N of policy P, in order:
//
//  1. a redrive record is stored on windrow.dlq.<P>.redriven (Nats-Msg-Id
//     "redriven-<P>-<N>"): N's headers, Windrow-Redrive-Of: N and, when the
//     payload is a fix, the exact bytes about to be published;
//  2. the payload is published to the source subject, on the source stream
//     only (expected-stream header), with Nats-Msg-Id "redrive-<P>-<N>",
//     Windrow-Redrive-Of: N and Windrow-Redrive-Policy: P, and the stream's
//     ack is awaited;
//  3. N is deleted from WINDROW_DLQ.
//
// A dead letter that is gone is never published again, so a second identical
// redrive publishes nothing. A dead letter that is still there but has a
// redrive record is "in doubt": a run stopped between steps 1 and 3. Every
// later Redrive of the policy finishes those first: it reads the source
// stream from the record's time on, headers only, for a message with
// Windrow-Redrive-Of: N of the policy; found, it only deletes N; not found,
// it publishes the recorded fix or N's payload (steps 2 and 3). Within the
// source stream's duplicate window the Nats-Msg-Id also makes a repeat
// publish a no-op. Deleting the dead letter (rather than marking it) keeps `ls` and the
// DLQ counts of `windrow status` about what is still to be handled; the
// redrive records keep the lineage (original source sequence, reason, time)
// for the DLQ stream's retention.
//
// Two redrives of one policy must not run at the same time: each would take
// the other's in-flight dead letters for interrupted ones. Their publishes
// still share Nats-Msg-Ids, so within the source stream's duplicate window
// (2 minutes for streams windrow creates) the stream stores each event once.
//
// A dead letter the collector cut to fit the stream (Windrow-Truncated) is
// redriven with the whole event, read from the source stream (Payload).
//
// Redrive refuses late-drop markers (there is no payload to send), dead
// letters of another policy, and, unless told otherwise, source subjects
// that another policy also collects: that policy would load the event a
// second time.
package dlq
