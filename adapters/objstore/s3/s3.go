// Package s3 is the object store in a bucket of an S3-compatible server
// (objstore.Store), through aws-sdk-go-v2: AWS S3, or a self-hosted server
// such as versitygw (tools/s3) with Config.PathStyle. Keys are placed under
// Config.Prefix in their objstore.CleanKey form.
//
// How it keeps the objstore contract:
//
//   - Atomic commit: a Writer holds up to PartSize bytes in memory. An
//     object smaller than that is one PUT at Commit; a larger one becomes a
//     multipart upload when its first part is full, each full part is
//     uploaded as it fills, and Commit uploads the rest and completes the
//     upload. S3 makes an object visible only when its PUT or its
//     completion succeeds, whole, so nothing half-written is ever seen under
//     a key; Abort aborts the upload. The SHA-256 is computed as bytes are
//     written.
//   - Conditional create: CreateIfAbsent sends If-None-Match: * with the PUT
//     or the completion; the server refuses it (412, objstore.ErrExists)
//     where the key holds an object.
//   - Reads: Open reads the object's size and ETag (HEAD); ReadAt is a
//     ranged GET with If-Match on that ETag, so a read returns bytes of the
//     opened version or nothing. A short read fetches Config.ReadAhead bytes
//     and keeps them for the reads after it. S3 without versioning keeps no replaced
//     version: after a rewrite with other bytes or a delete, the Object's
//     reads fail with objstore.ErrObjectChanged (a rewrite with the same
//     bytes and part size has the same ETag, so a retried write does not
//     disturb readers). The Object's reads use the context Open was given.
//   - List is ListObjectsV2, paginated: the key equal to the prefix, then
//     every key under prefix+"/"; keys not in clean form (written by other
//     tools) are skipped. DeletePrefix deletes what List returns, 1,000
//     keys a request.
//   - RemoveStaleTemps aborts the multipart uploads under a prefix last
//     written (initiated, or a part uploaded) before a time: what a writer
//     killed in the middle of a large write leaves. A killed writer of a
//     smaller object leaves nothing. The bucket's lifecycle rule
//     AbortIncompleteMultipartUpload does the same on AWS.
//
// The store never logs, and String names the bucket and prefix only: no
// credential ever leaves it.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/windrow/windrow/adapters/objstore"
)

// Store is an object store in an S3 bucket.
type Store struct {
	client    *s3.Client
	bucket    string
	prefix    string // clean, or "" for the bucket's root
	partSize  int64
	readAhead int64
}

// Compile-time checks: what the store implements (not objstore.LocalFiles:
// its objects are no files here).
var (
	_ objstore.Store              = (*Store)(nil)
	_ objstore.TempSweeper        = (*Store)(nil)
	_ objstore.ConditionalCreator = (*Store)(nil)
)

// Open connects to the bucket of cfg, creating it if it does not exist.
// Settings cfg leaves empty come from the standard AWS chain (environment,
// shared config and credentials files, profile).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []func(*awsconfig.LoadOptions) error{
		// Self-hosted servers may not know the checksums the SDK adds to
		// every request by default (and return none to validate).
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Credentials != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 %s: load AWS config: %w", cfg.Bucket, err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultRegion
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	s := &Store{client: client, bucket: cfg.Bucket, partSize: cfg.PartSize, readAhead: cfg.ReadAhead}
	if cfg.Prefix != "" {
		s.prefix, _ = objstore.CleanKey(cfg.Prefix) // checked by Validate
	}
	if err := s.ensureBucket(ctx, awsCfg.Region); err != nil {
		return nil, err
	}
	return s, nil
}

