package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/windrow/windrow/adapters/objstore"
)

// errSwept is returned when a write's multipart upload is gone: swept by
// RemoveStaleTemps (or a lifecycle rule) before the writer finished.
var errSwept = errors.New("the unfinished upload was removed (swept as stale)")

func (s *Store) create(ctx context.Context, key string, ifAbsent bool) (objstore.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	full, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	return &writer{ctx: ctx, s: s, key: key, full: full, ifAbsent: ifAbsent, h: sha256.New()}, nil
}

// writer streams an object: up to PartSize bytes in buf, a multipart upload
// once a part is full. It is used by one goroutine, as io.Writer is.
type writer struct {
	ctx      context.Context // Create's: bounds every request
	s        *Store
	key      string // the store key, for messages
	full     string // the object key
	ifAbsent bool   // If-None-Match: * at commit

	buf      []byte // bytes not uploaded yet, < PartSize
	h        hash.Hash
	n        int64
	uploadID string // "" until the first part is full
	parts    []types.CompletedPart
	err      error // a failed part upload: the write can only be aborted
	done     bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: already finished", w.key)
	}
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, min(w.s.partSize, int64(max(len(p), 64<<10))))
		}
		n := min(len(p), int(w.s.partSize)-len(w.buf))
		w.buf = append(w.buf, p[:n]...)
		w.h.Write(p[:n])
		w.n += int64(n)
		written += n
		p = p[n:]
		if int64(len(w.buf)) == w.s.partSize {
			if err := w.uploadPart(); err != nil {
				w.err = err
				return written, err
			}
		}
	}
	return written, nil
}

// uploadPart uploads buf as the next part, starting the multipart upload
// with the first.
func (w *writer) uploadPart() error {
	if len(w.parts) == maxParts {
		return fmt.Errorf("write %s: more than %d parts of %d bytes", w.key, maxParts, w.s.partSize)
	}
	if w.uploadID == "" {
		out, err := w.s.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(w.s.bucket), Key: aws.String(w.full),
		})
		if err != nil {
			return fmt.Errorf("write %s: start multipart upload: %w", w.key, err)
		}
		w.uploadID = aws.ToString(out.UploadId)
	}
	num := int32(len(w.parts) + 1)
	out, err := w.s.client.UploadPart(w.ctx, &s3.UploadPartInput{
		Bucket: aws.String(w.s.bucket), Key: aws.String(w.full), UploadId: aws.String(w.uploadID),
		PartNumber: aws.Int32(num), Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf))),
	})
	if isNotFound(err) {
		return fmt.Errorf("write %s: part %d: %w", w.key, num, errSwept)
	}
	if err != nil {
		return fmt.Errorf("write %s: part %d: %w", w.key, num, err)
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
	w.buf = w.buf[:0]
	return nil
}

// Commit makes the object visible, whole: one PUT, or the rest of the
// multipart upload and its completion.
func (w *writer) Commit() (int64, string, error) {
	if w.done {
		return 0, "", fmt.Errorf("commit %s: already finished", w.key)
	}
	if err := w.commit(); err != nil {
		w.abort() // best effort: what is left, RemoveStaleTemps sweeps
		w.done = true
		return 0, "", err
	}
	w.done = true
	w.buf = nil
	return w.n, hex.EncodeToString(w.h.Sum(nil)), nil
}

func (w *writer) commit() error {
	if w.err != nil {
		return fmt.Errorf("commit %s: %w", w.key, w.err)
	}
	var ifNoneMatch *string
	if w.ifAbsent {
		ifNoneMatch = aws.String("*")
	}
	if w.uploadID == "" {
		_, err := w.s.client.PutObject(w.ctx, &s3.PutObjectInput{
			Bucket: aws.String(w.s.bucket), Key: aws.String(w.full),
			Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf))),
			IfNoneMatch: ifNoneMatch,
		})
		return w.commitErr(err)
	}
	if len(w.buf) > 0 {
		if err := w.uploadPart(); err != nil {
			return fmt.Errorf("commit %s: %w", w.key, err)
		}
	}
	_, err := w.s.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(w.s.bucket), Key: aws.String(w.full), UploadId: aws.String(w.uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
		IfNoneMatch:     ifNoneMatch,
	})
	if err == nil {
		w.uploadID = "" // completed: nothing to abort
	}
	return w.commitErr(err)
}

func (w *writer) commitErr(err error) error {
	switch {
	case err == nil:
		return nil
	case w.ifAbsent && isPreconditionFailed(err):
		return fmt.Errorf("commit %s: %w", w.key, objstore.ErrExists)
	case w.uploadID != "" && isNotFound(err):
		return fmt.Errorf("commit %s: %w", w.key, errSwept)
	}
	return fmt.Errorf("commit %s: %w", w.key, err)
}

// Abort drops the write: nothing becomes visible, and its multipart
// upload, if any, is aborted. After Commit or Abort it is a no-op.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.buf = nil
	return w.abort()
}

func (w *writer) abort() error {
	if w.uploadID == "" {
		return nil
	}
	_, err := w.s.client.AbortMultipartUpload(w.ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(w.s.bucket), Key: aws.String(w.full), UploadId: aws.String(w.uploadID),
	})
	w.uploadID = ""
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("abort %s: %w", w.key, err)
	}
	return nil
}
