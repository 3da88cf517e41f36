package tests3

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestStart: a started server has its bucket, stores under Dir, and two
// servers side by side share nothing.
func TestStart(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Endpoint == b.Endpoint || a.SecretKey == b.SecretKey {
		t.Fatalf("instances share an endpoint or credentials: %s %s", a.Endpoint, b.Endpoint)
	}
	ctx := t.Context()
	if _, err := a.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(a.Bucket), Key: aws.String("k"), Body: strings.NewReader("v"),
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	out, err := a.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.Bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || string(got) != "v" {
		t.Fatalf("GetObject = %q, %v", got, err)
	}
	if data, err := os.ReadFile(filepath.Join(a.Dir, a.Bucket, "k")); err != nil || string(data) != "v" {
		t.Errorf("posix backend file = %q, %v; want the object under Dir", data, err)
	}
	if _, err := b.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String("k")}); err == nil {
		t.Error("the second server has the first one's object")
	}
}

// TestBinary: the binary is looked for where the build script puts it
// (testbin.Tool covers the lookup itself).
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WINDROW_S3_BIN", "")
	t.Setenv("WINDROW_TOOLS_CACHE", dir)
	want := filepath.Join(dir, "versitygw-"+Version, "versitygw")
	if p, err := CachePath(); err != nil || p != want {
		t.Fatalf("CachePath = %q, %v; want %q", p, err, want)
	}
	if _, err := Binary(); err == nil || !strings.Contains(err.Error(), "tools/s3/build.sh") {
		t.Fatalf("Binary with nothing built: err = %v, want the build hint", err)
	}
}

// TestRequired: CI or WINDROW_REQUIRE_S3=1 turn a missing binary into a
// failure.
func TestRequired(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("WINDROW_REQUIRE_S3", "")
	if Required() {
		t.Error("Required with neither CI nor WINDROW_REQUIRE_S3")
	}
	t.Setenv("WINDROW_REQUIRE_S3", "1")
	if !Required() {
		t.Error("not Required with WINDROW_REQUIRE_S3=1")
	}
	t.Setenv("WINDROW_REQUIRE_S3", "")
	t.Setenv("CI", "true")
	if !Required() {
		t.Error("not Required under CI")
	}
}
