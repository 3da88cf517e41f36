//go:build chaos

package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
)

// killMode says when a kill lands. Crash points are exact: the role's NATS
// proxy lets the named publish through, drops everything after it, and the
// role is killed (see natsProxy). Other modes are timed: a delay after work
// the killer saw start (on core subscriptions, as the roles publish), or a
// random moment.
type killMode struct {
	name string
	doc  string
	// point, if set, is the crash point: the role dies right after this publish.
	point func(m *monkey) crashPoint
	// state, if set: kill 0-300ms after a window reaches this state.
	state messages.WindowStatus
	// commit: kill 0-2ms after the warehouse is seen committing a load
	// (DuckDB's write-ahead log grows; PostgreSQL runs a COPY).
	commit bool
	// term: a graceful stop (SIGTERM) instead of SIGKILL. The role must
	// finish or hand back its work in flight and exit with status 0 within
	// termGrace.
	term bool
}

var (
	modeRandom = killMode{name: "random", doc: "at the scheduled moment, whatever the role is doing"}

	modeAfterRegistration = killMode{name: "after-register", doc: "right after publishing a segment registration: the segment is written and registered, the window state not updated, nothing acked",
		point: func(m *monkey) crashPoint {
			prefix := messages.SegmentFilter(m.policy)
			prefix = prefix[:len(prefix)-1]
			return func(subject string, _ []byte) (string, bool) {
				return "window " + lastToken(subject), strings.HasPrefix(subject, prefix)
			}
		}}
	modeAfterStateUpdate = killMode{name: "after-state", doc: "right after a window state update: the segment is registered and counted, nothing acked",
		point: func(m *monkey) crashPoint {
			return kvPoint(m.policy, func(st *messages.WindowState) bool { return st.Status == messages.StatusOpen })
		}}
	modeMidAcks = killMode{name: "mid-acks", doc: "after the n-th ack (n random up to 3000): a flush acked in part",
		point: func(m *monkey) crashPoint {
			// v1 ack subjects, $JS.ACK.<stream>.<consumer>.…, or v2 with domain and account first.
			infix := "." + m.stream + "." + messages.CollectorConsumer(m.policy) + "."
			n := 1 + m.rng.IntN(3000)
			seen := 0
			return func(subject string, _ []byte) (string, bool) {
				if !strings.HasPrefix(subject, "$JS.ACK.") || !strings.Contains(subject, infix) {
					return "", false
				}
				seen++
				return fmt.Sprintf("after ack %d", n), seen == n
			}
		}}

	modeAfterSeal = killMode{name: "after-seal", doc: "right after writing a SEALED window state (a seal, claim or lease renewal): nothing compacted or not all",
		point: func(m *monkey) crashPoint {
			return kvPoint(m.policy, func(st *messages.WindowState) bool { return st.Status == messages.StatusSealed })
		}}
	modeWhileCompacting = killMode{name: "compacting", doc: "0-300ms after a window became SEALED, while it is compacted", state: messages.StatusSealed}
	modeAfterCompacted  = killMode{name: "after-compact", doc: "right after writing COMPACTED: batches and manifest written, no load command published",
		point: func(m *monkey) crashPoint {
			return kvPoint(m.policy, func(st *messages.WindowState) bool { return st.Status == messages.StatusCompacted })
		}}

	modeAfterCommit = killMode{name: "after-commit", doc: "right after publishing a load result: the warehouse transaction committed, the command not acked",
		point: func(m *monkey) crashPoint {
			subject := messages.ResultSubject(m.policy)
			return func(subj string, body []byte) (string, bool) {
				if subj != subject {
					return "", false
				}
				var res messages.LoadResult
				_ = json.Unmarshal(body, &res)
				return "batch " + res.BatchID + " " + string(res.Status), true
			}
		}}
	modeAtCommit     = killMode{name: "at-commit", doc: "0-2ms after the warehouse was seen writing a load (DuckDB: its write-ahead log grew; PostgreSQL: a COPY ran): during or right before the commit", commit: true}
	modeWhileLoading = killMode{name: "loading", doc: "0-300ms after a window became COMPACTED, while its batches load", state: messages.StatusCompacted}
)

