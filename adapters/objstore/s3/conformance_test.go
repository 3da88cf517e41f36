package s3_test

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/objstoretest"
	"github.com/windrow/windrow/adapters/objstore/s3"
	"github.com/windrow/windrow/internal/tests3"
)

// testPrefix is the Config.Prefix of the stores under test, so that every
// check also checks that keys stay under it.
const testPrefix = "windrow/test"

// TestConformance runs the suite against a real S3-compatible server
// (versitygw, started by tests3), each check in a bucket of its own that
// Open creates.
func TestConformance(t *testing.T) {
	srv := tests3.Start(t)
	var (
		n       atomic.Int64
		buckets sync.Map // *s3.Store → bucket name
	)
	open := func(t *testing.T) objstore.Store {
		bucket := fmt.Sprintf("conformance-%d", n.Add(1))
		st := openStore(t, srv, bucket)
		buckets.Store(st, bucket)
		return st
	}
	// ageUnfinishedWrites knows versitygw's posix layout: the parts of an
	// unfinished upload of object key K are files in a directory per
	// upload under BUCKET/.sgwtmp/multipart/hex(sha256(K)); the upload's
	// initiation time is that directory's modification time and a part's
	// time is its file's.
	age := func(t *testing.T, st objstore.Store, key string, at time.Time) {
		t.Helper()
		bucket, ok := buckets.Load(st)
		if !ok {
			t.Fatalf("age: store %s was not opened by this test", st)
		}
		clean, err := objstore.CleanKey(key)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(testPrefix + "/" + clean))
		dir := filepath.Join(srv.Dir, bucket.(string), ".sgwtmp", "multipart", fmt.Sprintf("%x", sum))
		aged := 0
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != dir {
				aged++
			}
			return os.Chtimes(p, at, at)
		})
		if err != nil || aged == 0 {
			t.Fatalf("age the unfinished upload of %s in %s: %d entries, %v", key, dir, aged, err)
		}
	}
	objstoretest.Run(t, open,
		objstoretest.ReplacedVersionsMayBeGone(),
		objstoretest.UnfinishedWriteSize(s3.MinPartSize),
		objstoretest.AgeUnfinishedWrites(age),
	)
}

// openStore opens a store on srv in bucket, under testPrefix, with the
// smallest part size (so that the suite's larger objects are multipart
// uploads) and a read-ahead of 4 KiB (so that the suite's reads take both
// paths: from a kept block and straight from the server).
func openStore(t *testing.T, srv *tests3.Server, bucket string) *s3.Store {
	t.Helper()
	st, err := s3.Open(t.Context(), s3.Config{
		Bucket:      bucket,
		Prefix:      testPrefix,
		Region:      tests3.Region,
		Endpoint:    srv.Endpoint,
		PathStyle:   true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		PartSize:    s3.MinPartSize,
		ReadAhead:   4 << 10,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st
}
