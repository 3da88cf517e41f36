package windows

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func mustSessions(t fataler, gap, lateness time.Duration, max int) *Sessions {
	t.Helper()
	s, err := NewSessions(WindowSpec{Kind: SessionWindows, Gap: Duration(gap), AllowedLateness: Duration(lateness), MaxOpenSessions: max})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type sessionEvent struct {
	key string
	us  int64
}

// referenceSessions groups events the slow way: per key, sorted by time, a new
// session wherever two neighbours are gap or more apart.
func referenceSessions(events []sessionEvent, gap int64) []Session {
	byKey := map[string][]int64{}
	for _, e := range events {
		byKey[e.key] = append(byKey[e.key], e.us)
	}
	var out []Session
	for key, ts := range byKey {
		slices.Sort(ts)
		first := 0
		for i := 1; i <= len(ts); i++ {
			if i == len(ts) || ts[i]-ts[i-1] >= gap {
				out = append(out, Session{
					Key: key, Start: time.UnixMicro(ts[first]).UTC(), Last: time.UnixMicro(ts[i-1]).UTC(),
					End: time.UnixMicro(ts[i-1] + gap).UTC(), Events: i - first,
				})
				first = i
			}
		}
	}
	slices.SortFunc(out, func(a, b Session) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), a.Start.Compare(b.Start))
	})
	return out
}

func drawSessionEvents(t *rapid.T, gap int64) []sessionEvent {
	keys := []string{"a", "b", "042", ""}
	base := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC).UnixMicro()
	span := rapid.Int64Range(1, 20).Draw(t, "span") * gap // events spread over up to 20 gaps
	return rapid.SliceOfN(rapid.Custom(func(t *rapid.T) sessionEvent {
		return sessionEvent{
			key: rapid.SampledFrom(keys).Draw(t, "key"),
			// Sometimes exactly on multiples of the gap, to hit the boundary.
			us: base + rapid.OneOf(rapid.Int64Range(0, span), rapid.Map(rapid.Int64Range(0, 20), func(k int64) int64 { return k * gap })).Draw(t, "us"),
		}
	}), 1, 60).Draw(t, "events")
}

// TestSessionsProperties: adding the same events in any order gives the same
// sessions, those of the reference grouping; sessions of a key are at least a
// gap apart; every event lies in exactly one session; and a caller that
// re-homes rows as Add's replaced list says ends up with each session's events
// under its ID.
func TestSessionsProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gap := rapid.SampledFrom([]time.Duration{time.Second, time.Minute, 30 * time.Minute}).Draw(t, "gap")
		gapUs := gap.Microseconds()
		events := drawSessionEvents(t, gapUs)
		want := referenceSessions(events, gapUs)

		orders := [][]sessionEvent{events, slices.Clone(events), slices.Clone(events)}
		slices.Reverse(orders[1])
		perm := rapid.Permutation(events).Draw(t, "perm")
		orders[2] = perm
		for oi, order := range orders {
			s := mustSessions(t, gap, 0, 0)
			rows := map[string][]int64{} // session ID → event times, as a caller would keep rows
			for _, e := range order {
				cur, replaced, err := s.Add(e.key, time.UnixMicro(e.us))
				if err != nil {
					t.Fatalf("Add(%q, %d): %v", e.key, e.us, err)
				}
				if !cur.Window().Contains(time.UnixMicro(e.us)) || cur.Key != e.key {
					t.Fatalf("Add(%q, %d) returned %+v, which does not hold the event", e.key, e.us, cur)
				}
				for _, r := range replaced {
					if r.Key != e.key || r.ID() == cur.ID() {
						t.Fatalf("replaced %+v for the event %q %d in %+v", r, e.key, e.us, cur)
					}
					if _, ok := rows[r.ID()]; !ok {
						t.Fatalf("replaced session %s was never returned", r.ID())
					}
					rows[cur.ID()] = append(rows[cur.ID()], rows[r.ID()]...)
					delete(rows, r.ID())
				}
				rows[cur.ID()] = append(rows[cur.ID()], e.us)
			}
			got := s.Open()
			if !slices.Equal(got, want) {
				t.Fatalf("order %d: sessions\n%v\nwant\n%v", oi, got, want)
			}
			if s.Len() != len(want) || len(rows) != len(want) {
				t.Fatalf("order %d: Len %d, %d row groups, want %d sessions", oi, s.Len(), len(rows), len(want))
			}
			for i, ss := range got {
				ts := rows[ss.ID()]
				if len(ts) != ss.Events {
					t.Fatalf("session %s holds %d rows, want %d", ss.ID(), len(ts), ss.Events)
				}
				for _, us := range ts {
					if !ss.Window().Contains(time.UnixMicro(us)) {
						t.Fatalf("row %d of session %+v is outside it", us, ss)
					}
				}
				if i > 0 && got[i-1].Key == ss.Key && got[i-1].Last.Add(gap).After(ss.Start) {
					t.Fatalf("sessions %+v and %+v of one key are less than a gap apart", got[i-1], ss)
				}
			}
			for _, e := range events {
				n := 0
				for _, ss := range got {
					if ss.Key == e.key && ss.Window().Contains(time.UnixMicro(e.us)) {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("event %q %d lies in %d sessions", e.key, e.us, n)
				}
			}
		}
	})
}