// Graceful stops, aimed at work in flight like the kills.
var (
	termCollecting = killMode{name: "sigterm-flush", doc: "SIGTERM 0-300ms after a segment was registered: batches in flight are staged and acked, the rest handed back", state: messages.StatusOpen, term: true}
	termCompacting = killMode{name: "sigterm-compact", doc: "SIGTERM 0-300ms after a window became SEALED: compaction finishes or is left to the lease", state: messages.StatusSealed, term: true}
	termLoading    = killMode{name: "sigterm-load", doc: "SIGTERM 0-300ms after a window became COMPACTED: the load in flight finishes and is acked", state: messages.StatusCompacted, term: true}
)

// termGrace bounds a graceful stop.
const termGrace = 45 * time.Second

// roleTermModes: each role's graceful stops.
var roleTermModes = map[string]killMode{"collector": termCollecting, "compactor": termCompacting, "loader": termLoading}

// roleModes: each role's kills go through its modes in turn.
var roleModes = map[string][]killMode{
	"collector": {modeAfterRegistration, modeAfterStateUpdate, modeMidAcks, modeRandom},
	"compactor": {modeAfterSeal, modeWhileCompacting, modeAfterCompacted, modeRandom},
	"loader":    {modeAfterCommit, modeAtCommit, modeWhileLoading, modeRandom},
}

// server is a process the run stops and starts again on purpose, on the
// same directory and port: the NATS server, and with -chaos.objects=s3 and
// -chaos.warehouse=postgres the S3 server and PostgreSQL.
type server struct {
	name string
	proc *proc // nil for a cluster: pick chooses the node
	// nodes are the processes of the server (one, or a cluster's nodes).
	nodes    []*proc
	restarts int
	// modes are used in turn, the first for the first restart.
	modes []serverStop
	// ready returns nil once the server answers again.
	ready     func(ctx context.Context) error
	readyNote string
	// pick, if set, chooses the node the k-th restart stops (proc and
	// ready are then unused), says how to tell it is back, and notes why.
	pick func(ctx context.Context, m *monkey, k int) (node *proc, ready func(ctx context.Context) error, note string)
}

// lives is how many times the server's processes were started, in all.
func (sv *server) lives() int {
	n := 0
	for _, p := range sv.nodes {
		lives, _, _, _ := p.stats()
		n += lives
	}
	return n
}

// serverStop is a way to stop a server: its mode's name and signal.
type serverStop struct {
	name string
	sig  syscall.Signal
}

var (
	natsStops = []serverStop{{"nats-sigterm", syscall.SIGTERM}, {"nats-sigkill", syscall.SIGKILL}}
	// The S3 server's restarts: a crash first.
	s3Stops = []serverStop{{"s3-sigkill", syscall.SIGKILL}, {"s3-sigterm", syscall.SIGTERM}}
	// PostgreSQL's: immediate shutdown first (SIGQUIT: every backend ends
	// at once, crash recovery at the next start), then fast shutdown
	// (SIGINT: transactions in flight roll back).
	pgStops = []serverStop{{"pg-sigquit", syscall.SIGQUIT}, {"pg-sigint", syscall.SIGINT}}
)

// kvPoint is the crash point of a window state write the role makes.
func kvPoint(policy string, match func(*messages.WindowState) bool) crashPoint {
	prefix := "$KV." + messages.BucketWindows + "." + policy + "."
	return func(subject string, body []byte) (string, bool) {
		if !strings.HasPrefix(subject, prefix) {
			return "", false
		}
		var st messages.WindowState
		if json.Unmarshal(body, &st) != nil || !match(&st) {
			return "", false
		}
		return "window " + st.ID() + " " + string(st.Status), true
	}
}

// killRecord is one action of the killer.
type killRecord struct {
	n       int
	at      time.Duration // since the start of the run
	target  string        // the process: a role's instance, or a server's node
	role    string        // the role, for a kill or graceful stop
	server  string        // the server, for a restart
	mode    string
	waited  time.Duration // for the trigger
	delay   time.Duration // from the trigger to the signal
	down    time.Duration // until the restart
	aimed   bool          // the kill landed where its mode aims
	note    string
	batchID string // after-commit: the batch whose command was not acked
}

