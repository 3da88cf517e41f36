// Package collector gathers a policy's events into time windows and stages
// them as Parquet segments.
//
// Ack contract. The collector pulls from a durable consumer per policy
// (explicit acks). A message is acked only after one of these is durable:
//   - its row is in a segment file in the object store, the segment's
//     registration is stored in the WINDROW_SEGMENTS stream, and the window's
//     state in KV was updated by compare-and-set while the window was OPEN;
//   - it was dead-lettered (bad record) or marked late, and the DLQ stream
//     acknowledged that publish.
//
// Messages are held un-acked only until the next segment flush (max_age, at
// most 30s, well inside the consumer's ack wait), never for a whole window.
//
// Redelivery. A message redelivered after a crash may be staged twice; the
// compactor drops the second copy by its source sequence. If a segment's
// window was sealed between staging and registration, the compare-and-set
// fails, the segment is deleted and its rows take the late path — they were
// never part of the sealed window.
package collector
