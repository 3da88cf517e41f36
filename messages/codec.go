package messages

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid message")

// ErrUnknownType is returned when the type header names a type or version this
// build does not read.
var ErrUnknownType = errors.New("unknown message type")

// Encode validates m and returns its wire form.
func Encode(m Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	return data, nil
}

// Decode reads data of the type named by typeHeader into m, which must be of
// that type, and validates it.
func Decode(typeHeader string, data []byte, m Message) error {
	if typeHeader != m.Type() {
		return fmt.Errorf("%w: got %q, want %q", ErrUnknownType, typeHeader, m.Type())
	}
	if err := json.Unmarshal(data, m); err != nil {
		return fmt.Errorf("decode %s: %w", m.Type(), err)
	}
	return m.Validate()
}
