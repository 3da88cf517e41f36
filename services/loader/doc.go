// Package loader is windrow's load service: it consumes LoadCommands from
// the WINDROW_LOAD stream and loads each Parquet batch into the warehouse in
// one transaction together with a ledger row keyed by the batch id.
//
// # Pipeline
//
// A watermill router runs one handler over a wmjetstream subscriber on the
// durable consumer "windrow_loader" (or "windrow_loader_<policy>" when
// Config.Policy is set). The subscriber hands out Config.Workers commands
// at once, one per window: its ordering key is the command's subject (the
// policy) and Windrow-Window header, so the commands of one window run one
// at a time, in the order they were fetched, while other windows' run in
// parallel. Up to Config.MaxWaiting more commands are fetched ahead and
// held, so that a command of another window can overtake a window's long
// run of commands. Middleware, outermost first:
//
//   - poison (this package): a permanent failure (undecodable or invalid
//     command, a command the policy store does not vouch for, a key outside
//     the object store, a missing object, a missing checksum, a checksum
//     mismatch, a warehouse error not wrapping ErrTransient, a panic)
//     publishes a LoadResult with status "failed" and the error, and the
//     command is acked: it is not redelivered forever.
//   - watermill's middleware.Recoverer: a panic becomes a
//     middleware.RecoveredPanicError with the stack (permanent, not retried).
//   - watermill's middleware.Retry: errors wrapping ErrTransient (the
//     warehouse file is locked, a result publish failed, an object store
//     read error) are retried in process with exponential backoff
//     (Config.Retry); other errors are returned after one attempt.
//
// The handler decodes the command (Windrow-Type header), checks it against
// the stored policy version it names (Config.Policies; see "What the loader
// trusts" below), streams each batch
// object from the object store (Config.Objects) to verify its SHA-256, calls
// Warehouse.Load (adapters/warehouse) with the objects' keys, and publishes
// a LoadResult ("loaded" or "duplicate") to windrow.result.<policy> with msg
// id "result-<batch id>-<status>", waiting for the stream's ack.
//
// # What the loader trusts
//
// Anyone who can publish to windrow.load.> can forge a command, so the
// loader takes from it only which window run and batches it is about. The
// table, load mode, merge key, time column, post-load statements and
// columns come from the stored policy version the command names (or a later
// stored version of the policy: a window opened before a policy change),
// cached per version, so steady state reads no KV. Every file must carry a
// SHA-256 and lie under the policy's batch prefix of the command's window
// and revision (loads.BatchPrefix). A command that fails these checks is
// poison: ErrUnknownPolicy, ErrPolicyMismatch, ErrChecksumMissing,
// ErrForeignObject.
//
// # Ack contract
//
//   - The loader acks a command (a JetStream DoubleAck, confirmed by the
//     server) only after the warehouse transaction committed AND the result
//     was published and acknowledged by the results stream — or, for poison,
//     after the failed result was published.
//   - A transient failure that outlasts the retries is nacked with delay
//     Retry.MaxInterval; JetStream redelivers the command.
//   - While a load runs, and while a command fetched ahead waits for its
//     window or a worker, InProgress is sent every AckWait/3, so neither is
//     redelivered to another loader.
//   - On redelivery (a crash after the commit but before the ack, a nack, a
//     duplicate command beyond the stream's duplicate window), the ledger
//     already holds the batch id: nothing is loaded again, a "duplicate"
//     result is published and the command is acked. If the result publish is
//     repeated within the duplicate window, its msg id makes the results
//     stream store it once. A duplicate result carries the rows recorded in
//     the ledger; consumers treat "loaded" and "duplicate" alike as "the
//     batch is in the warehouse".
//
// # Shutdown
//
// Shutdown stops pulling, naks the commands held ahead (redelivered at
// once, to this loader's successor or another loader), lets the commands
// in flight finish and ack, and waits for Run to return, bounded by its
// ctx. Canceling Run's ctx stops at
// once; the command in flight is then redelivered later, which the ledger
// makes safe.
package loader
