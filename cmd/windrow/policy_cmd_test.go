package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/app/policyrun"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// policyEnv is a NATS server with JetStream for the policy command tests,
// with direct access to the policies and window states the commands see.
type policyEnv struct {
	t        *testing.T
	url      string
	dataDir  string
	policies jetstream.KeyValue
	store    *policystore.Store
	states   *statestore.Store
}

func newPolicyEnv(t *testing.T) *policyEnv {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := natsx.Provision(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	return &policyEnv{t: t, url: srv.ClientURL(), dataDir: t.TempDir(), policies: topo.Policies,
		store: policystore.New(topo.Policies), states: statestore.New(topo.Windows)}
}

// result is what one command printed and its exit status.
type result struct {
	out, errOut string
	code        int
	err         error
}

// run runs `windrow policy ARGS` against the env's server.
func (e *policyEnv) run(args ...string) result {
	return e.runCmd(&policyCmd{}, args...)
}

func (e *policyEnv) runCmd(c *policyCmd, args ...string) result {
	e.t.Helper()
	var out, errOut bytes.Buffer
	c.out, c.errOut = &out, &errOut
	if len(args) > 0 && args[0] != "validate" {
		args = append(args, "--nats-url", e.url, "--data-dir", e.dataDir)
	}
	err := c.run(context.Background(), args)
	r := result{out: out.String(), errOut: errOut.String(), code: exitCode(err), err: err}
	e.t.Logf("windrow policy %s → %d, %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, err, r.out, r.errOut)
	return r
}

// values counts the values ever stored in the policies bucket.
func (e *policyEnv) values() uint64 {
	e.t.Helper()
	st, err := e.policies.Status(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Values()
}

// version is the current version of a stored policy.
func (e *policyEnv) version(name string) uint64 {
	e.t.Helper()
	cur, err := e.store.Current(context.Background(), name)
	if err != nil {
		e.t.Fatalf("current %s: %v", name, err)
	}
	return cur.Version
}

const ordersPolicyFile = `name: orders
source: {stream: ORDERS, subjects: [orders.>]}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: n, type: int64, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h, late: dlq}
load: {table: orders}
`

func salesFile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../deploy/policies/daily_store_sales.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeFile(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// replace returns s with old replaced by new, which must occur in it.
func replace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}

// lineOf is the 1-based line of the first line of s containing sub.
func lineOf(t *testing.T, s, sub string) int {
	t.Helper()
	i := strings.Index(s, sub)
	if i < 0 {
		t.Fatalf("%q not found", sub)
	}
	return strings.Count(s[:i], "\n") + 1
}

func TestPolicyApplyDirectoryWithAnInvalidFileStoresNothing(t *testing.T) {
	e := newPolicyEnv(t)
	dir := t.TempDir()
	sales := salesFile(t)
	writeFile(t, filepath.Join(dir, "daily_store_sales.yaml"), sales)
	writeFile(t, filepath.Join(dir, "orders.yml"), ordersPolicyFile)
	bad := replace(t, replace(t, sales, "name: daily_store_sales", "name: bad_sales"), "size: 24h", "size: 25x")
	bad = replace(t, bad, "allowed_lateness: 30m", "allowed_latenes: 30m")
	badPath := writeFile(t, filepath.Join(dir, "zz_bad.yaml"), bad)
	writeFile(t, filepath.Join(dir, "README.md"), "not a policy")
	writeFile(t, filepath.Join(dir, "sub", "ignored.yaml"), "not: read without -r")

	r := e.run("apply", dir)
	if r.code != 1 || !strings.Contains(r.err.Error(), "1 of 3 policy files are invalid; nothing applied") {
		t.Fatalf("apply of a directory with an invalid file: exit %d, %v; want 1 and nothing applied", r.code, r.err)
	}
	for _, want := range []string{
		fmt.Sprintf("%s:%d: window.size: \"25x\" is not a duration", badPath, lineOf(t, bad, "size: 25x")),
		fmt.Sprintf("%s:%d: window.allowed_latenes: unknown field", badPath, lineOf(t, bad, "allowed_latenes")),
	} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if r.out != "" {
		t.Errorf("stdout = %q, want nothing (no diffs before every file is valid)", r.out)
	}
	if n := e.values(); n != 0 {
		t.Fatalf("%d values stored, want none", n)
	}

	// Two files of one policy are refused too, naming both.
	os.Remove(badPath)
	dup := writeFile(t, filepath.Join(dir, "zz_dup.yaml"), "# a copy\n"+ordersPolicyFile)
	r = e.run("apply", dir)
	want := fmt.Sprintf("%s:2: name: policy \"orders\" is also defined in %s", dup, filepath.Join(dir, "orders.yml"))
	if r.code != 1 || !strings.Contains(r.errOut, want) || e.values() != 0 {
		t.Fatalf("apply with two files of one policy: exit %d, %d values stored; want 1, none and %q", r.code, e.values(), want)
	}
	os.Remove(dup)

	// Without the bad files, the directory applies; -r reads sub/ too.
	r = e.run("apply", dir)
	if r.code != 0 || !strings.Contains(r.out, "daily_store_sales: created v") || !strings.Contains(r.out, "orders: created v") {
		t.Fatalf("apply of the valid directory: exit %d; want both created", r.code)
	}
	if r = e.run("apply", "-r", dir); r.code != 1 || !strings.Contains(r.errOut, filepath.Join(dir, "sub", "ignored.yaml")) {
		t.Fatalf("apply -r: exit %d; want the file in sub/ read (and refused)", r.code)
	}

	// An empty directory is an error, not a silent success.
	if r = e.run("apply", t.TempDir()); r.code != 1 || !strings.Contains(r.err.Error(), "no *.yaml or *.yml files") {
		t.Fatalf("apply of an empty directory: exit %d, %v", r.code, r.err)
	}
}

func TestPolicyApplyTwiceIsUnchanged(t *testing.T) {
	e := newPolicyEnv(t)
	path := writeFile(t, filepath.Join(t.TempDir(), "orders.yaml"), ordersPolicyFile)
	r := e.run("apply", path)
	v := e.version("orders")
	if r.code != 0 || !strings.Contains(r.out, fmt.Sprintf("orders: created v%d\n", v)) {
		t.Fatalf("first apply: exit %d; want \"orders: created v%d\"", r.code, v)
	}
	if !strings.Contains(r.out, "--- stored orders (none)\n+++ "+path+"\n") || !strings.Contains(r.out, "+name: orders\n") {
		t.Errorf("first apply: no diff against nothing")
	}

	r = e.run("apply", path)
	if r.code != 0 || r.out != fmt.Sprintf("orders: unchanged (v%d)\n", v) {
		t.Fatalf("second apply: exit %d, stdout %q; want only \"orders: unchanged (v%d)\"", r.code, r.out, v)
	}

	// Comments, key order, flow style and written-out defaults are no change.
	same := `# orders, rewritten
load:
  table: orders   # target
  mode: append
window: {late: dlq, kind: tumbling, size: 1h, timezone: UTC}
time: {mode: event, field: at}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: n, type: int64, required: true}
    - {name: at, type: timestamp, required: true, unit: ms}
source:
  subjects: [orders.>]
  stream: ORDERS
name: orders
`
	r = e.run("apply", writeFile(t, filepath.Join(t.TempDir(), "orders.yaml"), same))
	if r.code != 0 || r.out != fmt.Sprintf("orders: unchanged (v%d)\n", v) || e.values() != 1 {
		t.Fatalf("apply of a reformatted file: exit %d, stdout %q, %d values; want unchanged (v%d) and 1 value", r.code, r.out, e.values(), v)
	}
	if r = e.run("diff", path); r.code != 0 || r.out != "" {
		t.Fatalf("diff of the applied file: exit %d, stdout %q; want 0 and nothing", r.code, r.out)
	}
}

func TestPolicyApplyShowsTheDiffAndBumpsTheVersion(t *testing.T) {
	e := newPolicyEnv(t)
	dir := t.TempDir()
	sales := salesFile(t)
	path := writeFile(t, filepath.Join(dir, "daily_store_sales.yaml"), sales)
	if r := e.run("apply", path); r.code != 0 {
		t.Fatalf("apply: exit %d", r.code)
	}
	v1 := e.version("daily_store_sales")
	writeFile(t, path, replace(t, sales, "max_rows: 50000", "max_rows: 40000"))
	wantDiff := fmt.Sprintf("--- stored daily_store_sales v%d\n+++ %s\n", v1, path) +
		"@@ -43,7 +43,7 @@\n" +
		"   idle_timeout: 10s\n   future_horizon: 24h0m0s\n segment:\n-  max_rows: 50000\n+  max_rows: 40000\n   max_bytes: 32MiB\n   max_age: 2s\n output:\n"

	// diff: the change, exit 1.
	r := e.run("diff", dir)
	if r.code != 1 || r.out != wantDiff || !strings.Contains(r.errOut, "1 of 1 policies differ") {
		t.Fatalf("diff: exit %d, stdout:\n%s\nwant exit 1 and:\n%s", r.code, r.out, wantDiff)
	}
	// --dry-run: the same diff, nothing stored (flags after the paths work too).
	r = e.run("apply", dir, "--dry-run")
	if r.code != 0 || r.out != wantDiff+fmt.Sprintf("daily_store_sales: would be updated from v%d (dry run)\n", v1) || e.version("daily_store_sales") != v1 {
		t.Fatalf("apply --dry-run: exit %d, version %d; want the diff and v%d kept", r.code, e.version("daily_store_sales"), v1)
	}

	r = e.run("apply", dir)
	v2 := e.version("daily_store_sales")
	if r.code != 0 || v2 <= v1 || r.out != wantDiff+fmt.Sprintf("daily_store_sales: updated v%d → v%d\n", v1, v2) {
		t.Fatalf("apply of the change: exit %d, stdout %q; want the diff and updated v%d → v%d", r.code, r.out, v1, v2)
	}
	p, err := e.store.Get(context.Background(), "daily_store_sales")
	if err != nil || p.Segment.MaxRows != 40000 {
		t.Fatalf("stored policy = %+v, %v; want max_rows 40000", p, err)
	}
	if r = e.run("diff", dir); r.code != 0 {
		t.Fatalf("diff after apply: exit %d, want 0", r.code)
	}

	// diff: an invalid file or no server is trouble, exit 2.
	writeFile(t, filepath.Join(dir, "bad.yaml"), "name: [\n")
	if r = e.run("diff", dir); r.code != 2 || !strings.Contains(r.errOut, "bad.yaml:") {
		t.Fatalf("diff with an invalid file: exit %d, want 2 naming it", r.code)
	}
	var out, errOut bytes.Buffer
	err = (&policyCmd{out: &out, errOut: &errOut}).run(context.Background(), []string{"diff", path, "--nats-url", "nats://127.0.0.1:1", "--data-dir", t.TempDir()})
	if exitCode(err) != 2 {
		t.Fatalf("diff without a server: %v (exit %d), want exit 2", err, exitCode(err))
	}
}

func TestPolicyApplyRefusesAConcurrentUpdate(t *testing.T) {
	e := newPolicyEnv(t)
	dir := t.TempDir()
	sales := salesFile(t)
	path := writeFile(t, filepath.Join(dir, "daily_store_sales.yaml"), sales)
	writeFile(t, filepath.Join(dir, "orders.yaml"), ordersPolicyFile)
	if r := e.run("apply", path); r.code != 0 {
		t.Fatalf("apply: exit %d", r.code)
	}
	v1 := e.version("daily_store_sales")

	// Between the diff and the store, someone else stores another version.
	writeFile(t, path, replace(t, sales, "max_rows: 50000", "max_rows: 40000"))
	theirs := replace(t, sales, "max_rows: 50000", "max_rows: 30000")
	c := &policyCmd{beforeStore: func(ctx context.Context, s *stack.Stack, name string) {
		if name != "daily_store_sales" {
			return
		}
		if _, err := s.Policies.Apply(ctx, "theirs.yaml", []byte(theirs)); err != nil {
			t.Errorf("concurrent apply: %v", err)
		}
	}}
	r := e.runCmd(c, "apply", dir)
	v2 := e.version("daily_store_sales")
	want := fmt.Sprintf("daily_store_sales: not applied: policy changed in the store since it was read: daily_store_sales was v%d when read and is v%d now; nothing was overwritten", v1, v2)
	if r.code != 1 || !strings.Contains(r.errOut, want) {
		t.Fatalf("apply with a concurrent update: exit %d; want 1 and %q", r.code, want)
	}
	if !strings.Contains(r.out, "-  max_rows: 50000\n+  max_rows: 40000\n") {
		t.Errorf("the diff was not shown before the store")
	}
	if strings.Contains(r.out, "daily_store_sales: updated") {
		t.Errorf("stdout reports an update that did not happen")
	}
	if !strings.Contains(r.out, "orders: created v") {
		t.Errorf("the other policy of the apply was not stored")
	}
	p, err := e.store.Get(context.Background(), "daily_store_sales")
	if err != nil || p.Segment.MaxRows != 30000 {
		t.Fatalf("stored policy = %+v, %v; want their max_rows 30000 kept", p, err)
	}

	// Run again: the diff is against their version, and it applies.
	r = e.run("apply", path)
	if r.code != 0 || !strings.Contains(r.out, "-  max_rows: 30000\n+  max_rows: 40000\n") || !strings.Contains(r.out, fmt.Sprintf("updated v%d → v", v2)) {
		t.Fatalf("apply again: exit %d; want the diff against v%d and an update", r.code, v2)
	}
}

// putWindow stores a window state of a policy.
func (e *policyEnv) putWindow(policy string, start time.Time, status messages.WindowStatus) string {
	e.t.Helper()
	st := &messages.WindowState{Policy: policy, PolicyVersion: 1, WindowStart: start, WindowEnd: start.Add(24 * time.Hour), Status: status}
	if _, err := e.states.Update(context.Background(), st.Key(), func(*messages.WindowState) (*messages.WindowState, error) { return st, nil }); err != nil {
		e.t.Fatal(err)
	}
	return st.ID()
}

func TestPolicyDelete(t *testing.T) {
	e := newPolicyEnv(t)
	sales := salesFile(t)
	path := writeFile(t, filepath.Join(t.TempDir(), "daily_store_sales.yaml"), sales)
	if r := e.run("apply", path); r.code != 0 {
		t.Fatalf("apply: exit %d", r.code)
	}
	v1 := e.version("daily_store_sales")

	// The workers of the running services, as policyrun runs them.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan uint64, 4)
	stopped := make(chan string, 4)
	runDone := make(chan error, 1)
	go func() {
		runDone <- policyrun.Run(ctx, e.store, slog.New(slog.NewTextHandler(io.Discard, nil)), func(ctx context.Context, p *windows.Policy) error {
			started <- p.Version
			<-ctx.Done()
			stopped <- p.Name
			return nil
		})
	}()
	select {
	case v := <-started:
		if v != v1 {
			t.Fatalf("worker started with v%d, want v%d", v, v1)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no worker started")
	}

	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	loaded := e.putWindow("daily_store_sales", day, messages.StatusLoaded)
	open := e.putWindow("daily_store_sales", day.Add(24*time.Hour), messages.StatusOpen)
	sealed := e.putWindow("daily_store_sales", day.Add(48*time.Hour), messages.StatusSealed)
	e.putWindow("other", day, messages.StatusOpen) // another policy's window does not count

	r := e.run("delete", "daily_store_sales")
	if r.code != 1 || !strings.Contains(r.err.Error(), "refusing to delete daily_store_sales") || !strings.Contains(r.err.Error(), "--force") {
		t.Fatalf("delete with windows not LOADED: exit %d, %v; want 1, refused", r.code, r.err)
	}
	if !strings.Contains(r.errOut, "daily_store_sales has 2 windows that are not LOADED") ||
		!strings.Contains(r.errOut, open+"  OPEN") || !strings.Contains(r.errOut, sealed+"  SEALED") || strings.Contains(r.errOut, loaded) {
		t.Errorf("the refusal does not list exactly the windows %s (OPEN) and %s (SEALED)", open, sealed)
	}
	if e.version("daily_store_sales") != v1 {
		t.Fatal("the refused delete changed the policy")
	}
	select {
	case <-stopped:
		t.Fatal("a refused delete stopped the worker")
	default:
	}

	r = e.run("delete", "daily_store_sales", "--force")
	if r.code != 0 || !strings.Contains(r.out, fmt.Sprintf("daily_store_sales: deleted v%d", v1)) ||
		!strings.Contains(r.out, "running collectors and compactors stop") || !strings.Contains(r.out, "the 2 windows that are not LOADED will stay as is until the policy is applied again") {
		t.Fatalf("delete --force: exit %d; want deleted v%d and the consequences", r.code, v1)
	}
	if _, err := e.store.Current(context.Background(), "daily_store_sales"); err == nil {
		t.Fatal("the policy is still stored")
	}
	select {
	case name := <-stopped:
		if name != "daily_store_sales" {
			t.Fatalf("worker of %s stopped", name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the deleted policy's worker did not stop")
	}

	// The history keeps the deleted version.
	r = e.run("get", "daily_store_sales")
	if r.code != 1 || !strings.Contains(r.err.Error(), "daily_store_sales was deleted at v") {
		t.Fatalf("get of the deleted policy: exit %d, %v; want it reported deleted", r.code, r.err)
	}
	r = e.run("get", "daily_store_sales", "--version", fmt.Sprint(v1))
	if r.code != 0 || r.out != sales {
		t.Fatalf("get --version %d after delete: exit %d; want the file as applied", v1, r.code)
	}
	if r = e.run("delete", "daily_store_sales"); r.code != 1 || !strings.Contains(r.err.Error(), "was deleted at") {
		t.Fatalf("second delete: exit %d, %v; want it reported deleted", r.code, r.err)
	}

	// A policy with only LOADED windows (or none) goes without --force.
	if r = e.run("apply", writeFile(t, filepath.Join(t.TempDir(), "orders.yaml"), ordersPolicyFile)); r.code != 0 {
		t.Fatal("apply orders")
	}
	e.putWindow("orders", day, messages.StatusLoaded)
	if r = e.run("delete", "orders"); r.code != 0 || strings.Contains(r.out, "not LOADED") {
		t.Fatalf("delete of a policy whose windows are all LOADED: exit %d, %v", r.code, r.err)
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("policyrun: %v", err)
	}
}

func TestPolicyGetVersionsAndList(t *testing.T) {
	e := newPolicyEnv(t)
	if r := e.run("list"); r.code != 0 || !strings.Contains(r.out, "no policies") {
		t.Fatalf("list of an empty store: exit %d, %q", r.code, r.out)
	}
	dir := t.TempDir()
	sales := salesFile(t)
	path := writeFile(t, filepath.Join(dir, "daily_store_sales.yaml"), sales)
	writeFile(t, filepath.Join(dir, "orders.yaml"), ordersPolicyFile)
	if r := e.run("apply", dir); r.code != 0 {
		t.Fatal("apply")
	}
	v1 := e.version("daily_store_sales")
	changed := replace(t, sales, "size: 24h", "size: 12h")
	writeFile(t, path, changed)
	if r := e.run("apply", path); r.code != 0 {
		t.Fatal("apply change")
	}
	v2 := e.version("daily_store_sales")

	if r := e.run("get", "daily_store_sales", "--version", fmt.Sprint(v1)); r.code != 0 || r.out != sales || !strings.Contains(r.errOut, fmt.Sprintf("# daily_store_sales v%d, stored ", v1)) {
		t.Fatalf("get --version %d: exit %d; want the old text", v1, r.code)
	}
	// The stored text is the file as written, with the shape change recorded below it.
	if r := e.run("get", "daily_store_sales"); r.code != 0 || !strings.HasPrefix(r.out, changed) ||
		!strings.Contains(r.out[len(changed):], "\nwindow_history:\n  - {until: ") || !strings.Contains(r.out, ", kind: tumbling, size: 24h0m0s, timezone: \"UTC\"}\n") || !strings.Contains(r.errOut, fmt.Sprintf("v%d, stored ", v2)) || !strings.Contains(r.errOut, "current") {
		t.Fatalf("get: exit %d; want the current text", r.code)
	}
	if r := e.run("get", "daily_store_sales", "--format", "yaml"); r.code != 0 || !strings.Contains(r.out, "  size: 12h0m0s\n") || strings.Contains(r.out, "#") {
		t.Fatalf("get --format yaml: exit %d; want the canonical form", r.code)
	}
	if r := e.run("get", "daily_store_sales", "--format", "json", "--version", fmt.Sprint(v1)); r.code != 0 || !strings.Contains(r.out, fmt.Sprintf(`"version": %d`, v1)) || !strings.Contains(r.out, `"size": "24h0m0s"`) {
		t.Fatalf("get --format json --version: exit %d", r.code)
	}
	// +6 -1: the size, and window_history (5 lines of the canonical form).
	r := e.run("get", "daily_store_sales", "--history")
	if r.code != 0 || !strings.Contains(r.out, fmt.Sprintf("v%d ", v1)) || !strings.Contains(r.out, "created") ||
		!strings.Contains(r.out, "updated (+6 -1 lines) (current)") {
		t.Fatalf("get --history: exit %d; want created and updated (current)", r.code)
	}
	if r := e.run("get", "daily_store_sales", "--version", "999999"); r.code != 1 || !strings.Contains(r.err.Error(), fmt.Sprintf("the history holds v%d, v%d", v1, v2)) {
		t.Fatalf("get of a missing version: exit %d, %v", r.code, r.err)
	}
	if r := e.run("get", "nothing"); r.code != 1 || !strings.Contains(r.err.Error(), "policy not found: nothing") {
		t.Fatalf("get of a missing policy: exit %d, %v", r.code, r.err)
	}

	r = e.run("list")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("list: exit %d, %d lines; want a header and 2 rows", r.code, len(lines))
	}
	for i, want := range [][]string{
		{"NAME", "VERSION", "UPDATED", "WINDOW", "TABLE", "SOURCE"},
		{"daily_store_sales", fmt.Sprintf("v%d", v2), "tumbling 12h", "sales", "EVENTS: events.sales.>"},
		{"orders", "v", "tumbling 1h", "orders", "ORDERS: orders.>"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("list line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
	if !strings.Contains(lines[1], time.Now().UTC().Format("2006-01-02T")) {
		t.Errorf("list line %q lacks today's date", lines[1])
	}

	// A stored file that no longer parses is listed, not fatal.
	if _, err := e.policies.Put(context.Background(), "broken", []byte("name: broken\n")); err != nil {
		t.Fatal(err)
	}
	if r := e.run("list"); r.code != 0 || !strings.Contains(r.out, "INVALID") {
		t.Fatalf("list with a broken policy: exit %d", r.code)
	}
	if r := e.run("get", "broken"); r.code != 0 || r.out != "name: broken\n" {
		t.Fatalf("get of a broken policy: exit %d; want its text", r.code)
	}
}

// TestPolicyApplyRefusesWhatIsNotRunYet: a valid policy that asks for what
// the services do not run (late: revise with session windows) is refused by
// apply with the file and field; nothing is stored.
func TestPolicyApplyRefusesWhatIsNotRunYet(t *testing.T) {
	e := newPolicyEnv(t)
	session := replace(t, ordersPolicyFile, "size: 1h, late: dlq", "kind: session, gap: 30m, late: revise") + "key: [id]\n"
	path := writeFile(t, filepath.Join(t.TempDir(), "session.yaml"), session)
	r := e.run("apply", path)
	want := path + ": window.late: revise is not run for session windows yet (valid with sessions: drop, dlq)"
	if r.code != 1 || !strings.Contains(r.errOut, want) || e.values() != 0 {
		t.Fatalf("apply of a session policy with late: revise: exit %d, stderr %q, %d stored; want 1, %q, none", r.code, r.errOut, e.values(), want)
	}
	// Session windows themselves are run.
	session = replace(t, ordersPolicyFile, "size: 1h", "kind: session, gap: 30m") + "key: [id]\n"
	writeFile(t, path, session)
	if r := e.run("apply", path); r.code != 0 || e.values() != 1 {
		t.Fatalf("apply of a session policy: exit %d, stderr %q; want it stored", r.code, r.errOut)
	}
}

// TestPolicyApplyRecordsAShapeChange: a new window size is not refused while
// windows are open; apply (and --dry-run) says from which instant it applies,
// the stored policy records the old shape in window_history, and applying or
// diffing the same file again shows no change.
func TestPolicyApplyRecordsAShapeChange(t *testing.T) {
	e := newPolicyEnv(t)
	path := writeFile(t, filepath.Join(t.TempDir(), "orders.yaml"), ordersPolicyFile)
	if r := e.run("apply", path); r.code != 0 {
		t.Fatalf("apply: exit %d, %s", r.code, r.errOut)
	}
	v1 := e.version("orders")
	// An open window (ahead of the clock) ends at 2027-01-02: nothing before that changes shape.
	e.putWindow("orders", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), messages.StatusOpen)
	twoHours := replace(t, ordersPolicyFile, "size: 1h", "size: 2h")
	writeFile(t, path, twoHours)
	switchLine := "orders: window.size 1h0m0s → 2h0m0s applies from 2027-01-02T00:00:00Z; windows before that keep 1h0m0s tumbling windows in UTC\n"

	r := e.run("apply", "--dry-run", path)
	if r.code != 0 || !strings.Contains(r.out, switchLine) || !strings.Contains(r.out, "+window_history:\n+  - until: 2027-01-02T00:00:00Z\n") ||
		!strings.Contains(r.out, "would be updated") || e.version("orders") != v1 {
		t.Fatalf("apply --dry-run: exit %d, stdout %q, stderr %q; want the switch instant, nothing stored", r.code, r.out, r.errOut)
	}
	r = e.run("apply", path)
	if r.code != 0 || !strings.Contains(r.out, switchLine) || !strings.Contains(r.out, fmt.Sprintf("updated v%d → v", v1)) {
		t.Fatalf("apply: exit %d, stdout %q, stderr %q; want the switch instant and an update", r.code, r.out, r.errOut)
	}
	p, err := e.store.Get(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	want := []windows.PastShape{{Until: time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), Kind: windows.Tumbling, Size: windows.Duration(time.Hour), Timezone: "UTC"}}
	if !slices.Equal(p.WindowHistory, want) || p.Window.Size.D() != 2*time.Hour {
		t.Fatalf("stored size %s, history %+v; want 2h and %+v", p.Window.Size.D(), p.WindowHistory, want)
	}
	// The same file again: the history is kept, nothing changes.
	v2 := e.version("orders")
	if r := e.run("apply", path); r.code != 0 || !strings.Contains(r.out, fmt.Sprintf("orders: unchanged (v%d)", v2)) || strings.Contains(r.out, "window_history") {
		t.Fatalf("apply of the same file: exit %d, stdout %q", r.code, r.out)
	}
	if r := e.run("diff", path); r.code != 0 || r.out != "" {
		t.Fatalf("diff of the same file: exit %d, stdout %q; want no difference", r.code, r.out)
	}

	// Hours in Asia/Kolkata (+05:30) never meet UTC hours: refused, naming the file and the field.
	kolkata := replace(t, twoHours, "size: 2h", "size: 2h, timezone: Asia/Kolkata")
	writeFile(t, path, kolkata)
	r = e.run("apply", path)
	wantErr := path + ": window.timezone: UTC → Asia/Kolkata: no instant within 100000 windows after 2027-01-02T00:00:00Z"
	if r.code != 1 || !strings.Contains(r.errOut, wantErr) || e.version("orders") != v2 {
		t.Fatalf("apply of a zone that never meets: exit %d, stderr %q; want 1 and %q", r.code, r.errOut, wantErr)
	}
}
