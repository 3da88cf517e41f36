package loadtest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/ops/dlq"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/ops/replay"
	"github.com/windrow/windrow/windows"
)

// tableDigest is a digest of every row of the table, lineage included, in
// source-sequence order, with the row count.
func tableDigest(t *testing.T, ctx context.Context, s *stack.Stack, table string) (string, int64) {
	t.Helper()
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rows, err := db.QueryContext(ctx, `SELECT _source_seq, store_id, sale_id, quantity, amount, sold_at, _window_start, _window_end, _batch_id FROM `+table+` ORDER BY _source_seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h := sha256.New()
	var n int64
	for rows.Next() {
		var seq, qty int64
		var store, sale, batch string
		var amount float64
		var soldAt, ws, we time.Time
		if err := rows.Scan(&seq, &store, &sale, &qty, &amount, &soldAt, &ws, &we, &batch); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d|%s|%s|%d|%v|%d|%d|%d|%s\n", seq, store, sale, qty, amount, soldAt.UnixMicro(), ws.Unix(), we.Unix(), batch)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), n
}

// TestReplayRestoresDroppedWindows is the replay acceptance test: load,
// drop the table's rows of two windows, replay them, and the table is
// identical to the original load (rows and lineage); replaying again while
// the rows are there changes nothing.
func TestReplayRestoresDroppedWindows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	replayRestores(t, ctx, s)
}

// TestReplayOnS3AndPostgres: the same, with the batch files in an S3 store
// (replay checks them there) and the table in PostgreSQL.
func TestReplayOnS3AndPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := openS3PostgresStack(t, ctx, "replay")
	defer s.Close()
	replayRestores(t, ctx, s)
}

// replayRestores loads four windows, drops two from the table, replays
// them twice, and holds the table to the original load each time.
func replayRestores(t *testing.T, ctx context.Context, s *stack.Stack) {
	p := applyPolicy(t, ctx, s, `name: replayed
source: {stream: REPLAYED, subjects: [replayed.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 5m, idle_timeout: 1s}
segment: {max_age: 500ms}
load: {table: replayed}
`)
	defer runRoles(t, ctx, s)()
	h0 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	events := slices.Collect(Sales{Seed: 3, Events: 20_000, Start: h0, Span: 4 * time.Hour, Jitter: time.Minute, SubjectPrefix: "replayed"}.All())
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "replayed"); err != nil {
		t.Fatal(err)
	}
	waitLoaded(t, ctx, s, p.Name, 4, time.Minute)
	original, n := tableDigest(t, ctx, s, "replayed")
	if n != 20_000 {
		t.Fatalf("table holds %d rows, want 20000", n)
	}

	// Drop the rows of the windows 01:00 and 02:00.
	from, to := h0.Add(time.Hour), h0.Add(3*time.Hour)
	func() {
		db, release, err := s.Warehouse.DB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		// Literals, not placeholders: DuckDB's are ?, PostgreSQL's $1.
		res, err := db.ExecContext(ctx, `DELETE FROM replayed WHERE _window_start >= CAST('`+from.Format(time.RFC3339)+`' AS TIMESTAMPTZ)
			AND _window_start < CAST('`+to.Format(time.RFC3339)+`' AS TIMESTAMPTZ)`)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := res.RowsAffected(); d == 0 {
			t.Fatal("dropped no rows")
		}
	}()
	if d, _ := tableDigest(t, ctx, s, "replayed"); d == original {
		t.Fatal("the table did not change")
	}

	for round := 1; round <= 2; round++ {
		ws, err := replay.Start(ctx, replay.Config{JS: s.JS, States: s.States, Store: s.Store, Policy: p}, from, to, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) != 2 || ws[0].Skipped != "" || ws[1].Skipped != "" || ws[0].Replay != round {
			t.Fatalf("round %d: replay %+v, want the two windows replayed as #%d", round, ws, round)
		}
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		err = replay.Wait(wctx, s.States, p.Name, ws, nil)
		wcancel()
		if err != nil {
			t.Fatal(err)
		}
		got, n := tableDigest(t, ctx, s, "replayed")
		if got != original || n != 20_000 {
			t.Fatalf("round %d: table after the replay differs from the original load (%d rows)", round, n)
		}
	}
	// Only LOADED windows in range are replayed; an empty range is refused.
	if _, err := replay.Start(ctx, replay.Config{JS: s.JS, States: s.States, Policy: p}, to, from, false); err == nil {
		t.Error("a replay with --from after --to was accepted")
	}
}

// TestReplayFromStream: windows rebuilt from the source stream with the
// policy as it is now. The events carry a "channel" the first policy does
// not collect; after a policy change adds the field, and with one window's
// batch files deleted and two windows' rows dropped from the table, a
// rebuild of three of the four windows from the stream loads them again,
// complete, with the new column filled; the fourth keeps its rows (and no
// channel). No event is loaded twice; reconcile balances.
func TestReplayFromStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	v1 := `name: rebuilt
source: {stream: REBUILT, subjects: [rebuilt.>]}
` + SalesSchemaYAML + `window: {size: 1h, max_out_of_order: 5m, idle_timeout: 1s}
segment: {max_age: 500ms}
load: {table: rebuilt, mode: replace}
`
	p := applyPolicy(t, ctx, s, v1)
	h0 := time.Date(2026, 2, 9, 0, 0, 0, 0, time.UTC)
	events := slices.Collect(Sales{Seed: 31, Events: 20_000, Start: h0, Span: 4 * time.Hour, SubjectPrefix: "rebuilt", MalformedEvery: 500}.All())
	for i := range events {
		if !events[i].Malformed {
			events[i].Data = []byte(strings.Replace(string(events[i].Data), "{", fmt.Sprintf(`{"channel":"ch-%d",`, i%3), 1))
		}
	}
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "rebuilt"); err != nil {
		t.Fatal(err)
	}
	defer runRoles(t, ctx, s)()
	assign, err := windows.NewAssigner(p.Window)
	if err != nil {
		t.Fatal(err)
	}
	want := expectOf(events, assign)
	ws := waitLoaded(t, ctx, s, p.Name, 4, 2*time.Minute)
	checkTable(t, ctx, s, "rebuilt", "quantity", "amount", want)

	// The policy collects channel from now on; one window's files are lost,
	// two windows' rows are dropped.
	p2 := applyPolicy(t, ctx, s, strings.Replace(v1, "    - {name: business_day, type: date}\n", "    - {name: business_day, type: date}\n    - {name: channel, type: string}\n", 1))
	if err := s.Store.DeletePrefix(ctx, ws[1].Manifest[:strings.LastIndexByte(ws[1].Manifest, '/')]); err != nil {
		t.Fatal(err)
	}
	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM rebuilt WHERE _window_start IN (?, ?)`, ws[0].WindowStart, ws[2].WindowStart); err != nil {
		t.Fatal(err)
	}
	release()

	// Rebuild windows 0..2 from the stream.
	rep, err := replay.FromStream(ctx, replay.Config{JS: s.JS, States: s.States, Store: s.Store, Policy: p2}, h0, h0.Add(3*time.Hour), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var malformed int64
	for _, ev := range events {
		if ev.Malformed {
			malformed++
		}
	}
	if rep.Read != int64(len(events)) || rep.Malformed != malformed || len(rep.Windows) != 3 {
		t.Fatalf("rebuild read %d events (%d not accepted), %d windows; want %d (%d), 3", rep.Read, rep.Malformed, len(rep.Windows), len(events), malformed)
	}
	for _, w := range rep.Windows {
		if w.Skipped != "" || w.Rows != want.rows[w.ID] {
			t.Errorf("window %s: staged %d events (%s), want %d", w.ID, w.Rows, w.Skipped, want.rows[w.ID])
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	if err := replay.WaitRebuilt(wctx, s.States, p.Name, rep.Windows, nil); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ctx, s, "rebuilt", "quantity", "amount", want)
	db, release, err = s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rows, err := db.QueryContext(ctx, `SELECT strftime(_window_start AT TIME ZONE 'UTC', '%Y%m%dT%H%M%SZ'), count(*), count(channel) FROM rebuilt GROUP BY 1 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var w string
		var n, withChannel int64
		if err := rows.Scan(&w, &n, &withChannel); err != nil {
			t.Fatal(err)
		}
		wantChannel := n // rebuilt: every row has its channel
		if w == ws[3].ID() {
			wantChannel = 0 // not rebuilt: loaded before the field existed
		}
		if withChannel != wantChannel {
			t.Errorf("window %s: %d of %d rows with a channel, want %d", w, withChannel, n, wantChannel)
		}
	}
	rows.Close()
	rec, err := inspect.Reconcile(ctx, s.JS, s.States, p2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() {
		t.Errorf("reconcile: %s %v", rec.Summary(), rec.Problems)
	}
}

// TestReplayFromStreamRecoversLateDeadLetters: events dead-lettered as late
// for a loaded window are in the source stream, so a rebuild of the window
// loads them; the rebuild records their dead letters as recovered, and
// reconcile balances (it counted them as loaded and dead-lettered before).
func TestReplayFromStreamRecoversLateDeadLetters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p := applyPolicy(t, ctx, s, `name: recovered
source: {stream: RECOVERED, subjects: [recovered.>]}
`+SalesSchemaYAML+`window: {size: 1h, max_out_of_order: 5m, idle_timeout: 1s, late: dlq}
segment: {max_age: 500ms}
load: {table: recovered, mode: replace}
`)
	h0 := time.Date(2026, 2, 9, 0, 0, 0, 0, time.UTC)
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	events := slices.Collect(Sales{Seed: 41, Events: 400, Start: h0, Span: 2 * time.Hour, SubjectPrefix: "recovered"}.All())
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, events, "on-time"); err != nil {
		t.Fatal(err)
	}
	defer runRoles(t, ctx, s)()
	ws := waitLoaded(t, ctx, s, p.Name, 2, 2*time.Minute)

	// Five late events for the first window, dead-lettered.
	late := slices.Collect(Sales{Seed: 42, Events: 5, Start: h0.Add(10 * time.Minute), Span: 30 * time.Minute, SubjectPrefix: "recovered"}.All())
	if err := (&Publisher{JS: s.JS, FlushAfter: []string{p.Name}}).PublishEvents(ctx, late, "late"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, time.Minute, "5 late dead letters", func() bool {
		dl, err := inspect.CountDeadLetters(ctx, s.JS, p.Name)
		return err == nil && dl.LateByWindow[ws[0].ID()] == 5
	})
	if rec, err := inspect.Reconcile(ctx, s.JS, s.States, p, nil); err != nil || !rec.OK() {
		t.Fatalf("reconcile before the rebuild: %v %s %v", err, rec.Summary(), rec.Problems)
	}

	rep, err := replay.FromStream(ctx, replay.Config{JS: s.JS, States: s.States, Store: s.Store, Policy: p}, h0, h0.Add(time.Hour), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recovered != 5 {
		t.Errorf("rebuild recovered %d late dead letters, want 5", rep.Recovered)
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	if err := replay.WaitRebuilt(wctx, s.States, p.Name, rep.Windows, nil); err != nil {
		t.Fatal(err)
	}
	rec, err := inspect.Reconcile(ctx, s.JS, s.States, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() || rec.Recovered != 5 || rec.DeadLetters != 0 {
		t.Errorf("reconcile after the rebuild: %s %v; recovered %d, dead letters %d", rec.Summary(), rec.Problems, rec.Recovered, rec.DeadLetters)
	}
	sum, err := dlq.List(ctx, s.JS, dlq.Filter{Policy: p.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Groups) != 0 || sum.Recovered[p.Name] != 5 {
		t.Errorf("dlq ls after the rebuild: %+v, recovered %v; want nothing listed, 5 recovered", sum.Groups, sum.Recovered)
	}
	// A second rebuild records nothing again.
	rep, err = replay.FromStream(ctx, replay.Config{JS: s.JS, States: s.States, Store: s.Store, Policy: p}, h0, h0.Add(time.Hour), false, nil)
	if err != nil || rep.Recovered != 0 {
		t.Errorf("second rebuild: %v, recovered %d; want 0", err, rep.Recovered)
	}
}