// monkey kills roles and restarts the NATS server on a seeded schedule.
type monkey struct {
	rng *rand.Rand
	// roles are each role's processes; a kill picks one of them.
	roles map[string][]*proc
	// proxies are the processes' NATS proxies, by process name.
	proxies map[string]*natsProxy
	servers []*server  // restarted on purpose; the NATS server first
	nc      *nats.Conn // observes the roles' work; reconnects across NATS restarts
	states  *statestore.Store
	// commitProbe waits (up to the trigger wait) until the warehouse is
	// seen committing a load, and says what it saw.
	commitProbe func(ctx context.Context, limit <-chan time.Time) (string, bool)
	policy      string
	stream      string // the policy's source stream
	start       time.Time
	span        time.Duration // the schedule spreads over this
	kills       int
	terms       int             // graceful stops (SIGTERM), besides the kills
	published   <-chan struct{} // closed when the publisher is done

	records []killRecord
}

type action struct {
	target string
	mode   killMode
	server *server
	stop   serverStop
	k      int // the server's k-th restart
}

// plan draws the schedule: every role gets a fair share of the kills, in a
// random order, each role's modes in turn from a random first one; the NATS
// restarts of each server are spread over the run, its stop modes in turn.
func (m *monkey) plan() []action {
	names := []string{"collector", "compactor", "loader"}
	var roles []string
	for i := 0; i < m.kills; i++ {
		roles = append(roles, names[i%len(names)])
	}
	m.rng.Shuffle(len(roles), func(i, j int) { roles[i], roles[j] = roles[j], roles[i] })
	next := map[string]int{}
	for _, r := range names {
		next[r] = m.rng.IntN(len(roleModes[r]))
	}
	var out []action
	for _, r := range roles {
		modes := roleModes[r]
		out = append(out, action{target: r, mode: modes[next[r]%len(modes)]})
		next[r]++
	}
	// Graceful stops: the roles in turn, each at a random place.
	for i := 0; i < m.terms; i++ {
		r := names[i%len(names)]
		at := m.rng.IntN(len(out) + 1)
		out = append(out[:at], append([]action{{target: r, mode: roleTermModes[r]}}, out[at:]...)...)
	}
	// Server restarts are spread over the run, each server's restarts
	// evenly, the servers offset from each other (with one restart each,
	// NATS at 1/4, then S3 at 2/4 and PostgreSQL at 3/4).
	total := len(out)
	for si, sv := range m.servers {
		for k := 0; k < sv.restarts; k++ {
			f := (float64(k) + float64(si+1)/float64(len(m.servers)+1)) / float64(sv.restarts)
			at := min(int(f*float64(total+1)), len(out))
			a := action{target: sv.name, server: sv, stop: sv.modes[k%len(sv.modes)], k: k}
			out = append(out[:at], append([]action{a}, out[at:]...)...)
		}
	}
	return out
}

// run carries the schedule out; it returns when every action is done or
// ctx ends.
func (m *monkey) run(ctx context.Context, logf func(format string, args ...any)) error {
	actions := m.plan()
	slot := m.span / time.Duration(len(actions)+1)
	for n, a := range actions {
		// Each action at a random moment of its slot (later if the one
		// before waited long for its trigger).
		at := m.start.Add(slot*time.Duration(n) + time.Duration(m.rng.Int64N(int64(slot))))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(at)):
		}
		var rec killRecord
		var err error
		if a.server != nil {
			rec, err = m.restartServer(ctx, a.server, a.stop, a.k)
		} else {
			rec, err = m.kill(ctx, a.target, a.mode)
		}
		rec.n = n + 1
		m.records = append(m.records, rec)
		logf("chaos %2d at %7s: %-11s %-14s waited %6s delay %6s down %6s %s", rec.n, rec.at.Round(100*time.Millisecond), rec.target, rec.mode,
			rec.waited.Round(time.Millisecond), rec.delay.Round(100*time.Microsecond), rec.down.Round(time.Millisecond), rec.note)
		if err != nil {
			return err
		}
	}
	return nil
}

// triggerWait bounds the wait for the work a kill aims at (10s once
// everything is published); then the kill happens anyway, at that moment.
const triggerWait = 30 * time.Second

// waitLimit is a timer for triggerWait that shortens once publishing ended.
func (m *monkey) waitLimit() (<-chan time.Time, func()) {
	t := time.NewTimer(triggerWait)
	done := make(chan struct{})
	go func() {
		select {
		case <-m.published:
			t.Reset(min(triggerWait, 10*time.Second))
		case <-done:
		}
	}()
	return t.C, func() { close(done); t.Stop() }
}

