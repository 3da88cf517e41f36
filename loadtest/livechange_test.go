package loadtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

const livePolicyV1 = `name: live
source: {stream: LIVE, subjects: [live.>]}
` + SalesSchemaYAML + `window: {size: 1h, max_out_of_order: 5m, idle_timeout: 1h}
segment: {max_rows: 5000, max_age: 200ms}
load: {table: live}
`

// livePolicyV2 adds a nullable field and changes the segment trigger.
var livePolicyV2 = strings.Replace(strings.Replace(livePolicyV1,
	"    - {name: business_day, type: date}\n", "    - {name: business_day, type: date}\n    - {name: channel, type: string}\n", 1),
	"max_rows: 5000", "max_rows: 2000", 1)

// TestLivePolicyChange changes a policy while events flow (a new nullable
// field, another segment trigger): no event is lost or loaded twice, the
// table gains the column, and windows that were open under the old version
// finish under it (their batches and ledger rows say so).
func TestLivePolicyChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openStack(t, ctx, t.TempDir())
	defer s.Close()
	p1 := applyPolicy(t, ctx, s, livePolicyV1)
	defer runRoles(t, ctx, s)()

	h0 := time.Date(2026, 8, 3, 0, 0, 0, 0, time.UTC)
	gen := Sales{Seed: 5, Events: 60_000, Start: h0, Span: 6 * time.Hour, SubjectPrefix: "live"}
	events := gen.Generate()
	// The second half carries the new field (producers upgraded with the policy).
	half := len(events) / 2
	for i := half; i < len(events); i++ {
		events[i].Data = []byte(strings.Replace(string(events[i].Data), "{", `{"channel":"web",`, 1))
	}
	assign, err := windows.NewAssigner(p1.Window)
	if err != nil {
		t.Fatal(err)
	}
	want := expectOf(events, assign)

	// Publish in slices; apply v2 when half is out.
	pub := &Publisher{JS: s.JS}
	applied := false
	const chunk = 2_000
	for i := 0; i < len(events); i += chunk {
		end := min(i+chunk, len(events))
		if err := pub.PublishEvents(ctx, events[i:end], fmt.Sprintf("live-%d", i)); err != nil {
			t.Fatal(err)
		}
		if end >= half && !applied {
			if _, err := s.Policies.Apply(ctx, "live.yaml", []byte(livePolicyV2)); err != nil {
				t.Fatal(err)
			}
			applied = true
		}
		time.Sleep(20 * time.Millisecond) // events keep flowing while the workers restart
	}
	// Events far ahead close the last windows by event time; they are in
	// window 08:00. More than 1% of the recent events: one event alone is
	// an outlier the watermark's quorum does not follow.
	closers := make([]Event, len(events)/50+10)
	for i := range closers {
		c := SaleAt(fmt.Sprintf("closer-%d", i), 1, h0.Add(8*time.Hour), 1, 1)
		c.Subject = "live.store-001"
		c.Data = []byte(strings.Replace(string(c.Data), "{", `{"channel":"web",`, 1))
		closers[i] = c
	}
	if err := pub.PublishEvents(ctx, closers, "live-closer"); err != nil {
		t.Fatal(err)
	}
	// Six windows loaded; the closers' window stays open.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		loaded := 0
		ws, err := s.States.List(ctx, "live")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if w.Status == messages.StatusFailed {
				t.Fatalf("window %s FAILED: %s", w.ID(), w.Error)
			}
			if w.Status == messages.StatusLoaded {
				loaded++
			}
		}
		if loaded == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 6 windows loaded", loaded)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkTable(t, ctx, s, "live", "quantity", "amount", want)

	db, release, err := s.Warehouse.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var withChannel int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM live WHERE channel = 'web'`).Scan(&withChannel); err != nil {
		t.Fatalf("the table has no channel column after the change: %v", err)
	}
	if withChannel == 0 || withChannel > int64(len(events)-half) {
		t.Errorf("%d rows with a channel, want between 1 and %d", withChannel, len(events)-half)
	}
	// Every window's batches were loaded under the version the window was opened with.
	ws, err := s.States.List(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	versions := map[uint64]int{}
	for _, w := range ws {
		if w.Status != messages.StatusLoaded {
			continue
		}
		versions[w.PolicyVersion]++
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM _windrow_ledger WHERE window_start = ? AND policy_version <> ?`,
			w.WindowStart, w.PolicyVersion).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("window %s opened under v%d: %d batches loaded under another version", w.ID(), w.PolicyVersion, n)
		}
	}
	t.Logf("windows by policy version: %v", versions)
	if len(versions) < 2 {
		t.Errorf("windows by version %v: want windows of both versions", versions)
	}
}
