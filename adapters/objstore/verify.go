package objstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ErrChecksum is returned by Verify when an object's bytes are not the
// ones its writer committed.
var ErrChecksum = errors.New("object checksum mismatch")

// Verify reads obj whole and compares its SHA-256 with want, the hex
// digest the object's Writer returned at Commit. A reader verifies the
// Object it goes on to read: an open Object reads one version (or fails
// with ErrObjectChanged), so what it reads next is what was verified. A
// mismatch wraps ErrChecksum; a read error, or ctx ending, is returned as
// it is. An empty want is refused: a caller without a digest has nothing to
// verify and must not call Verify.
func Verify(ctx context.Context, key string, obj Object, want string) error {
	if want == "" {
		return fmt.Errorf("verify %s: no checksum to verify against", key)
	}
	h := sha256.New()
	if _, err := io.Copy(h, NewReader(ctx, obj)); err != nil {
		return fmt.Errorf("verify %s: %w", key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: %s has sha256 %s, its writer committed %s", ErrChecksum, key, got, want)
	}
	return nil
}

// NewReader reads obj from start to end, sequentially (io.Copy of a whole
// object), and stops with ctx's error when ctx ends.
func NewReader(ctx context.Context, obj Object) io.Reader {
	return ctxReader{ctx: ctx, r: io.NewSectionReader(obj, 0, obj.Size())}
}

// ctxReader stops a long read when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
