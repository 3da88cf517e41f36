package s3

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// RemoveStaleTemps aborts the multipart uploads under prefix (matched as
// List matches it; "" for the whole store) last written before olderThan:
// initiated before it, and no part uploaded since. It returns how many it
// aborted. A live writer uploads a part every PartSize bytes, so a
// threshold well above the time one part takes never hits one; a writer
// whose upload was aborted fails to commit.
func (s *Store) RemoveStaleTemps(ctx context.Context, prefix string, olderThan time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	full := s.prefix // "" is the whole store
	if prefix != "" {
		var err error
		if full, err = s.objectKey(prefix); err != nil {
			return 0, err
		}
	}
	under := func(key string) bool {
		return full == "" || key == full || strings.HasPrefix(key, full+"/")
	}
	// Collect first, abort after: aborting while paging could move the
	// markers the next page starts from.
	var stale []types.MultipartUpload
	pages := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(s.bucket), Prefix: aws.String(full),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("list unfinished uploads under %q: %w", prefix, err)
		}
		for _, u := range page.Uploads {
			if under(aws.ToString(u.Key)) && aws.ToTime(u.Initiated).Before(olderThan) {
				stale = append(stale, u)
			}
		}
	}
	removed := 0
	for _, u := range stale {
		last, err := s.lastPart(ctx, u)
		if isNotFound(err) {
			continue // completed or aborted meanwhile
		}
		if err != nil {
			return removed, err
		}
		if !last.Before(olderThan) {
			continue
		}
		_, err = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: u.Key, UploadId: u.UploadId,
		})
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("abort unfinished upload of %s: %w", aws.ToString(u.Key), err)
		}
		removed++
	}
	return removed, nil
}

// lastPart returns when upload u was last written: its newest part's time,
// or its initiation.
func (s *Store) lastPart(ctx context.Context, u types.MultipartUpload) (time.Time, error) {
	last := aws.ToTime(u.Initiated)
	pages := s3.NewListPartsPaginator(s.client, &s3.ListPartsInput{
		Bucket: aws.String(s.bucket), Key: u.Key, UploadId: u.UploadId,
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("list parts of %s: %w", aws.ToString(u.Key), err)
		}
		for _, p := range page.Parts {
			if t := aws.ToTime(p.LastModified); t.After(last) {
				last = t
			}
		}
	}
	return last, nil
}
