// Package testjaeger runs a real Jaeger v2 all-in-one (OTLP receivers,
// in-memory storage, query API) as a subprocess for tests, and reads traces
// back through Jaeger's HTTP JSON API (the one its UI uses).
//
// It does not import Jaeger's Go code: the binary is built once, outside the
// main module, by tools/jaeger/build.sh (a separate tools module pinning
// github.com/jaegertracing/jaeger v1.75.0, i.e. Jaeger v2.12.0) and found by
// Binary. Without it, Start skips the test, or fails it under CI
// (CI non-empty) or WINDROW_REQUIRE_JAEGER=1.
//
// Each Start runs its own Jaeger on free 127.0.0.1 ports with a config
// written into t.TempDir(): OTLP over HTTP and gRPC, the query HTTP and gRPC
// servers, and nothing else (no health check, no pprof, no zpages, the
// collector's own Prometheus metrics off), so parallel tests never collide
// and nothing listens beyond loopback.
package testjaeger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/internal/testbin"
)

// ModuleVersion is the version of github.com/jaegertracing/jaeger that
// tools/jaeger pins (Jaeger v2.12.0); it names the cache directory.
const ModuleVersion = "v1.75.0"

// BuildHint tells how to get the binary; it is in every "not found" message.
const BuildHint = "build it once with tools/jaeger/build.sh (from the repository root; ~5 minutes the first time), " +
	"or set WINDROW_JAEGER_BIN to a Jaeger v2 binary"

const (
	// startTimeout bounds how long Start waits for the query API to answer.
	startTimeout = 60 * time.Second
	// stopTimeout is how long Cleanup waits after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
	// pollInterval is how often Start and WaitForTraces poll.
	pollInterval = 100 * time.Millisecond
	// startAttempts: a free port picked by listening on :0 can be taken by
	// someone else before Jaeger binds it; Start then retries on new ports.
	startAttempts = 3
	// logTail is how much of Jaeger's log a failed test prints.
	logTail = 64 << 10
)

// tool is the Jaeger binary as tools/jaeger/build.sh caches it.
var tool = testbin.Tool{Name: "jaeger", Version: ModuleVersion, EnvBin: "WINDROW_JAEGER_BIN",
	EnvRequire: "WINDROW_REQUIRE_JAEGER", Hint: BuildHint}

// CachePath is where tools/jaeger/build.sh puts the binary:
// ${WINDROW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/windrow}/jaeger-v1.75.0/jaeger.
func CachePath() (string, error) { return tool.CachePath() }

// Binary returns the Jaeger v2 binary to run: $WINDROW_JAEGER_BIN if set,
// else the one tools/jaeger/build.sh cached (CachePath) if it exists.
func Binary() (string, error) { return tool.Binary() }

// Required reports whether a missing binary fails the test instead of
// skipping it: under CI (CI non-empty) or with WINDROW_REQUIRE_JAEGER=1.
func Required() bool { return tool.Required() }

// Jaeger is a running Jaeger v2 all-in-one. Its embedded *Client reads from
// its query API.
type Jaeger struct {
	// OTLPHTTPEndpoint is the OTLP/HTTP receiver, "http://127.0.0.1:PORT",
	// as OTEL_EXPORTER_OTLP_ENDPOINT takes it (the SDK appends /v1/traces).
	// otlptracehttp.WithEndpointURL takes the full URL: OTLPTracesURL.
	OTLPHTTPEndpoint string
	// OTLPGRPCEndpoint is the OTLP/gRPC receiver, "127.0.0.1:PORT".
	OTLPGRPCEndpoint string
	// QueryURL is the query service (UI and /api), "http://127.0.0.1:PORT".
	QueryURL string
	// ConfigPath and LogPath are the config Jaeger runs with and the file
	// its stdout and stderr go to, both in t.TempDir().
	ConfigPath string
	LogPath    string

	*Client
}

// OTLPTracesURL is the OTLP/HTTP traces URL, OTLPHTTPEndpoint +
// "/v1/traces": for otlptracehttp.WithEndpointURL or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, which use the path as given.
func (j *Jaeger) OTLPTracesURL() string { return j.OTLPHTTPEndpoint + "/v1/traces" }

// ports are the loopback ports one Jaeger listens on.
type ports struct {
	otlpHTTP, otlpGRPC, queryHTTP, queryGRPC int
}