// kill SIGKILLs a role where mode aims, and lets its supervisor restart it
// after a short random delay.
func (m *monkey) kill(ctx context.Context, role string, mode killMode) (killRecord, error) {
	procs := m.roles[role]
	p := procs[0]
	if len(procs) > 1 {
		p = procs[m.rng.IntN(len(procs))]
	}
	rec := killRecord{target: p.name, role: role, mode: mode.name, aimed: true}
	var held []*proc // instances whose proxies fired besides the one killed
	if !p.waitRunning(30 * time.Second) {
		return rec, fmt.Errorf("%s is not running 30s after its last restart", p.name)
	}
	rec.down = 100*time.Millisecond + time.Duration(m.rng.Int64N(int64(1900*time.Millisecond)))
	t0 := time.Now()
	var window string
	switch {
	case mode.point != nil:
		// Every instance of the role is armed: the one that reaches the
		// crash point first is the one that dies.
		var winner *proc
		var err error
		winner, rec.note, rec.aimed, held, err = m.armAll(ctx, procs, mode)
		if err != nil {
			return rec, err
		}
		if winner != nil {
			p, rec.target = winner, winner.name
		}
		if mode.name == modeAfterCommit.name && rec.aimed {
			rec.batchID = strings.Fields(rec.note)[1]
		}
	case mode.state != "":
		rec.delay = time.Duration(m.rng.Int64N(int64(300 * time.Millisecond)))
		window, rec.aimed = m.awaitState(ctx, mode.state)
	case mode.commit:
		rec.delay = time.Duration(m.rng.Int64N(int64(2 * time.Millisecond)))
		limit, stop := m.waitLimit()
		rec.note, rec.aimed = m.commitProbe(ctx, limit)
		stop()
	}
	rec.waited = time.Since(t0)
	if !rec.aimed {
		rec.note = fmt.Sprintf("no trigger within %s: killed at that moment", rec.waited.Round(time.Second))
		rec.delay = 0
	}
	if rec.delay > 0 {
		time.Sleep(rec.delay)
	}
	rec.at = time.Since(m.start)
	if mode.term {
		// A life younger than a few seconds may not have installed its
		// signal handler yet (SIGTERM would just end it).
		if age := p.age(); age < 3*time.Second {
			time.Sleep(3*time.Second - age)
		}
		t1 := time.Now()
		k, err := p.signal(syscall.SIGTERM, rec.down)
		if err != nil {
			return rec, err
		}
		if err := k.waitFor(termGrace); err != nil {
			return rec, fmt.Errorf("graceful stop of %s (%s): %w", p.name, mode.name, err)
		}
		status := p.exitStatus() // of the life that just ended: the next has not ended yet
		rec.note = strings.TrimSpace(rec.note + fmt.Sprintf(" exited %q %s after SIGTERM", status, time.Since(t1).Round(time.Millisecond)))
		if status != "exit status 0" {
			return rec, fmt.Errorf("%s exited with %q after SIGTERM (%s), want exit status 0", p.name, status, mode.name)
		}
		if mode.state != "" && rec.aimed {
			rec.note = "window " + window + " " + m.status(ctx, window) + "; " + rec.note
		}
		return rec, nil
	}
	if err := p.kill(syscall.SIGKILL, rec.down); err != nil {
		return rec, err
	}
	for _, q := range held {
		// It reached the crash point too, just after the winner: its proxy
		// holds everything it sends, so it dies as well.
		if err := q.kill(syscall.SIGKILL, rec.down); err != nil {
			return rec, err
		}
		rec.note += "; " + q.name + " reached it too and was killed as well"
	}
	if mode.state != "" && rec.aimed {
		rec.note = "window " + window + " " + m.status(ctx, window) + " after the kill"
	}
	return rec, nil
}

