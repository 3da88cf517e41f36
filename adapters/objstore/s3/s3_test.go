package s3_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/s3"
	"github.com/windrow/windrow/internal/tests3"
)

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := s3.Config{Bucket: "No_Such", Prefix: "../x", Endpoint: "ftp://h", PartSize: 1, ReadAhead: -1}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate of a bad config: nil error")
	}
	for _, want := range []string{"s3 bucket", "s3 prefix", "s3 endpoint", "s3 part size", "s3 read-ahead"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not name %q", err, want)
		}
	}
	if !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("Validate error = %v, want it to wrap ErrInvalidKey for the prefix", err)
	}
	ok := s3.Config{Bucket: "windrow-data", Prefix: "prod/", Endpoint: "http://127.0.0.1:9000", PartSize: s3.DefaultPartSize, ReadAhead: s3.DefaultReadAhead}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate of a good config: %v", err)
	}
	secret := s3.Config{Bucket: "b", Endpoint: "http://user:hunter2@127.0.0.1:9000", PartSize: s3.DefaultPartSize, ReadAhead: 1}
	if err := secret.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate of an endpoint with a password = %v; want an error that does not repeat it", err)
	}
}

// TestOpenCreatesBucketOnce: Open creates a missing bucket, and opening it
// again (another role, a restart) is fine.
func TestOpenCreatesBucketOnce(t *testing.T) {
	srv := tests3.Start(t)
	st := openStore(t, srv, "fresh-bucket")
	if _, err := st.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	again := openStore(t, srv, "fresh-bucket")
	if got, err := again.Get(t.Context(), "k"); err != nil || string(got) != "v" {
		t.Fatalf("Get through a second Open = %q, %v", got, err)
	}
	if _, err := srv.Client().HeadBucket(t.Context(), &awss3.HeadBucketInput{Bucket: aws.String("fresh-bucket")}); err != nil {
		t.Fatalf("HeadBucket: %v", err)
	}
}

// TestKeysLiveUnderPrefix: a store with a prefix keeps its objects under
// it and sees nothing of the bucket outside it.
func TestKeysLiveUnderPrefix(t *testing.T) {
	srv := tests3.Start(t)
	ctx := t.Context()
	st := openStore(t, srv, srv.Bucket) // under testPrefix
	if _, err := st.Put(ctx, "a//b", []byte("1")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	raw := srv.Client()
	for _, k := range []string{testPrefix + "x/a/b", "windrow/a/b", testPrefix + "/a/.tmp-1"} {
		if _, err := raw.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(k), Body: strings.NewReader("x")}); err != nil {
			t.Fatalf("raw PutObject %s: %v", k, err)
		}
	}
	out, err := raw.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket), Prefix: aws.String(testPrefix + "/a/b")})
	if err != nil || len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != testPrefix+"/a/b" {
		t.Fatalf("the object of key a/b is not at %s/a/b: %v", testPrefix, err)
	}
	// Objects outside the prefix, or whose names are no clean keys, are not
	// the store's.
	if got, err := st.List(ctx, "a"); err != nil || !slices.Equal(got, []string{"a/b"}) {
		t.Fatalf("List(a) = %q, %v; want [a/b]", got, err)
	}
	if err := st.DeletePrefix(ctx, "a"); err != nil {
		t.Fatalf("DeletePrefix: %v", err)
	}
	if _, err := raw.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("windrow/a/b")}); err != nil {
		t.Fatalf("an object outside the prefix went with DeletePrefix: %v", err)
	}
	if !strings.HasSuffix(st.String(), srv.Bucket+"/"+testPrefix) {
		t.Errorf("String = %q, want the bucket and prefix", st)
	}
}

// TestOpenObjectFailsAfterReplace: what the package promises where the
// suite allows a choice: once its key holds other bytes, or none, an open
// Object's reads fail with ErrObjectChanged (S3 keeps no replaced version).
func TestOpenObjectFailsAfterReplace(t *testing.T) {
	srv := tests3.Start(t)
	ctx := t.Context()
	st := openStore(t, srv, srv.Bucket)
	for _, change := range []string{"rewrite", "delete"} {
		t.Run(change, func(t *testing.T) {
			if _, err := st.Put(ctx, "o", []byte("version one")); err != nil {
				t.Fatal(err)
			}
			obj, err := st.Open(ctx, "o")
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			if change == "rewrite" {
				_, err = st.Put(ctx, "o", []byte("version two"))
			} else {
				err = st.Delete(ctx, "o")
			}
			if err != nil {
				t.Fatal(err)
			}
			if n, err := obj.ReadAt(make([]byte, 4), 0); !errors.Is(err, objstore.ErrObjectChanged) {
				t.Fatalf("ReadAt after a %s = %d, %v; want ErrObjectChanged", change, n, err)
			}
		})
	}
}

