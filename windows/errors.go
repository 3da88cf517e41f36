package windows

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalidPolicy is matched (errors.Is) by every error that ParsePolicy,
// (*Policy).Validate and NewAssigner return for a bad policy or window spec.
var ErrInvalidPolicy = errors.New("invalid window policy")

// ErrInvalidWindowID is matched by the error of ParseWindowID.
var ErrInvalidWindowID = errors.New("invalid window id")

// FieldError is one problem in a policy. File and Line are set by ParsePolicy
// (Line is the line of the offending value, or of its nearest enclosing key when
// the value is missing); Validate leaves them empty. Field is the path of the
// field, e.g. "schema.fields[2].type"; it is empty for a problem with the whole
// document. Msg says what is wrong and what would be valid.
//
// Every FieldError matches ErrInvalidPolicy.
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// Error renders "file:line: field: msg", omitting the parts that are unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes every FieldError match ErrInvalidPolicy.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidPolicy }
