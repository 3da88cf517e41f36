package dlq

import "errors"

var (
	// ErrNotFound: no message with that sequence is in WINDROW_DLQ (never
	// was, expired, or was redriven and deleted).
	ErrNotFound = errors.New("not in the dead-letter stream")
	// ErrLateMarker: the selection names a late-drop marker, which holds no
	// payload and cannot be redriven.
	ErrLateMarker = errors.New("late-drop markers hold no payload and cannot be redriven")
	// ErrNotDeadLetter: the selection names a message of WINDROW_DLQ that is
	// not a dead letter of the policy (another policy's, or a redrive record).
	ErrNotDeadLetter = errors.New("not a dead letter of the policy")
	// ErrSharedSubject: another policy collects the subject a dead letter
	// would be redriven to, and would load it a second time.
	ErrSharedSubject = errors.New("source subject is also collected by another policy")
	// ErrTruncated: the dead letter's payload was cut to fit the DLQ and the
	// source stream no longer holds the whole event.
	ErrTruncated = errors.New("payload was cut to fit the dead-letter stream and the source stream no longer holds the event")
	// ErrFixFile: the file of fixed payloads cannot be used.
	ErrFixFile = errors.New("fix file")
	// ErrRequest: the redrive request is incomplete or contradictory.
	ErrRequest = errors.New("redrive request")
)
