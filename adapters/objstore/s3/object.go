package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/windrow/windrow/adapters/objstore"
)

// object is an open object: ranged GETs pinned to the ETag Open saw. A
// read shorter than readAhead fetches readAhead bytes and keeps them, so
// that a sequential reader with a small buffer (io.Copy's 32 KiB) makes one
// request per readAhead bytes, not per buffer.
type object struct {
	ctx       context.Context // Open's: bounds every read
	client    *s3.Client
	bucket    string
	full      string // the object key
	key       string // the store key, for messages
	etag      string
	size      int64
	readAhead int64
	closed    atomic.Bool

	mu       sync.Mutex
	blockOff int64  // where block starts in the object
	block    []byte // the last read-ahead, of the opened version
}

func (o *object) Size() int64 { return o.size }

// ReadAt reads len(p) bytes from off: from the last read-ahead block if it
// holds them, else with a ranged GET, If-Match the opened ETag. A read cut
// short by the end of the object returns io.EOF.
func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if o.closed.Load() {
		return 0, fmt.Errorf("read %s: object is closed", o.key)
	}
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", o.key, off)
	}
	if off >= o.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	want := p[:min(int64(len(p)), o.size-off)]
	if err := o.read(want, off); err != nil {
		return 0, err
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(want), nil
}

func (o *object) read(p []byte, off int64) error {
	o.mu.Lock()
	if off >= o.blockOff && off+int64(len(p)) <= o.blockOff+int64(len(o.block)) {
		copy(p, o.block[off-o.blockOff:])
		o.mu.Unlock()
		return nil
	}
	o.mu.Unlock()
	if int64(len(p)) >= o.readAhead {
		return o.get(p, off)
	}
	block := make([]byte, min(o.readAhead, o.size-off))
	if err := o.get(block, off); err != nil {
		return err
	}
	copy(p, block)
	o.mu.Lock()
	o.block, o.blockOff = block, off
	o.mu.Unlock()
	return nil
}

// get fills p from off with one ranged GET of the opened version.
func (o *object) get(p []byte, off int64) error {
	end := off + int64(len(p)) // exclusive
	out, err := o.client.GetObject(o.ctx, &s3.GetObjectInput{
		Bucket:  aws.String(o.bucket),
		Key:     aws.String(o.full),
		Range:   aws.String("bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(end-1, 10)),
		IfMatch: aws.String(o.etag),
	})
	if isPreconditionFailed(err) || isNotFound(err) {
		return fmt.Errorf("read %s: %w", o.key, objstore.ErrObjectChanged)
	}
	if err != nil {
		return fmt.Errorf("read %s at %d: %w", o.key, off, err)
	}
	defer out.Body.Close()
	if _, err := io.ReadFull(out.Body, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // short of the range: never io.EOF itself
		}
		return fmt.Errorf("read %s at %d: %w", o.key, off, err)
	}
	return nil
}

// Close ends the object's reads and drops its read-ahead; it holds nothing
// on the server.
func (o *object) Close() error {
	o.closed.Store(true)
	o.mu.Lock()
	o.block = nil
	o.mu.Unlock()
	return nil
}
