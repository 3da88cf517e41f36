// Package compactor closes a policy's windows and turns each closed window's
// staged segments into final Parquet batches and load commands.
//
// Watermark. The compactor follows every segment registration of its policy
// (an ordered consumer on WINDROW_SEGMENTS). A registration's newest event
// time counts toward the watermark only once the collectors' consumer ack
// floor has passed the registration's highest source sequence: every event at
// or below the ack floor is staged, whichever collector instance took it, so
// a fast instance cannot close a window a slow one is still filling. The
// watermark is the newest such event time minus max_out_of_order. When the
// source has had nothing pending or in flight for idle_timeout, the watermark
// follows the wall clock (now - max_out_of_order), so the last window of a
// replay or of a quiet night closes too.
//
// Seal. A window whose end + allowed_lateness the watermark has passed is
// sealed by compare-and-set (OPEN → SEALED, owner and lease recorded). The
// seal freezes the cutoff: the registrations at or below the state's
// LastSegmentSeq are the window, nothing else.
//
// Compact. The owner merges the window's segments (k-way merge, sorted by the
// policy's sort fields then source sequence; at most Config.MergeFanIn
// inputs open and Config.MergeMemory bytes of read buffers at once, more
// segments than that merged in passes through intermediate runs, see
// pipeline/fanin), drops repeated source sequences, writes batches of the target size under a Hive-style path with
// deterministic batch ids, writes a manifest, moves the state to COMPACTED and
// publishes one LoadCommand per batch (Nats-Msg-Id = batch id). A crash at any
// point is repaired by a sweep: SEALED windows whose lease expired are
// compacted again (same files, same ids); COMPACTED windows not fully loaded
// get their load commands published again, which the stream's duplicate
// window and the warehouse ledger absorb.
//
// Load results. Load results are consumed on a durable consumer and acked
// after the window state recorded them; a window whose batches are all loaded
// becomes LOADED and its staged segments are deleted.
package compactor
