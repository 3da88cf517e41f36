//go:build chaos

package loadtest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/flush"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/services/loader"
	"github.com/windrow/windrow/windows"
)

// The fault-injection run. Run it with
//
//	go test -tags chaos -run TestChaos -timeout 20m -v ./loadtest/ -args -chaos.events=N -chaos.kills=K -chaos.seed=S
//
// (-v shows the report of a passing run; a failing run always shows it).
// The defaults, 500,000 events over 12 hourly windows published in 3
// minutes with 24 kills and 2 NATS restarts, take about 3.5 minutes on 2
// cores, builds not counted. The larger run of the acceptance:
//
//	go test -tags chaos -run TestChaos -timeout 30m -v ./loadtest/ -args -chaos.events=2000000 -chaos.kills=60 \
//		-chaos.nats-restarts=4 -chaos.publish-for=8m -chaos.settle=6m
//
// With -chaos.objects=s3 the roles keep their objects on a versitygw server
// the run starts (tools/s3/build.sh builds it), and with
// -chaos.warehouse=postgres they load into a private PostgreSQL server the
// run makes with initdb; the monkey restarts each of them
// -chaos.store-restarts times (a crash, then a graceful stop, in turn):
//
//	go test -tags chaos -run TestChaos -timeout 20m -v ./loadtest/ -args -chaos.objects=s3 -chaos.warehouse=postgres
//
// With -chaos.window=session the policy has session windows per store (gap
// 20m, panes of 1h) over many stores, and the run also holds the table's
// sessions against an independent cut of the accepted events
// (verifySessions).
var (
	chaosEvents   = flag.Int("chaos.events", 500_000, "events to publish, a share of them malformed or out of order")
	chaosWindows  = flag.Int("chaos.windows", 12, "hourly windows the events spread over")
	chaosKills    = flag.Int("chaos.kills", 24, "SIGKILLs of a windrow role, spread over the publishing")
	chaosTerms    = flag.Int("chaos.terms", 6, "graceful stops (SIGTERM) of a windrow role aimed at work in flight, besides the kills; each must exit 0")
	chaosRestarts = flag.Int("chaos.nats-restarts", 2, "restarts of the NATS server (SIGTERM, then SIGKILL, alternating)")
	chaosSeed     = flag.Uint64("chaos.seed", 1, "seed of the events and of the killer's schedule")
	chaosPublish  = flag.Duration("chaos.publish-for", 3*time.Minute, "how long publishing takes (the rate is events / this)")
	chaosSettle   = flag.Duration("chaos.settle", 4*time.Minute, "bound on the wait, after the last publish and kill, until every window is loaded")
	chaosLogLevel = flag.String("chaos.log-level", "warn", "log level of the windrow processes")
	chaosKeep     = flag.Bool("chaos.keep", false, "keep the run's directory (binaries, NATS store, objects, DuckDB file, logs)")
	chaosReportTo = flag.String("chaos.report", "", "also write the report to this file")
	chaosLoadMode = flag.String("chaos.load-mode", "append", "load mode of the policy: append (a transaction per batch) or replace (a transaction per window over all its batches)")
	chaosLate     = flag.String("chaos.late", "dlq", "the policy's late: dlq (events that come too late are dead-lettered), drop, or revise (late events for loaded windows are published in rounds and make revisions)")
	chaosLateFrac = flag.Float64("chaos.late-share", 0.05, "late events for windows already loaded (beyond max_out_of_order), as a share of -chaos.events, published on top of them while the killer works: dead-lettered as late (late: dlq), late-dropped (drop), or loaded in revisions (revise); 0: none; not with -chaos.window=session")
	chaosLateRnds = flag.Int("chaos.late-rounds", 6, "rounds of late events, spread over the publishing")
	chaosAhead    = flag.Int("chaos.ahead-every", 997, "every n-th event of the first policy comes from a producer whose clock runs a day ahead (0: none; tumbling windows only)")
	chaosWindow   = flag.String("chaos.window", "tumbling", "the policy's windows: tumbling (hourly) or session (per store, gap 20m, so panes of 1h; late must be dlq or drop)")
	chaosPolicies = flag.Int("chaos.policies", 2, "policies served at once by the same processes, the events split between them: 1 (chaos_sales) or 2 (also chaos_sales_30m, half-hour tumbling windows on subjects of its own, same late and load mode)")
)