// TestSessionsClosedProperties interleaves Add and Closed with a rising
// watermark: closed and open sessions of a key never come within a gap of each
// other, every accepted event lies in exactly one of them, refused events are
// exactly those before the watermark minus the lateness, and Closed returns
// sessions in order.
func TestSessionsClosedProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gap := rapid.SampledFrom([]time.Duration{time.Second, time.Minute}).Draw(t, "gap")
		lateness := rapid.SampledFrom([]time.Duration{0, time.Second, 5 * time.Minute}).Draw(t, "lateness")
		gapUs := gap.Microseconds()
		events := drawSessionEvents(t, gapUs)
		if rapid.Bool().Draw(t, "in order") { // a stream, mostly in order, that the watermark follows
			slices.SortStableFunc(events, func(a, b sessionEvent) int { return cmp.Compare(a.us, b.us) })
		}
		s := mustSessions(t, gap, lateness, 0)
		var closed []Session
		var accepted []sessionEvent
		wm := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC).Add(-time.Hour)
		for i, e := range events {
			_, _, err := s.Add(e.key, time.UnixMicro(e.us))
			// Closed has set the watermark wm after every step before this one.
			late := i > 0 && e.us < wm.UnixMicro()-lateness.Microseconds()
			switch {
			case late && !errors.Is(err, ErrSessionLate):
				t.Fatalf("Add(%d) with watermark %v = %v, want ErrSessionLate", e.us, wm, err)
			case !late && err != nil:
				t.Fatalf("Add(%d) with watermark %v: %v", e.us, wm, err)
			case err == nil:
				accepted = append(accepted, e)
			}
			// The watermark trails the newest event by up to two gaps, or jumps.
			if follow := time.UnixMicro(e.us - rapid.Int64Range(0, 2*gapUs).Draw(t, "behind")); follow.After(wm) {
				wm = follow
			}
			wm = wm.Add(time.Duration(rapid.Int64Range(0, gapUs).Draw(t, "advance")) * time.Microsecond)
			c := s.Closed(wm)
			for j, ss := range c {
				if ss.End.Add(lateness).After(wm) {
					t.Fatalf("Closed(%v) returned %+v, which closes at %v", wm, ss, ss.End.Add(lateness))
				}
				if j > 0 && cmp.Or(c[j-1].End.Compare(ss.End), cmp.Compare(c[j-1].Key, ss.Key)) > 0 {
					t.Fatalf("Closed returned %+v before %+v", c[j-1], ss)
				}
			}
			closed = append(closed, c...)
			for _, ss := range s.Open() {
				if !ss.End.Add(lateness).After(wm) {
					t.Fatalf("session %+v is still open at watermark %v", ss, wm)
				}
			}
		}
		all := append(slices.Clone(closed), s.Open()...)
		if got, want := len(all), len(referenceSessions(accepted, gapUs)); got != want {
			t.Fatalf("%d sessions, the accepted events make %d", got, want)
		}
		slices.SortFunc(all, func(a, b Session) int { return cmp.Or(cmp.Compare(a.Key, b.Key), a.Start.Compare(b.Start)) })
		for i := 1; i < len(all); i++ {
			if all[i-1].Key == all[i].Key && all[i-1].End.After(all[i].Start) {
				t.Fatalf("sessions %+v and %+v of one key overlap", all[i-1], all[i])
			}
		}
		for _, e := range accepted {
			n := 0
			for _, ss := range all {
				if ss.Key == e.key && ss.Window().Contains(time.UnixMicro(e.us)) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("event %q %d lies in %d sessions", e.key, e.us, n)
			}
		}
	})
}