// ensureBucket creates the bucket if it does not exist; a bucket created
// meanwhile by another process is fine.
func (s *Store) ensureBucket(ctx context.Context, region string) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	if !isNotFound(err) && !(errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchBucket") {
		return fmt.Errorf("s3 bucket %s: %w", s.bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	if region != defaultRegion { // us-east-1 takes no location constraint
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(region),
		}
	}
	_, err = s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("s3 create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// String is "s3://BUCKET/PREFIX".
func (s *Store) String() string {
	return "s3://" + s.bucket + "/" + s.prefix
}

// objectKey checks key and returns the object key it is stored under.
func (s *Store) objectKey(key string) (string, error) {
	clean, err := objstore.CleanKey(key)
	if err != nil {
		return "", err
	}
	if s.prefix == "" {
		return clean, nil
	}
	return s.prefix + "/" + clean, nil
}

// storeKey is the store's key of an object key under the prefix, and
// whether it is one (in clean form).
func (s *Store) storeKey(objectKey string) (string, bool) {
	key := objectKey
	if s.prefix != "" {
		var ok bool
		if key, ok = strings.CutPrefix(objectKey, s.prefix+"/"); !ok {
			return "", false
		}
	}
	clean, err := objstore.CleanKey(key)
	return key, err == nil && clean == key
}

// Create starts writing key.
func (s *Store) Create(ctx context.Context, key string) (objstore.Writer, error) {
	return s.create(ctx, key, false)
}

// CreateIfAbsent starts writing key; its Commit succeeds only if key holds
// no object then (If-None-Match: *), and fails with objstore.ErrExists
// otherwise.
func (s *Store) CreateIfAbsent(ctx context.Context, key string) (objstore.Writer, error) {
	return s.create(ctx, key, true)
}

// Put writes data under key atomically and returns its hex SHA-256.
func (s *Store) Put(ctx context.Context, key string, data []byte) (string, error) {
	w, err := s.Create(ctx, key)
	if err != nil {
		return "", err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return "", fmt.Errorf("write %s: %w", key, err)
	}
	_, sha, err := w.Commit()
	return sha, err
}

// Open opens key for random-access reading of the version it holds now.
func (s *Store) Open(ctx context.Context, key string) (objstore.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	full, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)})
	if isNotFound(err) {
		return nil, fmt.Errorf("%w: %s", objstore.ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	if aws.ToString(head.ETag) == "" {
		return nil, fmt.Errorf("open %s: the server sent no ETag to pin the version with", key)
	}
	return &object{
		ctx: ctx, client: s.client, bucket: s.bucket, full: full, key: key,
		etag: aws.ToString(head.ETag), size: aws.ToInt64(head.ContentLength), readAhead: s.readAhead,
	}, nil
}

// Get reads a whole object.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	full, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)})
	if isNotFound(err) {
		return nil, fmt.Errorf("%w: %s", objstore.ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	size := aws.ToInt64(out.ContentLength)
	data := make([]byte, size)
	if _, err := io.ReadFull(out.Body, data); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if n, _ := out.Body.Read(make([]byte, 1)); n != 0 {
		return nil, fmt.Errorf("read %s: more than the %d bytes announced", key, size)
	}
	return data, nil
}

// List returns the keys equal to prefix or under prefix+"/", sorted.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	full, err := s.objectKey(prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	// The object named full itself sorts before every other key that
	// starts with it: the first key of a listing of full, if it is there.
	first, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(full), MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	if len(first.Contents) > 0 && aws.ToString(first.Contents[0].Key) == full {
		if key, ok := s.storeKey(full); ok {
			keys = append(keys, key)
		}
	}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(full + "/"),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			if key, ok := s.storeKey(aws.ToString(obj.Key)); ok {
				keys = append(keys, key)
			}
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	full, err := s.objectKey(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// deleteBatch is how many keys one DeleteObjects request takes.
const deleteBatch = 1000

// DeletePrefix removes every object List(prefix) returns.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("delete prefix: %w", err)
	}
	for batch := range slices.Chunk(keys, deleteBatch) {
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, key := range batch {
			full, _ := s.objectKey(key) // listed keys are clean
			ids[i] = types.ObjectIdentifier{Key: aws.String(full)}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("delete prefix %s: %w", prefix, err)
		}
		var errs []error
		for _, e := range out.Errors {
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			errs = append(errs, fmt.Errorf("%s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
		}
		if len(errs) > 0 {
			return fmt.Errorf("delete prefix %s: %w", prefix, errors.Join(errs...))
		}
	}
	return nil
}

// isNotFound says whether err is S3's "no such key (or upload)"; a
// missing bucket is not: that is the store gone, an error of its own.
// HEAD requests carry no error code, only their status.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchUpload":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	return httpStatus(err) == 404
}

// isPreconditionFailed says whether err is a refused If-Match or
// If-None-Match (412).
func isPreconditionFailed(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "PreconditionFailed" {
		return true
	}
	return httpStatus(err) == 412
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