const (
	chaosPolicyName    = "chaos_sales"
	chaosPolicy30mName = "chaos_sales_30m"
	chaosAckWait       = 15 * time.Second
	// chaosJitter moves each event's time back by up to this, so that about
	// half of the events arrive out of order; it stays below the policy's
	// max_out_of_order (2m), so none of them is late.
	chaosJitter = 90 * time.Second
	// chaosReviseAfter is the policy's revise_after with -chaos.late=revise:
	// short, so that a window is revised several times within the run.
	chaosReviseAfter = 2 * time.Second
	// chaosSessionGap is the gap of -chaos.window=session: panes of 1h.
	chaosSessionGap = 20 * time.Minute
	// chaosStorePause is, with -chaos.window=session, the mean pause
	// between two events of a store (the generator draws the store of each
	// event at random, so pauses are about exponential): about 8% of them
	// are a gap or longer, so a session holds about a dozen events, and
	// many cross a pane boundary, some several (30,000 events: 2,679
	// sessions, 638 of them over 3 panes or more, one over 9).
	chaosStorePause = 8 * time.Minute
)

// chaosPolicy: hourly windows, closed without allowed lateness; late events
// are dead-lettered (-chaos.late changes that); segments flush at 20,000
// rows or after 1s.
const chaosPolicy = `name: chaos_sales
source: {stream: CHAOS, subjects: [chaos.sales.>]}
` + SalesSchemaYAML + `window: {size: 1h, max_out_of_order: 2m, allowed_lateness: 0s, late: dlq, idle_timeout: 2s}
segment: {max_rows: 20000, max_age: 1s}
output: {sort_by: [store_id, sold_at]}
load: {table: chaos_sales}
`

// chaosPolicy30m is the second policy of the run (-chaos.policies=2):
// half-hour windows, on subjects of its own in the same stream, into a
// table of its own; -chaos.late and -chaos.load-mode apply to it too, and
// it stays tumbling with -chaos.window=session.
const chaosPolicy30m = `name: chaos_sales_30m
source: {stream: CHAOS, subjects: [chaos.sales_30m.>]}
` + SalesSchemaYAML + `window: {size: 30m, max_out_of_order: 2m, allowed_lateness: 0s, late: dlq, idle_timeout: 2s}
segment: {max_rows: 20000, max_age: 1s}
output: {sort_by: [store_id, sold_at]}
load: {table: chaos_sales_30m}
`

// chaosFlow is one policy of the run: its events (every n-th published
// event, n the number of policies), what its windows must hold, its late
// events, and their msg ids.
type chaosFlow struct {
	name    string
	yaml    string
	prefix  string // subject prefix of its events
	ids     string // msg id prefix (chaosExpect.ids); distinct per policy, as the policies share a stream
	genSeed uint64

	policy     *windows.Policy
	gen        Sales
	assign     *windows.Assigner
	want       *chaosExpect
	lateEvents int         // late events to publish for loaded windows
	late       *lateRounds // nil when lateEvents is 0
}

// chaosSessionWindow replaces chaosPolicy's window with -chaos.window=session.
const chaosSessionWindow = `window: {kind: session, gap: 20m, max_out_of_order: 2m, allowed_lateness: 0s, late: dlq, idle_timeout: 2s}
key: [store_id]
`

