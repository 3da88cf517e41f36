// Package tests3 runs a real S3-compatible server, versitygw v1.8.0 with
// its posix backend, as a subprocess for tests: not a fake, so conditional
// writes, multipart uploads, ranged reads and listing behave as a server
// does.
//
// It does not import versitygw's Go code: the binary is built once, outside
// the main module, by tools/s3/build.sh (a tools module pinning
// github.com/versity/versitygw v1.8.0) and found by Binary. Without it,
// Start skips the test, or fails it under CI (CI non-empty) or
// WINDROW_REQUIRE_S3=1.
//
// Each Start runs its own server on a free 127.0.0.1 port, storing under
// t.TempDir(), with random root credentials, and creates one bucket; it is
// stopped when the test ends.
package tests3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/windrow/windrow/internal/testbin"
)

// Version is the version of github.com/versity/versitygw that tools/s3
// pins; it names the cache directory.
const Version = "v1.8.0"

// BuildHint tells how to get the binary; it is in every "not found" message.
const BuildHint = "build it once with tools/s3/build.sh (from the repository root; a few minutes the first time), " +
	"or set WINDROW_S3_BIN to a versitygw binary"

// Region is the region the server answers for and clients sign with.
const Region = "us-east-1"

const (
	// startTimeout bounds how long Start waits for the server to answer.
	startTimeout = 30 * time.Second
	// stopTimeout is how long Cleanup waits after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
	// pollInterval is how often Start polls.
	pollInterval = 50 * time.Millisecond
	// startAttempts: a free port picked by listening on :0 can be taken by
	// someone else before the server binds it; Start then retries.
	startAttempts = 3
	// logTail is how much of the server's log a failed test prints.
	logTail = 64 << 10
)

// tool is the versitygw binary as tools/s3/build.sh caches it.
var tool = testbin.Tool{Name: "versitygw", Version: Version, EnvBin: "WINDROW_S3_BIN",
	EnvRequire: "WINDROW_REQUIRE_S3", Hint: BuildHint}

// CachePath is where tools/s3/build.sh puts the binary:
// ${WINDROW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/windrow}/versitygw-v1.8.0/versitygw.
func CachePath() (string, error) { return tool.CachePath() }

// Binary returns the versitygw binary to run: $WINDROW_S3_BIN if set, else
// the one tools/s3/build.sh cached (CachePath) if it exists.
func Binary() (string, error) { return tool.Binary() }

// Required reports whether a missing binary fails the test instead of
// skipping it: under CI (CI non-empty) or with WINDROW_REQUIRE_S3=1.
func Required() bool { return tool.Required() }

// Server is a running versitygw.
type Server struct {
	// Endpoint is the server's URL, "http://127.0.0.1:PORT"; clients use
	// path-style addressing and Region.
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per Start.
	AccessKey, SecretKey string
	// Bucket is a bucket Start created.
	Bucket string
	// Dir is the posix backend's root: a bucket is a directory in it.
	Dir string
	// LogPath is the file the server's stdout and stderr go to.
	LogPath string
}

// Client returns an S3 client signed with the server's root credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Start runs versitygw for the test on a free loopback port, storing under
// t.TempDir(), waits (at most 30s) until it answers a signed request, and
// creates Bucket. It is stopped when the test ends; if the test failed, the
// server's log is printed. Without a binary (see Binary) the test is
// skipped, or fails if Required.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if Required() {
			t.Fatalf("tests3: %v", err)
		}
		t.Skipf("tests3: %v", err)
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		s, err := start(t, bin, dir, attempt)
		if err == nil {
			return s
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
		t.Logf("tests3: attempt %d: %v; retrying on another port", attempt, err)
	}
	t.Fatalf("tests3: %v", lastErr)
	return nil
}

var errPortTaken = errors.New("the port was taken before the server bound it")

func start(t testing.TB, bin, dir string, attempt int) (*Server, error) {
	t.Helper()
	ports, err := testbin.FreePorts(1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	data := filepath.Join(dir, fmt.Sprintf("data-%d", attempt))
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("versitygw-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{Endpoint: "http://" + addr, Bucket: "windrow-test", Dir: data, LogPath: logPath}
	s.AccessKey, s.SecretKey = NewCredentials()
	args, env := Command(addr, data, s.AccessKey, s.SecretKey)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile

	proc, err := testbin.StartProcess(cmd)
	logFile.Close() // the child has its own descriptor
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := waitReady(s, proc); err != nil {
		proc.Stop(stopTimeout)
		log := testbin.Tail(logPath, logTail)
		if strings.Contains(log, "address already in use") {
			return nil, fmt.Errorf("%w: %v\n--- %s ---\n%s", errPortTaken, err, logPath, log)
		}
		return nil, fmt.Errorf("versitygw (%s) did not become ready: %v\n--- %s ---\n%s", bin, err, logPath, log)
	}
	t.Cleanup(func() {
		if err := proc.Stop(stopTimeout); err != nil {
			t.Logf("tests3: stop: %v", err)
		}
		if t.Failed() {
			t.Logf("tests3: versitygw log %s:\n%s", logPath, testbin.Tail(logPath, logTail))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", s.Bucket, err)
	}
	return s, nil
}

// NewCredentials returns random root credentials for a server.
func NewCredentials() (accessKey, secretKey string) { return "test" + randomHex(8), randomHex(20) }

// Command is how versitygw is run: the arguments that make it listen on
// addr (host:port) and store under dir, and the environment entries that
// give it its root credentials (not on the command line, which ps shows).
// Start runs it; a test that stops and restarts the server on purpose (the
// chaos run) runs it under its own supervision.
func Command(addr, dir, accessKey, secretKey string) (args, env []string) {
	return []string{"--port", addr, "--quiet", "posix", dir},
		[]string{"ROOT_ACCESS_KEY=" + accessKey, "ROOT_SECRET_KEY=" + secretKey}
}

// Ping sends one signed request (ListBuckets).
func (s *Server) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := s.Client().ListBuckets(ctx, &s3.ListBucketsInput{})
	return err
}

// waitReady polls until the server answers ListBuckets signed with its
// credentials (so it is this server, not another one on the port), the
// process exits, or startTimeout passes.
func waitReady(s *Server, proc *testbin.Process) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-proc.Exited():
			return fmt.Errorf("versitygw exited: %v", proc.Err())
		default:
		}
		err := s.Ping(context.Background())
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %v", startTimeout, err)
		}
		select {
		case <-proc.Exited():
		case <-time.After(pollInterval):
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