// config returns the Jaeger v2 (OpenTelemetry collector) configuration
// Start runs with: OTLP receivers, batch processor, in-memory storage, the
// query extension, every listener on 127.0.0.1, and the collector's own
// metrics (Prometheus on :8888 by default) and the query service's
// self-tracing (OTLP to localhost:4317 by default) off.
func config(p ports) string {
	return fmt.Sprintf(`# Written by internal/testjaeger for one test.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info

extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d

processors:
  batch:
    timeout: 100ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, p.queryHTTP, p.queryGRPC, p.otlpGRPC, p.otlpHTTP)
}

// Start runs a Jaeger v2 all-in-one for the test on free loopback ports and
// waits (at most 60s) until its query API answers. It is stopped when the
// test ends; if the test failed, Jaeger's log is printed. Without a binary
// (see Binary) the test is skipped, or fails if Required.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if Required() {
			t.Fatalf("testjaeger: %v", err)
		}
		t.Skipf("testjaeger: %v", err)
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		j, err := start(t, bin, dir, attempt)
		if err == nil {
			return j
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
		t.Logf("testjaeger: attempt %d: %v; retrying on other ports", attempt, err)
	}
	t.Fatalf("testjaeger: %v", lastErr)
	return nil
}

var errPortTaken = errors.New("a port was taken before jaeger bound it")

func start(t testing.TB, bin, dir string, attempt int) (*Jaeger, error) {
	t.Helper()
	free, err := testbin.FreePorts(4)
	if err != nil {
		return nil, err
	}
	p := ports{otlpHTTP: free[0], otlpGRPC: free[1], queryHTTP: free[2], queryGRPC: free[3]}
	cfgPath := filepath.Join(dir, fmt.Sprintf("jaeger-%d.yaml", attempt))
	if err := os.WriteFile(cfgPath, []byte(config(p)), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("jaeger-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile

	proc, err := testbin.StartProcess(cmd)
	logFile.Close() // the child has its own descriptor
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	j := &Jaeger{
		OTLPHTTPEndpoint: "http://" + hostPort(p.otlpHTTP),
		OTLPGRPCEndpoint: hostPort(p.otlpGRPC),
		QueryURL:         "http://" + hostPort(p.queryHTTP),
		ConfigPath:       cfgPath,
		LogPath:          logPath,
	}
	j.Client = NewClient(j.QueryURL)

	if err := waitReady(j, proc); err != nil {
		proc.Stop(stopTimeout)
		log := testbin.Tail(logPath, logTail)
		if strings.Contains(log, "address already in use") {
			return nil, fmt.Errorf("%w: %v\n--- %s ---\n%s", errPortTaken, err, logPath, log)
		}
		return nil, fmt.Errorf("jaeger (%s --config %s) did not become ready: %v\n--- %s ---\n%s",
			bin, cfgPath, err, logPath, log)
	}
	t.Cleanup(func() {
		if err := proc.Stop(stopTimeout); err != nil {
			t.Logf("testjaeger: stop: %v", err)
		}
		if t.Failed() {
			t.Logf("testjaeger: jaeger log %s:\n%s", logPath, testbin.Tail(logPath, logTail))
		}
	})
	return j, nil
}

// readyLine is what the collector logs once every component has started.
// The query extension answers before the receivers listen, and a port taken
// by another Jaeger could answer too: Start waits for both.
const readyLine = "Everything is ready"

// waitReady polls until Jaeger has logged readyLine and GET /api/services
// returns 200, the process exits, or startTimeout passes.
func waitReady(j *Jaeger, proc *testbin.Process) error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	check := func() error {
		if !logged(j.LogPath, readyLine) {
			return fmt.Errorf("%q not logged yet", readyLine)
		}
		resp, err := client.Get(j.QueryURL + "/api/services")
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s/api/services: %s", j.QueryURL, resp.Status)
		}
		return nil
	}
	for {
		select {
		case <-proc.Exited():
			return fmt.Errorf("jaeger exited: %v", proc.Err())
		default:
		}
		err := check()
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

func hostPort(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// logged reports whether the file at path contains line.
func logged(path, line string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(line))
}

// Client reads traces from a Jaeger query service through the HTTP JSON API
// its UI uses (/api/services, /api/traces, /api/traces/{id}). It works
// against any Jaeger (v1 or v2), for example the one `task jaeger` runs.
type Client struct {
	BaseURL string // e.g. "http://127.0.0.1:16686"
	HTTP    *http.Client
}

// NewClient returns a Client for the query service at baseURL.
func NewClient(baseURL string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// ErrTraceNotFound is returned by GetTrace for an unknown trace ID.
var ErrTraceNotFound = errors.New("trace not found")

// The types below are the JSON of Jaeger's query API (Jaeger's
// internal/uimodel), trimmed to what tests use.

// Trace is one trace: its spans and the processes (services) they ran in.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
	Warnings  []string           `json:"warnings"`
}

// Span is one span. StartTime is in microseconds since the Unix epoch,
// Duration in microseconds.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     int64       `json:"startTime"`
	Duration      int64       `json:"duration"`
	Tags          []KeyValue  `json:"tags"`
	ProcessID     string      `json:"processID"`
	Warnings      []string    `json:"warnings"`
}

// Reference links a span to another: RefType is "CHILD_OF" (the parent) or
// "FOLLOWS_FROM" (OTel links).
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// Process is the service a span ran in, with its resource attributes.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// KeyValue is a tag. Type is "string", "bool", "int64", "float64" or
// "binary"; numbers are decoded as json.Number (exact for int64).
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Start returns the span's start time.
func (s Span) Start() time.Time { return time.UnixMicro(s.StartTime) }

// Tag returns the span's tag named key.
func (s Span) Tag(key string) (KeyValue, bool) {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return kv, true
		}
	}
	return KeyValue{}, false
}

// ParentSpanID returns the span ID of the span's CHILD_OF reference, or ""
// for a root span.
func (s Span) ParentSpanID() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// String returns the tag's value as text.
func (kv KeyValue) String() string { return fmt.Sprint(kv.Value) }

// Service returns the service name of the span's process.
func (tr Trace) Service(s Span) string { return tr.Processes[s.ProcessID].ServiceName }

// Services returns the distinct service names of the trace's spans.
func (tr Trace) Services() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range tr.Spans {
		name := tr.Service(s)
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// SpanByOperation returns the first span named op.
func (tr Trace) SpanByOperation(op string) (Span, bool) {
	for _, s := range tr.Spans {
		if s.OperationName == op {
			return s, true
		}
	}
	return Span{}, false
}

// SpanByID returns the span with the given span ID.
func (tr Trace) SpanByID(id string) (Span, bool) {
	for _, s := range tr.Spans {
		if s.SpanID == id {
			return s, true
		}
	}
	return Span{}, false
}

// response is the envelope of every /api answer.
type response[T any] struct {
	Data   T `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

func get[T any](ctx context.Context, c *Client, path string, q url.Values) (T, error) {
	var zero T
	u := c.BaseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return zero, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return zero, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return zero, fmt.Errorf("GET %s: %w", u, err)
	}
	var r response[T]
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	decErr := dec.Decode(&r)
	if resp.StatusCode == http.StatusNotFound {
		return zero, fmt.Errorf("GET %s: %w", u, ErrTraceNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return zero, fmt.Errorf("GET %s: %s: %s", u, resp.Status, bytes.TrimSpace(body))
	}
	if decErr != nil {
		return zero, fmt.Errorf("GET %s: decode: %w", u, decErr)
	}
	if len(r.Errors) > 0 {
		return zero, fmt.Errorf("GET %s: %s", u, r.Errors[0].Msg)
	}
	return r.Data, nil
}

// Services returns the names of the services Jaeger has spans of.
func (c *Client) Services(ctx context.Context) ([]string, error) {
	return get[[]string](ctx, c, "/api/services", nil)
}

// FindLookback is how far back FindTraces searches (Jaeger's own default
// is 2 days; the search is by span start time).
var FindLookback = 48 * time.Hour

// FindTraces returns up to limit traces (Jaeger's default 100 if limit <=
// 0) that have a span of service started within FindLookback and, if tags
// is not empty, a span with all of tags (span or resource attributes,
// compared as strings).
func (c *Client) FindTraces(ctx context.Context, service string, tags map[string]string, limit int) ([]Trace, error) {
	now := time.Now()
	q := url.Values{}
	q.Set("service", service)
	// The v1.75 API ignores lookback for traces and takes start and end in
	// microseconds; end is a minute ahead to be safe from clock rounding.
	q.Set("start", strconv.FormatInt(now.Add(-FindLookback).UnixMicro(), 10))
	q.Set("end", strconv.FormatInt(now.Add(time.Minute).UnixMicro(), 10))
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if len(tags) > 0 {
		b, err := json.Marshal(tags)
		if err != nil {
			return nil, err
		}
		q.Set("tags", string(b))
	}
	return get[[]Trace](ctx, c, "/api/traces", q)
}

// GetTrace returns the trace with the given ID (hex); ErrTraceNotFound if
// Jaeger has none.
func (c *Client) GetTrace(ctx context.Context, traceID string) (Trace, error) {
	traces, err := get[[]Trace](ctx, c, "/api/traces/"+url.PathEscape(traceID), nil)
	if err != nil {
		return Trace{}, err
	}
	if len(traces) == 0 {
		return Trace{}, fmt.Errorf("trace %s: %w", traceID, ErrTraceNotFound)
	}
	return traces[0], nil
}

// WaitForTraces polls FindTraces(service, no tags, limit 100) until
// predicate holds for the traces found, and returns them. It gives up when
// ctx is done, returning the last traces found and an error naming the last
// query error, if any. Spans reach storage asynchronously (the exporter's
// and Jaeger's batching), so tests wait instead of querying once.
func (c *Client) WaitForTraces(ctx context.Context, service string, predicate func([]Trace) bool) ([]Trace, error) {
	var (
		traces  []Trace
		lastErr error
	)
	for {
		found, err := c.FindTraces(ctx, service, nil, 100)
		if err == nil {
			traces = found
			if predicate(traces) {
				return traces, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return traces, fmt.Errorf("waiting for traces of %q: %w (last query error: %v)", service, ctx.Err(), lastErr)
			}
			return traces, fmt.Errorf("waiting for traces of %q: %w (%d traces found, predicate false)", service, ctx.Err(), len(traces))
		case <-time.After(pollInterval):
		}
	}
}