// TestChaos runs the collector, compactor and loader as separate processes
// of the real binary against a NATS server process, publishes a bounded
// stream of events while it SIGKILLs the roles and restarts the NATS server,
// then proves exactly once: per window, published = loaded + dead-lettered +
// late-dropped, no source sequence twice in the warehouse, none lost. It
// also publishes, in rounds, late events for windows already loaded
// (-chaos.late-share): with late: dlq each must be dead-lettered as late
// and never loaded, with drop counted as late-dropped, and with revise
// they make revisions of those windows and count in them.
func TestChaos(t *testing.T) {
	if *chaosEvents < 1 || *chaosWindows < 1 || *chaosKills < 0 || *chaosRestarts < 0 || *chaosPublish <= 0 {
		t.Fatalf("bad flags: -chaos.events %d -chaos.windows %d -chaos.kills %d -chaos.nats-restarts %d -chaos.publish-for %s",
			*chaosEvents, *chaosWindows, *chaosKills, *chaosRestarts, *chaosPublish)
	}
	if *chaosLoadMode != "append" && *chaosLoadMode != "replace" {
		t.Fatalf("-chaos.load-mode %q: want append or replace", *chaosLoadMode)
	}
	revise := *chaosLate == string(windows.LateRevise)
	if *chaosLate != string(windows.LateDLQ) && *chaosLate != string(windows.LateDrop) && !revise {
		t.Fatalf("-chaos.late %q: want dlq, drop or revise", *chaosLate)
	}
	session := *chaosWindow == string(windows.SessionWindows)
	if *chaosWindow != string(windows.Tumbling) && !session {
		t.Fatalf("-chaos.window %q: want tumbling or session", *chaosWindow)
	}
	if *chaosPolicies != 1 && *chaosPolicies != 2 {
		t.Fatalf("-chaos.policies %d: want 1 or 2", *chaosPolicies)
	}
	if session && revise {
		t.Fatalf("-chaos.window session with -chaos.late revise: session policies refuse late: revise")
	}
	checkStoreFlags(t)
	checkTopologyFlags(t)
	if *chaosLateFrac < 0 || *chaosLateFrac > 1 || (revise && *chaosLateFrac == 0) || *chaosLateRnds < 1 {
		t.Fatalf("bad flags: -chaos.late-share %g (want at least 0, above 0 with -chaos.late=revise, at most 1), -chaos.late-rounds %d (want at least 1)", *chaosLateFrac, *chaosLateRnds)
	}
	runStart := time.Now()
	ctx, cancel := runContext(t)
	defer cancel()
	seed := *chaosSeed
	t.Logf("chaos: seed %d, topology %s (%d process(es) of each role), %d events over %d hours split between %d policies, published in %s, %d kills, %d NATS restarts, load mode %s, late: %s with late events (%g of the events) in %d rounds, %s windows (replay with -chaos.seed=%d)",
		seed, *chaosTopology, roleInstances(), *chaosEvents, *chaosWindows, *chaosPolicies, *chaosPublish, *chaosKills, *chaosRestarts, *chaosLoadMode, *chaosLate, *chaosLateFrac, *chaosLateRnds, *chaosWindow, seed)

	root := t.TempDir()
	if *chaosKeep {
		var err error
		if root, err = os.MkdirTemp("", "windrow-chaos-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("run directory (kept): %s", root)
	}
	dirs := map[string]string{}
	for _, d := range []string{"bin", "nats", "data", "logs"} {
		dirs[d] = filepath.Join(root, d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	windrowBin, natsBin := buildBinaries(t, ctx, dirs["bin"])

	// Every child process is killed when the test ends, whatever happens;
	// a failing run shows the end of every log.
	var procs []*proc
	t.Cleanup(func() {
		for _, p := range procs {
			p.stopForGood(10 * time.Second)
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("---- last lines of %s (%s) ----\n%s", p.name, p.logPath, tailFile(p.logPath, 40))
			}
		}
	})
	superviseCtx, stopSupervising := context.WithCancel(ctx)
	defer stopSupervising()
	var supervisors sync.WaitGroup
	defer supervisors.Wait()
	defer stopSupervising()
	supervise := func(p *proc) {
		procs = append(procs, p)
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		supervisors.Add(1)
		go func() {
			defer supervisors.Done()
			p.supervise(superviseCtx)
		}()
	}

	// 1. The NATS server (or a cluster's nodes), separate processes with
	// their stores under the run directory.
	nts := startNATS(t, ctx, natsBin, root, supervise, *chaosTopology == "cluster", *chaosRestarts)
	natsURL := nts.URL()
	replicas := strconv.Itoa(natsReplicas())
	servers := []*server{nts.server}
	// The object store and the warehouse (with -chaos.objects=s3 and
	// -chaos.warehouse=postgres, servers the monkey restarts too).
	stores := startStores(t, ctx, root, supervise)
	stores.setEnv(t)
	servers = append(servers, stores.servers...)

	// 2. The policies, applied with the CLI; then the three roles.
	flows := []*chaosFlow{{name: chaosPolicyName, yaml: chaosPolicy, prefix: "chaos.sales", ids: fmt.Sprintf("chaos-%d-", seed), genSeed: seed}}
	if *chaosPolicies == 2 {
		flows = append(flows, &chaosFlow{name: chaosPolicy30mName, yaml: chaosPolicy30m, prefix: "chaos.sales_30m", ids: fmt.Sprintf("chaos-%d-30m-", seed), genSeed: seed ^ 0x30})
	}
	late := "late: " + *chaosLate
	if revise {
		late += ", revise_after: " + chaosReviseAfter.String()
	}
	for j, f := range flows {
		policyFile := filepath.Join(root, f.name+".yaml")
		policyYAML := strings.Replace(f.yaml, "load: {table: "+f.name+"}", "load: {table: "+f.name+", mode: "+*chaosLoadMode+"}", 1)
		if session && j == 0 {
			policyYAML = strings.Replace(policyYAML, "window: {size: 1h, max_out_of_order: 2m, allowed_lateness: 0s, late: dlq, idle_timeout: 2s}\n", chaosSessionWindow, 1)
		}
		policyYAML = strings.Replace(policyYAML, "late: dlq", late, 1)
		if err := os.WriteFile(policyFile, []byte(policyYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		actx, acancel := context.WithTimeout(ctx, time.Minute)
		out, err := exec.CommandContext(actx, windrowBin, "policy", "apply", "--nats-url", natsURL, "--nats-replicas", replicas,
			"--data-dir", filepath.Join(dirs["data"], "cli"), policyFile).CombinedOutput()
		acancel()
		if err != nil {
			t.Fatalf("windrow policy apply %s: %v\n%s", f.name, err, out)
		}
		t.Logf("windrow policy apply %s: %s", f.name, strings.TrimSpace(string(out)))
		if f.policy, err = windows.ParsePolicy(policyFile, []byte(policyYAML)); err != nil {
			t.Fatal(err)
		}
	}
	policy := flows[0].policy
	if session && (policy.Window.Gap.D() != chaosSessionGap || policy.Window.SessionPane().D() != time.Hour) {
		t.Fatalf("-chaos.window session: the policy has gap %s, panes of %s; want %s, 1h", policy.Window.Gap, policy.Window.SessionPane(), chaosSessionGap)
	}
	// Each role process reaches NATS through its own loopback proxy, which
	// lets the killer stop it right after a given publish (see natsProxy).
	// With one process of each role they share the data directory; a
	// cluster's role processes have one each.
	roles := map[string][]*proc{}
	var roleProcs []*proc
	proxies := map[string]*natsProxy{}
	for _, role := range []string{"collector", "compactor", "loader"} {
		for i := range roleInstances() {
			px, err := startProxy(nts.addrs...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(px.close)
			instance := fmt.Sprintf("%s-%d", role, i+1)
			name, dataDir := role, dirs["data"]
			if *chaosTopology == "cluster" {
				name, dataDir = instance, filepath.Join(dirs["data"], instance)
			}
			proxies[name] = px
			args := append([]string{role, "--nats-url", px.URL(), "--nats-replicas", replicas, "--data-dir", dataDir}, stores.roleArgs()...)
			p := newProc(name, windrowBin, filepath.Join(dirs["logs"], instance+".log"), append(args, "--instance", instance,
				"--ack-wait", chaosAckWait.String(), "--log-level", *chaosLogLevel, "--metrics-addr", "127.0.0.1:0")...)
			p.env = stores.env
			roles[role] = append(roles[role], p)
			roleProcs = append(roleProcs, p)
			supervise(p)
		}
	}

	// A client of the stack, for observing and for the reconciliation.
	client, err := stack.Open(ctx, stack.Config{DataDir: filepath.Join(dirs["data"], "client"), NATS: natsx.ClientConfig{URL: natsURL, Name: "chaos client"},
		Roles: []string{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()

	// 3. The events, split between the policies (event k goes to policy
	// k mod the number of policies), and what each window must hold.
	day := time.Date(2026, 9, 7, 0, 0, 0, 0, time.UTC)
	for j, f := range flows {
		f.gen = Sales{Seed: f.genSeed, Events: (*chaosEvents - j + len(flows) - 1) / len(flows), Start: day, Span: time.Duration(*chaosWindows) * time.Hour,
			Jitter: chaosJitter, MalformedEvery: 1000, SubjectPrefix: f.prefix}
		spec := f.policy.Window
		if j == 0 && session {
			// Many stores, so that a store pauses for a gap or more now and then.
			f.gen.Stores = max(1, int(int64(f.gen.Events)*int64(chaosStorePause)/int64(f.gen.Span)))
			spec = f.policy.Window.PaneSpec() // events are staged into panes
		} else if j == 0 {
			f.gen.AheadEvery, f.gen.Ahead = *chaosAhead, 24*time.Hour
		}
		var err error
		if f.assign, err = windows.NewAssigner(spec); err != nil {
			t.Fatal(err)
		}
		f.want = expectEvents(f.gen, f.assign)
		f.want.ids = f.ids
		if *chaosLateFrac > 0 && f.policy.Window.Kind != windows.SessionWindows {
			f.lateEvents = max(*chaosLateRnds, int(float64(f.gen.Events)**chaosLateFrac))
		}
		t.Logf("generated for %s: %d events, %d malformed, %d windows of %s; %d late events to come", f.name, f.gen.Events, f.want.malformed, len(f.want.windows), f.policy.Window.Kind, f.lateEvents)
	}
	if session {
		t.Logf("session windows: %d stores, gap %s, panes of %s", flows[0].gen.Stores, chaosSessionGap, policy.Window.SessionPane())
	}

	pubConn, err := nats.Connect(natsURL, nats.Name("chaos publisher"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectBufSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer pubConn.Close()
	pubJS, err := jetstream.New(pubConn, jetstream.WithPublishAsyncTimeout(5*time.Second), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	obsConn, err := nats.Connect(natsURL, nats.Name("chaos killer"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer obsConn.Close()

	// 4. Publish at a steady rate while the killer works.
	pub := &steadyPublisher{js: pubJS, rate: float64(*chaosEvents) / chaosPublish.Seconds(), inflight: 256, retryFor: 90 * time.Second}
	mk := &monkey{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), roles: roles, proxies: proxies, servers: servers, nc: obsConn,
		states: client.States, commitProbe: stores.commitProbe(), policy: chaosPolicyName, stream: policy.Source.Stream, start: time.Now(), span: *chaosPublish, kills: *chaosKills, terms: *chaosTerms}
	pubDone := make(chan struct{})
	mk.published = pubDone
	chaosCtx, stopChaos := context.WithCancel(ctx)
	defer stopChaos()
	var pubErr, chaosErr error
	lateErrs := make([]error, len(flows))
	var published time.Duration
	var wg sync.WaitGroup
	for j, f := range flows {
		if f.lateEvents == 0 {
			continue
		}
		// Late events for loaded windows, in rounds over the publishing.
		f.late = &lateRounds{js: pubJS, states: client.States, policy: f.name, subject: f.prefix,
			rng: rand.New(rand.NewPCG(seed^uint64(j), seed^0x1a7e)), seed: seed, ids: f.ids, first: f.gen.Events, events: f.lateEvents, rounds: *chaosLateRnds,
			start: mk.start, span: *chaosPublish, burst: time.Second, waitLoad: 2 * time.Minute}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lateErrs[j] = f.late.run(chaosCtx, func(format string, args ...any) { t.Logf(f.name+": "+format, args...) })
			if lateErrs[j] != nil {
				stopChaos()
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		next := make([]func() (Event, bool), len(flows))
		for j, f := range flows {
			var stop func()
			next[j], stop = iter.Pull(f.gen.All())
			defer stop()
		}
		t0 := time.Now()
		pubErr = pub.run(chaosCtx, *chaosEvents, func(k int) *nats.Msg {
			j := k % len(flows)
			e, _ := next[j]()
			m := nats.NewMsg(e.Subject)
			m.Data = e.Data
			m.Header.Set(jetstream.MsgIDHeader, flows[j].want.msgID(k/len(flows)))
			return m
		})
		published = time.Since(t0)
		close(pubDone)
		if pubErr != nil {
			stopChaos()
		}
	}()
	go func() {
		defer wg.Done()
		chaosErr = mk.run(chaosCtx, t.Logf)
		if chaosErr != nil {
			stopChaos()
		}
	}()
	wg.Wait()
	if pubErr != nil {
		t.Fatalf("publisher: %v", pubErr)
	}
	if chaosErr != nil {
		t.Fatalf("killer: %v", chaosErr)
	}
	lateTotal := 0
	for j, f := range flows {
		if lateErrs[j] != nil {
			t.Fatalf("%s: late events: %v", f.name, lateErrs[j])
		}
		if f.late != nil {
			f.want.addLate(f.late.times, f.late.qty, f.assign)
			lateTotal += f.want.late
			t.Logf("%s: published %d late events for loaded windows in %d rounds (%d publishes retried)", f.name, len(f.late.times), len(f.late.log), f.late.retries)
		}
	}
	t.Logf("published %d events in %s (%d publishes retried); %d chaos actions done at %s",
		*chaosEvents, published.Round(time.Second), pub.retries.Load(), len(mk.records), time.Since(mk.start).Round(time.Second))

	// The producers are done: declare every policy's input complete, so
	// that the last windows close once everything is staged (the idle rule
	// alone would take the elapsed time a live window takes).
	names := make([]string, len(flows))
	for j, f := range flows {
		names[j] = f.name
	}
	flushBy := time.Now().Add(time.Minute)
	for {
		err := flush.Request(ctx, client.Watermarks, time.Now(), "chaos", names...)
		if err == nil {
			break
		}
		if time.Now().After(flushBy) {
			t.Fatalf("flush: %v", err)
		}
		time.Sleep(time.Second)
	}

	// 5. Everything must settle by itself: every role running again, every
	// window of every policy LOADED, the collectors' consumers drained.
	settleStart := time.Now()
	for _, p := range procs {
		if !p.waitRunning(time.Minute) {
			t.Fatalf("%s is not running a minute after the chaos ended", p.name)
		}
	}
	for _, f := range flows {
		if err := waitSettled(ctx, client, f.policy, f.want.windows, *chaosSettle-time.Since(settleStart)); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
	}
	t.Logf("settled %s after the chaos ended", time.Since(settleStart).Round(100*time.Millisecond))

	// Stop the roles gracefully: the loader must let go of the DuckDB file.
	// A life younger than a few seconds may not have installed its signal
	// handler yet (SIGTERM would just end it), so let each grow that old.
	for _, p := range roleProcs {
		if age := p.age(); age < 3*time.Second {
			time.Sleep(3*time.Second - age)
		}
	}
	for _, p := range roleProcs {
		status, err := p.stop(syscall.SIGTERM, 45*time.Second)
		if err != nil {
			t.Errorf("graceful stop: %v", err)
		} else if status != "exit status 0" {
			t.Errorf("%s exited with %q after SIGTERM, want exit status 0", p.name, status)
		}
	}
	for _, p := range procs {
		if _, _, _, crashes := p.stats(); len(crashes) > 0 {
			for _, c := range crashes {
				t.Errorf("%s crashed: %s", p.name, c)
			}
		}
	}

	// 6. Reconcile each policy on its own: windrow's own reconciliation,
	// then an independent one from the generated events, the source
	// stream (the policy's subjects), its DLQ and its table.
	wh, err := stores.openWarehouse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	rep := &chaosReport{seed: seed, events: *chaosEvents + lateTotal, monkey: mk, procs: procs, roles: roles, stores: stores.String()}
	duplicateOf := map[string]bool{}
	for _, f := range flows {
		pr := &chaosPolicyReport{policy: f.policy, events: len(f.want.win), late: f.late}
		rep.policies = append(rep.policies, pr)
		var problems []string
		rec, err := inspect.Reconcile(ctx, client.JS, client.States, f.policy, wh)
		if err != nil {
			t.Fatalf("%s: reconcile: %v", f.name, err)
		}
		pr.reconcile = rec
		v, err := verifyChaos(ctx, client.JS, wh, f.policy, f.want)
		if err != nil {
			t.Fatalf("%s: verify: %v", f.name, err)
		}
		pr.verify = v
		for id := range v.duplicateOf {
			duplicateOf[id] = true
		}
		problems = append(problems, v.problems...)
		problems = append(problems, crossCheck(rec, v, len(f.want.win))...)
		if f.policy.Window.Kind == windows.SessionWindows {
			sess, err := verifySessions(ctx, wh, f.policy, f.gen, f.assign, v, rec)
			if err != nil {
				t.Fatalf("%s: verify sessions: %v", f.name, err)
			}
			pr.sessions = sess
			problems = append(problems, sess.problems...)
		}
		if revise {
			// Revisions must have happened, and some window must have been
			// revised again after a revision (the protocol's harder half).
			maxRev := 0
			for _, row := range v.rows {
				maxRev = max(maxRev, row.revision)
			}
			if maxRev < 2 {
				problems = append(problems, fmt.Sprintf("late: revise: the highest revision of a window is %d, want at least 2", maxRev))
			}
		}
		for _, p := range problems {
			rep.problems = append(rep.problems, f.name+": "+p)
		}
	}
	if stores.objects == "" {
		fileProblems, nParquet, nManifests, nTemps := checkFiles(dirs["data"])
		rep.problems = append(rep.problems, fileProblems...)
		t.Logf("files read back under their final names: %d Parquet, %d manifests, all complete unless listed as problems; %d temporary files left by kills", nParquet, nManifests, nTemps)
	} else {
		objects, err := stack.OpenObjects(ctx, stores.objects)
		if err != nil {
			t.Fatalf("object store: %v", err)
		}
		objProblems, nParquet, nManifests := checkObjects(ctx, objects)
		rep.problems = append(rep.problems, objProblems...)
		t.Logf("objects read back under their final names: %d Parquet, %d manifests, all complete unless listed as problems", nParquet, nManifests)
	}
	kills := 0
	for _, p := range roleProcs {
		_, k, _, _ := p.stats()
		kills += k
	}
	if kills < *chaosKills {
		rep.problems = append(rep.problems, fmt.Sprintf("%d role kills, want at least %d", kills, *chaosKills))
	}
	// A kill after a commit's load result, before the command's ack, must
	// have made the command come back and the ledger call it a duplicate.
	for _, k := range mk.records {
		if k.batchID != "" && !duplicateOf[k.batchID] {
			rep.problems = append(rep.problems, fmt.Sprintf("kill %d landed after batch %s committed and before its command was acked, yet no load result says \"duplicate\" for it", k.n, k.batchID))
		}
	}
	for _, sv := range servers {
		if restarted := sv.lives() - len(sv.nodes); restarted < sv.restarts {
			rep.problems = append(rep.problems, fmt.Sprintf("the %s server was restarted %d times, want %d", sv.name, restarted, sv.restarts))
		}
	}
	rep.duration = time.Since(runStart)
	text := rep.String()
	t.Log("\n" + text)
	if *chaosReportTo != "" {
		if err := os.WriteFile(*chaosReportTo, []byte(text), 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
	for i, p := range rep.problems {
		if i == 50 {
			t.Errorf("... and %d more problems", len(rep.problems)-50)
			break
		}
		t.Error(p)
	}
	if len(rep.problems) > 0 {
		t.Fatalf("exactly once does not hold: %d problems (replay with -chaos.seed=%d)", len(rep.problems), seed)
	}
}

// runContext is a run's context: it ends a minute before go test's own
// timeout, which leaves time to report and clean up.
func runContext(t *testing.T) (context.Context, context.CancelFunc) {
	if dl, ok := t.Deadline(); ok {
		return context.WithDeadline(context.Background(), dl.Add(-time.Minute))
	}
	return context.WithCancel(context.Background())
}

// waitSettled waits until the policy has the windows want (tumbling:
// exactly those), all LOADED with no late rows waiting for a next revision
// (late: revise), and the consumers of the collectors, the loader and the load results have nothing
// pending or unacked (a load command whose ack a kill prevented comes back
// after the ack wait: that redelivery is part of settling). With session
// windows the panes of want must be there, and more may be: a pane that
// carried sessions opens the next one, which may have no event of its own;
// so every pane must be LOADED and no COMPACTED or LOADED pane may have
// carried rows into a next pane that is not LOADED. A FAILED window ends
// the wait at once.
func waitSettled(ctx context.Context, s *stack.Stack, p *windows.Policy, want []string, timeout time.Duration) error {
	session := p.Window.Kind == windows.SessionWindows
	n := len(want)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	consumers := []struct{ what, stream, name string }{
		{"collectors", p.Source.Stream, messages.CollectorConsumer(p.Name)},
		{"loader", messages.StreamLoad, loader.DurablePrefix},
		{"load results", messages.StreamResults, messages.ResultsConsumer(p.Name)},
	}
	var last string
	for {
		var b strings.Builder
		settled := true
		// Each poll has its own timeout: on a cluster a JetStream request
		// lost in a leader change is never answered, and would take the
		// whole settle bound.
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		ws, err := inspect.Windows(pctx, s.States, p.Name)
		pcancel()
		if err != nil {
			settled = false
			fmt.Fprintf(&b, "\n  windows: %v", err)
		}
		loaded := 0
		status := map[string]messages.WindowStatus{}
		for _, w := range ws {
			status[w.ID()] = w.Status
		}
		for _, w := range ws {
			if w.Status == messages.StatusFailed {
				return fmt.Errorf("window %s FAILED: %s", w.ID(), w.Error)
			}
			if w.Status == messages.StatusLoaded && w.Next == nil {
				loaded++ // and no late rows wait for its next revision (late: revise)
			}
			fmt.Fprintf(&b, "\n  %s %-9s r%d segments %d staged %d rows %d loaded %d", w.ID(), w.Status, w.Revision, w.Segments, w.StagedRows, w.Rows, w.LoadedRows)
			if session {
				fmt.Fprintf(&b, " carried in %d out %d", w.BaseRows, w.CarryRows)
				next := messages.WindowID(w.WindowEnd)
				if w.CarryRows > 0 && (w.Status == messages.StatusCompacted || w.Status == messages.StatusLoaded) && status[next] != messages.StatusLoaded {
					settled = false
					fmt.Fprintf(&b, " (into pane %s, which is %q)", next, status[next])
				}
			}
			if w.Next != nil {
				fmt.Fprintf(&b, " next revision: %d segments, %d rows, first staged %s", w.Next.Segments, w.Next.StagedRows, w.Next.FirstStagedAt.Format(time.RFC3339Nano))
			}
		}
		switch {
		case session:
			for _, id := range want {
				if _, ok := status[id]; !ok {
					settled = false
					fmt.Fprintf(&b, "\n  pane %s: no state yet", id)
				}
			}
			if loaded != len(ws) {
				settled = false
			}
		case len(ws) != n || loaded != n:
			settled = false
		}
		for _, c := range consumers {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			info, err := consumerInfo(pctx, s, c.stream, c.name)
			pcancel()
			if err != nil {
				settled = false
				fmt.Fprintf(&b, "\n  %s' consumer %s: %v", c.what, c.name, err)
				continue
			}
			fmt.Fprintf(&b, "\n  %s' consumer %s: %d pending, %d unacked, ack floor %d", c.what, c.name, info.NumPending, info.NumAckPending, info.AckFloor.Stream)
			if info.NumPending != 0 || info.NumAckPending != 0 {
				settled = false
			}
		}
		last = b.String()
		if settled {
			return nil
		}
		select {
		case <-ctx.Done():
			if session {
				return fmt.Errorf("not settled within %s (want the %d panes with events and every pane a carry opened LOADED, and every consumer drained); last seen:%s", timeout, n, last)
			}
			return fmt.Errorf("not settled within %s (want %d windows LOADED and every consumer drained); last seen:%s", timeout, n, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func consumerInfo(ctx context.Context, s *stack.Stack, stream, name string) (*jetstream.ConsumerInfo, error) {
	c, err := s.JS.Consumer(ctx, stream, name)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}
