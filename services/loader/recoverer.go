package loader

import (
	"fmt"
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Recoverer turns a panic of the wrapped handler into an error wrapping
// ErrPanic, with the stack. The error is permanent: a command that panics the
// handler would panic it again on every redelivery.
func Recoverer(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (out []*message.Message, err error) {
		defer func() {
			if r := recover(); r != nil {
				out, err = nil, fmt.Errorf("%w: %v\n%s", ErrPanic, r, debug.Stack())
			}
		}()
		return h(msg)
	}
}
