package wmjetstream

import "errors"

// ErrClosed is returned by Subscribe after Close.
var ErrClosed = errors.New("wmjetstream: subscriber closed")