func TestSessionsAddMergeAndRename(t *testing.T) {
	s := mustSessions(t, 30*time.Minute, 0, 0)
	at := func(hh, mm int) time.Time { return time.Date(2026, 3, 8, hh, mm, 0, 0, time.UTC) }
	add := func(key string, tm time.Time) (Session, []Session) {
		t.Helper()
		cur, replaced, err := s.Add(key, tm)
		if err != nil {
			t.Fatal(err)
		}
		return cur, replaced
	}
	a, r := add("store-1", at(10, 0))
	if r != nil || !a.Start.Equal(at(10, 0)) || !a.End.Equal(at(10, 30)) || a.Events != 1 {
		t.Fatalf("first event: %+v, %v", a, r)
	}
	// 10:20 extends it; 10:50 is 30m after 10:20: a pause of exactly the gap starts a new session.
	if cur, r := add("store-1", at(10, 20)); r != nil || cur.ID() != a.ID() || !cur.End.Equal(at(10, 50)) {
		t.Fatalf("extend: %+v, %v", cur, r)
	}
	b, r := add("store-1", at(10, 50))
	if r != nil || b.ID() == a.ID() || s.Len() != 2 {
		t.Fatalf("after a pause of exactly the gap: %+v, %v, %d open", b, r, s.Len())
	}
	// Another key does not interfere.
	if _, r := add("store-2", at(10, 40)); r != nil || s.Len() != 3 {
		t.Fatalf("other key: %v, %d open", r, s.Len())
	}
	// 10:35 bridges [10:00, 10:50) and [10:50, 11:20): merged into the first.
	m, r := add("store-1", at(10, 35))
	if len(r) != 1 || r[0].ID() != b.ID() || m.ID() != a.ID() || m.Events != 4 || !m.End.Equal(at(11, 20)) || s.Len() != 2 {
		t.Fatalf("bridge: %+v, replaced %v, %d open", m, r, s.Len())
	}
	// 09:45 moves the start earlier: the session is renamed, its old self replaced.
	e, r := add("store-1", at(9, 45))
	if len(r) != 1 || r[0].ID() != a.ID() || r[0].Events != 4 || !e.Start.Equal(at(9, 45)) || e.Events != 5 {
		t.Fatalf("earlier event: %+v, replaced %v", e, r)
	}
	// Closing: store-2's session ends 11:10, store-1's 11:20.
	if c := s.Closed(at(11, 10)); len(c) != 1 || c[0].Key != "store-2" {
		t.Fatalf("Closed(11:10) = %v", c)
	}
	if c := s.Closed(at(11, 0)); len(c) != 0 { // a lower watermark is ignored
		t.Fatalf("Closed(11:00) after 11:10 = %v", c)
	}
	// An event before the watermark is late, even though store-1's session is open.
	if _, _, err := s.Add("store-1", at(11, 5)); !errors.Is(err, ErrSessionLate) {
		t.Fatalf("Add(11:05) after Closed(11:10) = %v, want ErrSessionLate", err)
	}
	if c := s.Closed(at(11, 20)); len(c) != 1 || c[0].ID() != e.ID() || s.Len() != 0 {
		t.Fatalf("Closed(11:20) = %v, %d open", c, s.Len())
	}
}

