package records

import (
	"errors"
	"fmt"
)

// ErrDecode is wrapped by every *DecodeError.
var ErrDecode = errors.New("decode event")

// ErrSchemaMismatch is wrapped by OpenFile's error for a Parquet file whose
// schema is not the layout's.
var ErrSchemaMismatch = errors.New("parquet schema does not match the policy layout")

// DecodeError says why an event cannot be a row. Reason is one of the
// messages.Reason* identifiers and goes into the dead-letter header.
type DecodeError struct {
	Reason string
	Field  string
	Detail string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
	}
	return fmt.Sprintf("%s: field %s: %s", e.Reason, e.Field, e.Detail)
}

func (e *DecodeError) Unwrap() error { return ErrDecode }
