package loader

import (
	"errors"

	"github.com/windrow/windrow/adapters/warehouse"
)

// ErrTransient is wrapped by errors that may go away on their own (a locked
// warehouse file, a NATS hiccup). The retry middleware retries only these; a
// transient error that outlasts the retries is nacked and redelivered later.
// Every other error is permanent and makes the command poison. It is
// warehouse.ErrTransient, so a warehouse's transient errors are retried.
var ErrTransient = warehouse.ErrTransient

// ErrChecksum is returned when a batch file's SHA-256 differs from the command's.
var ErrChecksum = errors.New("batch file checksum mismatch")

// ErrFileMissing is returned when a batch file does not exist in the object store.
var ErrFileMissing = errors.New("batch file missing")

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }

// ErrUnknownPolicy is returned for a load command whose policy version is
// not a stored version of its policy (never applied, deleted, or no longer
// in the bucket's history).
var ErrUnknownPolicy = errors.New("load command names no stored policy version")

// ErrPolicyMismatch is returned for a load command whose table, load mode,
// merge key, time column, post-load statements or columns differ from the
// stored policy version it names.
var ErrPolicyMismatch = errors.New("load command disagrees with its stored policy version")

// ErrChecksumMissing is returned for a load command that gives a batch file
// without its SHA-256.
var ErrChecksumMissing = errors.New("batch file checksum missing")

// ErrForeignObject is returned for a load command naming a batch file
// outside its policy's batch prefix for the command's window and revision.
var ErrForeignObject = errors.New("batch file outside the policy's batch prefix")