func TestSessionsClosedAfterExtension(t *testing.T) {
	s := mustSessions(t, time.Minute, 0, 0)
	t0 := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	for _, e := range []struct {
		key string
		at  time.Duration
	}{{"a", 0}, {"b", 10 * time.Second}, {"a", 50 * time.Second}} {
		if _, _, err := s.Add(e.key, t0.Add(e.at)); err != nil {
			t.Fatal(err)
		}
	}
	// a now ends at 1m50s, b at 1m10s: b closes first.
	if c := s.Closed(t0.Add(75 * time.Second)); len(c) != 1 || c[0].Key != "b" {
		t.Fatalf("Closed(1m15s) = %v, want b's session", c)
	}
	if c := s.Closed(t0.Add(110 * time.Second)); len(c) != 1 || c[0].Key != "a" || c[0].Events != 2 {
		t.Fatalf("Closed(1m50s) = %v, want a's session", c)
	}
}

func TestSessionsAllowedLateness(t *testing.T) {
	s := mustSessions(t, time.Minute, 10*time.Minute, 0)
	t0 := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	if _, _, err := s.Add("k", t0); err != nil {
		t.Fatal(err)
	}
	if c := s.Closed(t0.Add(10 * time.Minute)); len(c) != 0 {
		t.Fatalf("closed before end + lateness: %v", c)
	}
	// 5 minutes later than a 10-minute-old watermark minus 10m of lateness: still on time.
	if cur, _, err := s.Add("k", t0.Add(30*time.Second)); err != nil || cur.Events != 2 {
		t.Fatalf("Add within the lateness: %+v, %v", cur, err)
	}
	if c := s.Closed(t0.Add(11*time.Minute + 30*time.Second)); len(c) != 1 || c[0].Events != 2 {
		t.Fatalf("Closed at end + lateness = %v", c)
	}
	if _, _, err := s.Add("k", t0.Add(time.Minute)); !errors.Is(err, ErrSessionLate) {
		t.Fatalf("Add before watermark - lateness = %v, want ErrSessionLate", err)
	}
}

func TestSessionsOverflow(t *testing.T) {
	s := mustSessions(t, time.Minute, 0, 2)
	t0 := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	for _, k := range []string{"a", "b"} {
		if _, _, err := s.Add(k, t0); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := s.Add("c", t0)
	if !errors.Is(err, ErrSessionOverflow) {
		t.Fatalf("third session: %v, want ErrSessionOverflow", err)
	}
	if s.Len() != 2 {
		t.Fatalf("%d open after a refused event", s.Len())
	}
	// A new session of an existing key is refused too; extending one is not.
	if _, _, err := s.Add("a", t0.Add(time.Hour)); !errors.Is(err, ErrSessionOverflow) {
		t.Fatalf("second session of a: %v", err)
	}
	if cur, _, err := s.Add("a", t0.Add(30*time.Second)); err != nil || cur.Events != 2 {
		t.Fatalf("extending a: %+v, %v", cur, err)
	}
	// Closing frees room.
	if c := s.Closed(t0.Add(2 * time.Minute)); len(c) != 2 {
		t.Fatalf("Closed = %v", c)
	}
	if _, _, err := s.Add("c", t0.Add(3*time.Minute)); err != nil {
		t.Fatalf("after closing: %v", err)
	}
	// The default cap.
	if d := mustSessions(t, time.Minute, 0, 0); d.max != DefaultMaxOpenSessions {
		t.Errorf("default cap %d, want %d", d.max, DefaultMaxOpenSessions)
	}
}

func TestNewSessionsRejectsBadSpec(t *testing.T) {
	for _, spec := range []WindowSpec{
		{Kind: SessionWindows},
		{Kind: SessionWindows, Gap: Duration(-time.Minute)},
		{Kind: SessionWindows, Gap: Duration(time.Millisecond)},
		{Kind: Tumbling, Gap: Duration(time.Minute)},
		{Kind: SessionWindows, Gap: Duration(time.Minute), MaxOpenSessions: -1},
		{Kind: SessionWindows, Gap: Duration(time.Minute), AllowedLateness: Duration(-time.Second)},
	} {
		if _, err := NewSessions(spec); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("NewSessions(%+v) = %v, want ErrInvalidPolicy", spec, err)
		}
	}
}

