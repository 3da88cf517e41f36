//go:build chaos

package loadtest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

// The scaling measurements of issue 13, on the cluster topology (3
// nats-server processes, R3): intake with 1, 2 and 4 collector processes,
// and a drain end to end. Not timed tests: each run asserts that every
// event was staged (and, draining, loaded) exactly once, and logs what it
// measured.
//
//	go test -tags chaos -run TestIntakeScaling -timeout 30m -v ./loadtest/ -args -scale.events=400000 -scale.collectors=1,2,4
//	go test -tags chaos -run TestClusterDrain -timeout 30m -v ./loadtest/ -args -scale.events=1000000
var (
	scaleEvents     = flag.Int("scale.events", 400_000, "events to fill the source stream with before the roles start")
	scaleCollectors = flag.String("scale.collectors", "1,2,4", "collector process counts to measure intake with, in turn")
	scaleWindows    = flag.Int("scale.windows", 24, "hourly windows the events spread over")
)

// scaleRig is one measurement's cluster, policy and filled stream.
type scaleRig struct {
	dir, windrow string
	nats         *chaosNATS
	procs        []*proc
	policy       *windows.Policy
	client       *stack.Stack
}

func newScaleRig(t *testing.T, ctx context.Context, windrowBin, natsBin, dir string, events int) *scaleRig {
	t.Helper()
	r := &scaleRig{dir: dir, windrow: windrowBin}
	for _, d := range []string{"logs", "nats"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range r.procs {
			p.stopForGood(10 * time.Second)
		}
	})
	r.nats = startNATS(t, ctx, natsBin, dir, r.start, true, 0)
	var err error
	if r.policy, err = windows.ParsePolicy("bench_sales.yaml", []byte(BenchPolicy)); err != nil {
		t.Fatal(err)
	}
	if r.client, err = stack.Open(ctx, stack.Config{DataDir: filepath.Join(dir, "client"), NATS: natsx.ClientConfig{URL: r.nats.URL(), Name: "scale client"},
		NATSReplicas: clusterNodes, Roles: []string{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.client.Close() })
	// The source stream is made and filled before the policy exists, so
	// that the roles can start, idle, and be measured from the moment the
	// policy is applied (applyPolicy): their start-up is not counted.
	if _, err := natsx.EnsureSourceStream(ctx, r.client.JS, r.policy.Source.Stream, r.policy.Source.Subjects, natsx.WithReplicas(clusterNodes)); err != nil {
		t.Fatal(err)
	}

	nc, err := nats.Connect(r.nats.URL(), nats.Name("scale publisher"), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	gen := Sales{Seed: 1, Events: events, Start: time.Date(2026, 9, 7, 0, 0, 0, 0, time.UTC), Span: time.Duration(*scaleWindows) * time.Hour,
		Jitter: 2 * time.Minute, SubjectPrefix: "bench.sales"}
	next, stop := iter.Pull(gen.All())
	defer stop()
	var last Event
	pub := &Publisher{JS: js, MaxOutOfOrder: r.policy.Window.MaxOutOfOrder.D(), EventTime: func(int) time.Time { return last.Time }}
	t0 := time.Now()
	if err := pub.Publish(ctx, events, func(i int) (string, []byte, string) {
		last, _ = next()
		return last.Subject, last.Data, "scale-" + strconv.Itoa(i)
	}); err != nil {
		t.Fatalf("fill: %v", err)
	}
	if err := pub.Flush(ctx, r.policy.Name); err != nil {
		t.Fatalf("flush: %v", err)
	}
	t.Logf("%s: filled %d events into the R3 stream in %s", filepath.Base(dir), events, time.Since(t0).Round(time.Millisecond))
	return r
}

// applyPolicy applies the policy with the CLI; the roles start on it.
func (r *scaleRig) applyPolicy(t *testing.T, ctx context.Context) {
	t.Helper()
	policyFile := filepath.Join(r.dir, "bench_sales.yaml")
	if err := os.WriteFile(policyFile, []byte(BenchPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(actx, r.windrow, "policy", "apply", "--nats-url", r.nats.URL(), "--nats-replicas", strconv.Itoa(clusterNodes),
		"--data-dir", filepath.Join(r.dir, "cli"), policyFile).CombinedOutput()
	if err != nil {
		t.Fatalf("windrow policy apply: %v\n%s", err, out)
	}
}

// idleCPU lets the started roles settle with no policy to run, and
// returns their CPU seconds so far (start-up), to subtract.
func idleCPU(t *testing.T, procs []*proc) []float64 {
	t.Helper()
	time.Sleep(3 * time.Second)
	out := make([]float64, len(procs))
	for i, p := range procs {
		s, err := cpuSeconds(p)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

func (r *scaleRig) start(p *proc) {
	r.procs = append(r.procs, p)
	if err := p.start(); err != nil {
		panic(err)
	}
}

// role starts a windrow role process, pinned to cpu if cpu ≥ 0 (taskset).
func (r *scaleRig) role(t *testing.T, role, instance string, cpu int, extra ...string) *proc {
	t.Helper()
	args := append([]string{role, "--nats-url", r.nats.URL(), "--nats-replicas", strconv.Itoa(clusterNodes),
		"--data-dir", filepath.Join(r.dir, instance), "--objects", filepath.Join(r.dir, "objects"), "--instance", instance,
		"--log-level", "warn", "--metrics-addr", "127.0.0.1:0"}, extra...)
	bin := r.windrow
	if cpu >= 0 {
		args = append([]string{"-c", strconv.Itoa(cpu), r.windrow}, args...)
		bin = "taskset"
	}
	p := newProc(instance, bin, filepath.Join(r.dir, "logs", instance+".log"), args...)
	r.start(p)
	return p
}

// cpuSeconds is the CPU time (user + system) a running process has used.
func cpuSeconds(p *proc) (float64, error) {
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name (which may hold spaces) start at
	// the state, field 3; utime and stime are fields 14 and 15.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q", pid, data)
	}
	const clockTicks = 100 // USER_HZ on Linux
	return (utime + stime) / clockTicks, nil
}

// waitDrained waits until the collectors' consumer has nothing pending or
// unacked.
func (r *scaleRig) waitDrained(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		// Each poll has its own timeout: on a cluster a JetStream request
		// lost in a leader change is never answered, and would wait as long
		// as its context lets it.
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		lag, err := inspect.CollectorLag(pctx, r.client.JS, r.policy.Source.Stream, r.policy.Name)
		pcancel()
		if err == nil && lag.Pending == 0 && lag.AckPending == 0 && lag.AckFloor > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("collectors not drained within %s (last: %+v, %v)", timeout, lag, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestIntakeScaling fills the R3 source stream, starts n collector
// processes at once (each pinned to a core in turn, so that the two cores
// are shared fairly), and measures until the collectors' consumer is
// drained: events/s, and events per collector CPU-second — the figure that
// shows whether a collector does as much work per CPU-second beside
// others as alone. Every event must be staged exactly once.
func TestIntakeScaling(t *testing.T) {
	var counts []int
	for _, s := range strings.Split(*scaleCollectors, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			t.Fatalf("-scale.collectors %q: want counts like 1,2,4", *scaleCollectors)
		}
		counts = append(counts, n)
	}
	ctx, cancel := runContext(t)
	defer cancel()
	root := t.TempDir()
	windrowBin, natsBin := buildBinaries(t, ctx, filepath.Join(root, "bin"))
	pin := 0
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Logf("taskset not found: the collectors run unpinned")
		pin = -1
	}
	type row struct {
		n       int
		took    time.Duration
		cpu     []float64
		perCPUs float64
	}
	var rows []row
	for _, n := range counts {
		r := newScaleRig(t, ctx, windrowBin, natsBin, filepath.Join(root, fmt.Sprintf("n%d", n)), *scaleEvents)
		var cols []*proc
		for i := range n {
			cpu := -1
			if pin == 0 {
				cpu = i % 2
			}
			cols = append(cols, r.role(t, "collector", fmt.Sprintf("collector-%d", i+1), cpu))
		}
		base := idleCPU(t, cols)
		t0 := time.Now()
		r.applyPolicy(t, ctx)
		if err := r.waitDrained(ctx, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		took := time.Since(t0)
		rw := row{n: n, took: took}
		var total float64
		for i, p := range cols {
			s, err := cpuSeconds(p)
			if err != nil {
				t.Fatal(err)
			}
			rw.cpu = append(rw.cpu, s-base[i])
			total += s - base[i]
		}
		rw.perCPUs = float64(*scaleEvents) / total
		lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
		ws, err := inspect.Windows(lctx, r.client.States, r.policy.Name)
		lcancel()
		if err != nil {
			t.Fatal(err)
		}
		var staged int64
		for _, w := range ws {
			staged += w.StagedRows
		}
		if staged != int64(*scaleEvents) {
			t.Errorf("%d collectors staged %d rows, want %d (each event once)", n, staged, *scaleEvents)
		}
		for _, p := range cols {
			if _, err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
				t.Error(err)
			}
		}
		for _, p := range r.nats.nodes {
			p.stopForGood(10 * time.Second)
		}
		rows = append(rows, rw)
		t.Logf("%d collector(s): %d events drained in %s = %.0f events/s; collector CPU %v s; %.0f events per collector CPU-second",
			n, *scaleEvents, took.Round(time.Millisecond), float64(*scaleEvents)/took.Seconds(), rw.cpu, rw.perCPUs)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "intake on a 3-node cluster (R3), %d events, collectors pinned to the 2 cores in turn:\n", *scaleEvents)
	fmt.Fprintf(&b, "%-10s %10s %12s %14s %22s %10s\n", "collectors", "drained in", "events/s", "collector CPU-s", "events per CPU-second", "vs 1")
	for _, rw := range rows {
		var cpu float64
		for _, c := range rw.cpu {
			cpu += c
		}
		fmt.Fprintf(&b, "%-10d %10s %12.0f %14.1f %22.0f %9.0f%%\n", rw.n, rw.took.Round(100*time.Millisecond), float64(*scaleEvents)/rw.took.Seconds(), cpu, rw.perCPUs, 100*rw.perCPUs/rows[0].perCPUs)
	}
	t.Log("\n" + b.String())
}

// TestClusterDrain fills the R3 source stream and runs one process of
// each role on the cluster (objects in a local directory, DuckDB), timed
// until every window is LOADED, as `windrow bench` does in one process;
// every event must be loaded once.
func TestClusterDrain(t *testing.T) {
	ctx, cancel := runContext(t)
	defer cancel()
	root := t.TempDir()
	windrowBin, natsBin := buildBinaries(t, ctx, filepath.Join(root, "bin"))
	r := newScaleRig(t, ctx, windrowBin, natsBin, filepath.Join(root, "drain"), *scaleEvents)
	wh := "--warehouse=" + filepath.Join(root, "drain", "warehouse.duckdb")
	var roles []*proc
	for _, role := range []string{"collector", "compactor", "loader"} {
		roles = append(roles, r.role(t, role, role+"-1", -1, wh))
	}
	idleCPU(t, roles)
	t0 := time.Now()
	r.applyPolicy(t, ctx)
	deadline := time.Now().Add(15 * time.Minute)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		ws, err := inspect.Windows(pctx, r.client.States, r.policy.Name)
		pcancel()
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			continue
		}
		loaded := 0
		var rows int64
		for _, w := range ws {
			if w.Status == messages.StatusFailed {
				t.Fatalf("window %s FAILED: %s", w.ID(), w.Error)
			}
			if w.Status == messages.StatusLoaded {
				loaded++
				rows += w.LoadedRows
			}
		}
		if loaded == *scaleWindows && len(ws) == *scaleWindows {
			took := time.Since(t0)
			if rows != int64(*scaleEvents) {
				t.Errorf("loaded %d rows, want %d", rows, *scaleEvents)
			}
			var cpu []string
			for _, p := range append(roles, r.nats.nodes...) {
				s, _ := cpuSeconds(p)
				cpu = append(cpu, fmt.Sprintf("%s %.1f", p.name, s))
			}
			t.Logf("drain on a 3-node cluster (R3), one process of each role: %d events, %d windows LOADED in %s = %.0f events/s (idle close wait %s included); CPU-s: %s",
				*scaleEvents, loaded, took.Round(time.Millisecond), float64(*scaleEvents)/took.Seconds(), r.policy.Window.IdleTimeout, strings.Join(cpu, ", "))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d windows LOADED after 15 minutes", loaded, *scaleWindows)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
