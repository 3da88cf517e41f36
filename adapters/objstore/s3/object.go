package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/windrow/windrow/adapters/objstore"
)

// object is an open object: ranged GETs pinned to the ETag Open saw.
type object struct {
	ctx    context.Context // Open's: bounds every read
	client *s3.Client
	bucket string
	full   string // the object key
	key    string // the store key, for messages
	etag   string
	size   int64
	closed atomic.Bool
}

func (o *object) Size() int64 { return o.size }

// ReadAt reads len(p) bytes from off with one ranged GET, If-Match the
// opened ETag. A read cut short by the end of the object returns io.EOF.
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
	end := min(off+int64(len(p)), o.size) // exclusive
	out, err := o.client.GetObject(o.ctx, &s3.GetObjectInput{
		Bucket:  aws.String(o.bucket),
		Key:     aws.String(o.full),
		Range:   aws.String("bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(end-1, 10)),
		IfMatch: aws.String(o.etag),
	})
	if isPreconditionFailed(err) || isNotFound(err) {
		return 0, fmt.Errorf("read %s: %w", o.key, objstore.ErrObjectChanged)
	}
	if err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", o.key, off, err)
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p[:end-off])
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // short of the range: never io.EOF itself
		}
		return n, fmt.Errorf("read %s at %d: %w", o.key, off, err)
	}
	if end-off < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// Close ends the object's reads; it holds nothing on the server.
func (o *object) Close() error {
	o.closed.Store(true)
	return nil
}