// armAll arms the crash point of mode on the proxy of every process of a
// role and waits (up to the trigger wait) until one fires. It returns that
// process (nil if none fired: the kill then lands at that moment on a
// process picked at random), the note, whether it was aimed, and any other
// process whose proxy fired meanwhile: its proxy now holds all it sends, so
// it must be killed too.
func (m *monkey) armAll(ctx context.Context, procs []*proc, mode killMode) (winner *proc, note string, aimed bool, held []*proc, err error) {
	fired := make([]<-chan string, len(procs))
	notes := make([]string, len(procs)) // each written by its watcher, read after wg.Wait
	first := make(chan struct{}, len(procs))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, q := range procs {
		fired[i] = m.proxies[q.name].arm(mode.point(m))
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case n := <-fired[i]:
				notes[i] = n
				first <- struct{}{}
			case <-done:
			}
		}()
	}
	limit, stop := m.waitLimit()
	select {
	case <-first:
	case <-limit:
	case <-ctx.Done():
		err = ctx.Err()
	}
	stop()
	// Disarm every proxy; those that fired report it (a proxy fires once).
	var hit []int
	for i, q := range procs {
		if m.proxies[q.name].disarm() {
			hit = append(hit, i)
		}
	}
	close(done)
	wg.Wait()
	for _, i := range hit {
		if notes[i] == "" {
			notes[i] = <-fired[i] // fired after its watcher saw done
		}
	}
	if len(hit) == 0 {
		return nil, "", false, nil, err
	}
	// The first to fire wins; with several, the one whose note came first
	// cannot be told apart from here, so take the first in order.
	for _, i := range hit[1:] {
		held = append(held, procs[i])
	}
	return procs[hit[0]], notes[hit[0]], err == nil, held, err
}

// awaitState waits for a window state write with the given status and
// returns its window id; false after triggerWait.
func (m *monkey) awaitState(ctx context.Context, want messages.WindowStatus) (string, bool) {
	ch := make(chan *nats.Msg, 4096)
	sub, err := m.nc.ChanSubscribe("$KV."+messages.BucketWindows+"."+messages.WindowKeyFilter(m.policy), ch)
	if err != nil {
		return "", false
	}
	defer sub.Unsubscribe()
	limit, stop := m.waitLimit()
	defer stop()
	for {
		select {
		case msg := <-ch:
			var st messages.WindowState
			if json.Unmarshal(msg.Data, &st) == nil && st.Status == want {
				return st.ID(), true
			}
		case <-limit:
			return "", false
		case <-ctx.Done():
			return "", false
		}
	}
}

// walGrowth is the DuckDB commit probe: it polls the size of the
// write-ahead log at path until it grows (a commit appends to it).
func walGrowth(path string) func(ctx context.Context, limit <-chan time.Time) (string, bool) {
	return func(ctx context.Context, limit <-chan time.Time) (string, bool) {
		size := func() int64 {
			st, err := os.Stat(path)
			if err != nil {
				return 0
			}
			return st.Size()
		}
		last := size()
		for {
			select {
			case <-limit:
				return "", false
			case <-ctx.Done():
				return "", false
			default:
			}
			n := size()
			if n > last {
				return fmt.Sprintf("write-ahead log grew by %d bytes", n-last), true
			}
			last = n // a checkpoint truncates the log
			time.Sleep(200 * time.Microsecond)
		}
	}
}

func lastToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

// status reads a window's state right after a kill (bounded).
func (m *monkey) status(ctx context.Context, window string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, _, err := m.states.Get(ctx, m.policy, window)
	if err != nil {
		return "(state unknown: " + err.Error() + ")"
	}
	return "still " + string(st.Status)
}

// restartServer stops a server (how says with which signal; of a
// cluster, the node its pick chooses for the k-th restart), starts it
// again on the same directory and port after a short delay, and waits
// until it answers.
func (m *monkey) restartServer(ctx context.Context, sv *server, how serverStop, k int) (killRecord, error) {
	p, ready, note := sv.proc, sv.ready, sv.readyNote
	if sv.pick != nil {
		var why string
		p, ready, why = sv.pick(ctx, m, k)
		note = why + "; back and caught up"
	}
	rec := killRecord{target: p.name, server: sv.name, mode: how.name, at: time.Since(m.start), aimed: true}
	rec.delay = 200*time.Millisecond + time.Duration(m.rng.Int64N(int64(800*time.Millisecond)))
	t0 := time.Now()
	if err := p.kill(how.sig, rec.delay); err != nil {
		return rec, err
	}
	if !p.waitRunning(30 * time.Second) {
		return rec, fmt.Errorf("%s not restarted", p.name)
	}
	if err := ready(ctx); err != nil {
		return rec, fmt.Errorf("%s after its restart: %w", p.name, err)
	}
	rec.down = time.Since(t0)
	rec.note = note
	return rec, nil
}