// TestSmallUnfinishedWriteLeavesNothing: a writer killed before its first
// part is full has sent nothing: there is nothing to sweep, and the sweep
// of a large one makes its Commit fail.
func TestSmallUnfinishedWriteLeavesNothing(t *testing.T) {
	srv := tests3.Start(t)
	ctx := t.Context()
	st := openStore(t, srv, srv.Bucket)
	small, err := st.Create(ctx, "w/small")
	if err != nil {
		t.Fatal(err)
	}
	defer small.Abort()
	small.Write([]byte("half a segment"))
	large, err := st.Create(ctx, "w/large")
	if err != nil {
		t.Fatal(err)
	}
	defer large.Abort()
	large.Write(bytes.Repeat([]byte{1}, s3.MinPartSize+1))
	n, err := st.RemoveStaleTemps(ctx, "w", time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("RemoveStaleTemps = %d, %v; want the large write's upload only", n, err)
	}
	if _, _, err := large.Commit(); err == nil {
		t.Fatal("Commit of a swept upload succeeded")
	}
	if _, _, err := small.Commit(); err != nil {
		t.Fatalf("Commit of the small write: %v", err)
	}
	if got, err := st.List(ctx, "w"); err != nil || !slices.Equal(got, []string{"w/small"}) {
		t.Fatalf("List = %q, %v; want [w/small]", got, err)
	}
}

// TestAWSChain: with no endpoint, region or credentials in Config, Open
// takes them from the standard AWS variables, or from a named profile.
func TestAWSChain(t *testing.T) {
	srv := tests3.Start(t)
	isolate := func(t *testing.T) {
		dir := t.TempDir()
		for _, v := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"} {
			t.Setenv(v, "")
		}
		t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	}
	roundTrip := func(t *testing.T, cfg s3.Config) {
		t.Helper()
		st, err := s3.Open(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if _, err := st.Put(t.Context(), "chain", []byte("ok")); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if strings.Contains(st.String(), srv.SecretKey) || strings.Contains(st.String(), srv.AccessKey) {
			t.Errorf("String = %q names a credential", st)
		}
	}

	t.Run("Environment", func(t *testing.T) {
		isolate(t)
		t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
		t.Setenv("AWS_REGION", tests3.Region)
		t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
		roundTrip(t, s3.Config{Bucket: "from-env", PathStyle: true})
	})
	t.Run("Profile", func(t *testing.T) {
		isolate(t)
		for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			t.Setenv(v, "")
		}
		write := func(name, text string) {
			if err := os.WriteFile(os.Getenv(name), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("AWS_CONFIG_FILE", "[profile windrow]\nregion = "+tests3.Region+"\nendpoint_url = "+srv.Endpoint+"\n")
		write("AWS_SHARED_CREDENTIALS_FILE", "[windrow]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+srv.SecretKey+"\n")
		roundTrip(t, s3.Config{Bucket: "from-profile", PathStyle: true, Profile: "windrow"})
	})
	t.Run("WrongSecretIsNotRepeated", func(t *testing.T) {
		const wrong = "not-the-secret-0123456789"
		_, err := s3.Open(t.Context(), s3.Config{
			Bucket: "any-bucket", Endpoint: srv.Endpoint, PathStyle: true, Region: tests3.Region,
			Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, wrong, ""),
		})
		if err == nil {
			t.Fatal("Open with a wrong secret succeeded")
		}
		if strings.Contains(err.Error(), wrong) {
			t.Fatalf("Open's error repeats the secret: %v", err)
		}
	})
}

// TestSequentialReadWithSmallBuffer: io.Copy through a SectionReader (32
// KiB reads, as the loader's checksum does) reads an object of several
// read-ahead blocks whole, with the default read-ahead.
func TestSequentialReadWithSmallBuffer(t *testing.T) {
	srv := tests3.Start(t)
	ctx := t.Context()
	st, err := s3.Open(ctx, s3.Config{
		Bucket: srv.Bucket, Endpoint: srv.Endpoint, PathStyle: true, Region: tests3.Region,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2*s3.DefaultReadAhead+12345)
	for i := range data {
		data[i] = byte(i * 31 >> 7)
	}
	if _, err := st.Put(ctx, "seq", data); err != nil {
		t.Fatal(err)
	}
	obj, err := st.Open(ctx, "seq")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	var got bytes.Buffer
	if _, err := io.Copy(&got, io.NewSectionReader(obj, 0, obj.Size())); err != nil {
		t.Fatalf("io.Copy: %v", err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read %d bytes, not the %d put", got.Len(), len(data))
	}
}