var sessionIDRE = regexp.MustCompile(`^\d{8}T\d{12}Z_[0-9a-f]{16}$`)

func TestSessionID(t *testing.T) {
	start := time.Date(2026, 3, 8, 12, 0, 0, 250_000_000, time.FixedZone("X", 3600))
	id := SessionID("store_id=042/", start)
	if want := "20260308T110000250000Z_"; id[:len(want)] != want || !sessionIDRE.MatchString(id) {
		t.Errorf("SessionID = %q", id)
	}
	if SessionID("store_id=042/", start.UTC()) != id {
		t.Errorf("SessionID depends on the time's location")
	}
	if SessionID("store_id=043/", start) == id || SessionID("store_id=042/", start.Add(time.Microsecond)) == id {
		t.Errorf("SessionID ignores the key or the microseconds")
	}
	rapid.Check(t, func(t *rapid.T) {
		k1, k2 := rapid.String().Draw(t, "k1"), rapid.String().Draw(t, "k2")
		u1, u2 := rapid.Int64Range(minPropertyTime, maxPropertyTime).Draw(t, "u1"), rapid.Int64Range(minPropertyTime, maxPropertyTime).Draw(t, "u2")
		a, b := SessionID(k1, time.UnixMicro(u1)), SessionID(k2, time.UnixMicro(u2))
		if (a == b) != (k1 == k2 && u1 == u2) {
			t.Fatalf("SessionID(%q, %d) = %s, SessionID(%q, %d) = %s", k1, u1, a, k2, u2, b)
		}
		if !sessionIDRE.MatchString(a) {
			t.Fatalf("SessionID %q has an unexpected form", a)
		}
		if (a < b) != (u1 < u2) && u1 != u2 {
			t.Fatalf("IDs %s, %s do not sort by start", a, b)
		}
	})
}

func ExampleSessions() {
	s, _ := NewSessions(WindowSpec{Kind: SessionWindows, Gap: Duration(30 * time.Minute)})
	at := func(hh, mm int) time.Time { return time.Date(2026, 3, 8, hh, mm, 0, 0, time.UTC) }
	s.Add("store_id=042/", at(10, 0))
	s.Add("store_id=042/", at(10, 50))                     // a pause of 30m or more: a second session
	cur, replaced, _ := s.Add("store_id=042/", at(10, 25)) // bridges the two
	fmt.Println(cur.ID(), cur.Start.Format("15:04"), cur.End.Format("15:04"), cur.Events)
	for _, r := range replaced {
		fmt.Println("re-home", r.ID(), "into", cur.ID())
	}
	for _, c := range s.Closed(at(11, 20)) {
		fmt.Println("closed", c.ID(), c.Window())
	}
	// Output:
	// 20260308T100000000000Z_30ac90bd6f3037f6 10:00 11:20 3
	// re-home 20260308T105000000000Z_30ac90bd6f3037f6 into 20260308T100000000000Z_30ac90bd6f3037f6
	// closed 20260308T100000000000Z_30ac90bd6f3037f6 20260308T100000Z[2026-03-08T10:00:00Z, 2026-03-08T11:20:00Z)
}
