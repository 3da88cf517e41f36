package s3

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/windrow/windrow/adapters/objstore"
)

const (
	// DefaultPartSize is Config.PartSize's default: 8 MiB.
	DefaultPartSize = 8 << 20
	// DefaultReadAhead is Config.ReadAhead's default: 4 MiB.
	DefaultReadAhead = 4 << 20
	// MinPartSize is the smallest part S3 accepts (but for the last one).
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part S3 accepts.
	MaxPartSize = 5 << 30
	// maxParts is how many parts one multipart upload may have.
	maxParts = 10000
	// defaultRegion is the region when neither Config nor the AWS chain
	// names one (self-hosted servers usually accept any).
	defaultRegion = "us-east-1"
)

// Config configures a Store. Only Bucket is required: the endpoint, region
// and credentials come from the standard AWS chain unless set here.
type Config struct {
	// Bucket is the bucket's name (3 to 63 lowercase letters, digits, dots
	// and hyphens). Open creates it if it does not exist.
	Bucket string
	// Prefix is the key prefix every object is stored under, cleaned like
	// a key ("windrow/prod" stores key "a/b" as "windrow/prod/a/b"); "" is
	// the bucket's root.
	Prefix string
	// Region signs requests and places a bucket Open creates. Default: the
	// AWS chain's (AWS_REGION, the profile's region), else "us-east-1".
	Region string
	// Endpoint is the S3 API's base URL, for S3-compatible servers
	// ("http://127.0.0.1:9000"). Default: the AWS chain's
	// (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's endpoint_url),
	// else AWS S3 of Region.
	Endpoint string
	// PathStyle addresses a bucket as ENDPOINT/BUCKET instead of
	// BUCKET.ENDPOINT, which most self-hosted servers need.
	PathStyle bool
	// Profile is the shared config/credentials profile to use. Default:
	// AWS_PROFILE, else "default".
	Profile string
	// Credentials, when set, replaces the AWS chain's credentials
	// (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the profile, SSO, web
	// identity, the instance's role).
	Credentials aws.CredentialsProvider
	// PartSize is the size in bytes of a multipart upload's parts, and the
	// size from which a write becomes one: smaller objects are one PUT, and
	// a Writer holds up to PartSize bytes in memory. It bounds an object to
	// 10,000 parts. Default 8 MiB; at least 5 MiB, at most 5 GiB.
	PartSize int64
	// ReadAhead is the least number of bytes a read of an open object
	// fetches: a shorter ReadAt fetches ReadAhead bytes (or up to the end)
	// in one request and keeps them for the reads that follow, so a
	// sequential reader with a small buffer makes one request per
	// ReadAhead bytes. It is held in memory per open object. Default 4 MiB;
	// at least 1 (no read-ahead), at most 1 GiB.
	ReadAhead int64
}

func (c *Config) setDefaults() {
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = DefaultReadAhead
	}
}

// bucketName is S3's rule for bucket names (general purpose buckets), less
// its finer points (no "..", not an IP address), which the server checks.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if !bucketName.MatchString(c.Bucket) {
		errs = append(errs, fmt.Errorf("s3 bucket %q: want 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit", c.Bucket))
	}
	if c.Prefix != "" {
		if _, err := objstore.CleanKey(c.Prefix); err != nil {
			errs = append(errs, fmt.Errorf("s3 prefix: %w", err))
		}
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("s3 endpoint: %w", err))
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			errs = append(errs, fmt.Errorf("s3 endpoint %q: want http://HOST[:PORT] or https://HOST[:PORT]", redactURL(u)))
		case u.User != nil:
			errs = append(errs, fmt.Errorf("s3 endpoint %q: credentials do not belong in the URL", redactURL(u)))
		}
	}
	if c.PartSize < MinPartSize || c.PartSize > MaxPartSize {
		errs = append(errs, fmt.Errorf("s3 part size %d: want %d (5 MiB) to %d (5 GiB) bytes", c.PartSize, MinPartSize, MaxPartSize))
	}
	if c.ReadAhead < 1 || c.ReadAhead > 1<<30 {
		errs = append(errs, fmt.Errorf("s3 read-ahead %d: want 1 to %d (1 GiB) bytes", c.ReadAhead, 1<<30))
	}
	return errors.Join(errs...)
}

// redactURL is u without its user information, for messages.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
