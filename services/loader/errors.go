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
