package windows

import (
	"container/heap"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrSessionOverflow is returned by (*Sessions).Add when the event would open a
// session beyond window.max_open_sessions. The caller applies key_overflow:
// dead-letter the event with reason ReasonSessionOverflow (dlq) or stop (error).
var ErrSessionOverflow = errors.New("too many open sessions (window.max_open_sessions)")

// ErrSessionLate is returned by (*Sessions).Add for an event older than the
// last watermark given to Closed minus allowed_lateness: its session may
// already be closed. The caller applies window.late (reason "late").
var ErrSessionLate = errors.New("event is late for session windows")

// SessionIDTimeLayout formats a session's start in its ID (see Session.ID).
const SessionIDTimeLayout = "20060102T150405.000000Z"

// Session is one session window: the events of one key with no pause of the
// gap or more between two of them.
type Session struct {
	Key    string
	Start  time.Time // the first event, UTC
	Last   time.Time // the last event, UTC
	End    time.Time // Last + gap: the window is [Start, End)
	Events int       // events added, including those of merged sessions
}

// Window returns [Start, End). Its Window.ID is not unique across keys (nor
// precise to the microsecond): use Session.ID to name a session.
func (s Session) Window() Window { return Window{Start: s.Start, End: s.End} }

// ID names the session; see SessionID.
func (s Session) ID() string { return SessionID(s.Key, s.Start) }

// SessionID returns the ID of the session of key that starts at start:
// the start in UTC to the microsecond, without the '.', then '_' and the first
// 16 hex digits of SHA-256(key), e.g. "20260308T120000250000Z_2c26b46b68ffc68f".
// It is deterministic (the same events always give the same IDs), sorts by
// start, uses only [0-9A-Za-z_] (safe in NATS subjects, KV keys and paths), and
// is unique: sessions of one key never share a start, and two keys share an ID
// only if their sessions start in the same microsecond and their 64-bit hash
// prefixes collide.
func SessionID(key string, start time.Time) string {
	sum := sha256.Sum256([]byte(key))
	ts := strings.Replace(start.UTC().Format(SessionIDTimeLayout), ".", "", 1)
	return ts + "_" + hex.EncodeToString(sum[:8])
}

// Sessions keeps the open session windows of one policy, per key. It is pure
// (every time is an argument), deterministic and not safe for concurrent use.
//
// Each event t of a key covers [t, t+gap); a session is a maximal run of a key's
// events whose covers overlap, so its window is [first event, last event + gap)
// and two events are in one session when no pause of gap or more separates
// them (a pause of exactly gap starts a new session, matching half-open
// windows). Sessions of one key never overlap. Add merges sessions that an
// event bridges; the result does not depend on the order of the events.
//
// A session closes when the watermark reaches End + allowed_lateness
// (Closed). After Closed(w), Add refuses events before w - allowed_lateness
// with ErrSessionLate: such an event could belong to a session already closed.
//
// Memory is bounded by window.max_open_sessions (SessionLimit): an event that
// would open one more session gets ErrSessionOverflow; extending or merging
// sessions is always accepted. A key whose events never pause for gap keeps
// one session open for as long as that lasts.
type Sessions struct {
	gap, lateness int64 // µs
	max           int
	byKey         map[string][]*openSession // sorted by start, disjoint
	closing       sessionHeap               // every open session, by end
	watermark     int64
	watermarkSet  bool
}

type openSession struct {
	key         string
	start, last int64 // µs
	events      int
	index       int // in Sessions.closing
}

func (o *openSession) end(gap int64) int64 { return o.last + gap }

func (o *openSession) session(gap int64) Session {
	return Session{
		Key:    o.key,
		Start:  time.UnixMicro(o.start).UTC(),
		Last:   time.UnixMicro(o.last).UTC(),
		End:    time.UnixMicro(o.last + gap).UTC(),
		Events: o.events,
	}
}

// NewSessions returns an empty Sessions for a session window spec: Gap,
// AllowedLateness and MaxOpenSessions (0 is DefaultMaxOpenSessions) are used.
// Errors match ErrInvalidPolicy.
func NewSessions(spec WindowSpec) (*Sessions, error) {
	var errs []error
	if spec.Kind != SessionWindows {
		errs = append(errs, &FieldError{Field: "window.kind", Msg: fmt.Sprintf("%q is not session: Sessions keeps session windows only", string(spec.Kind))})
	}
	if fe := gapProblem(spec.Gap); fe != nil {
		errs = append(errs, fe)
	}
	if spec.AllowedLateness < 0 {
		errs = append(errs, &FieldError{Field: "window.allowed_lateness", Msg: fmt.Sprintf("%s must not be negative", spec.AllowedLateness)})
	}
	if m := spec.MaxOpenSessions; m < 0 || m > MaxMaxOpenSessions {
		errs = append(errs, &FieldError{Field: "window.max_open_sessions", Msg: fmt.Sprintf("%d is out of range (valid: 1..%d; 0 means %d)", m, MaxMaxOpenSessions, DefaultMaxOpenSessions)})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new sessions: %w", errors.Join(errs...))
	}
	s := &Sessions{
		gap:      spec.Gap.D().Microseconds(),
		lateness: spec.AllowedLateness.D().Microseconds(),
		max:      spec.SessionLimit(),
		byKey:    map[string][]*openSession{},
	}
	s.closing.gap = s.gap
	return s, nil
}

// Add puts the event of key at time t (truncated to the microsecond) into its
// session and returns that session as it is now.
//
// replaced lists the sessions, as they were before this call, that no longer
// exist under their ID: the sessions the event bridged, merged into cur, and
// the session t joined when t is before its start (its ID changes with its
// start). A caller re-homes the rows of each replaced[i].ID() to cur.ID(). It
// is nil when cur is new or kept its start, the common case, which does not
// allocate beyond a new session.
//
// Errors: ErrSessionLate (see Sessions) and ErrSessionOverflow, both wrapped;
// nothing is changed then.
func (s *Sessions) Add(key string, t time.Time) (cur Session, replaced []Session, err error) {
	us := t.UnixMicro()
	if s.watermarkSet && us < s.watermark-s.lateness {
		return Session{}, nil, fmt.Errorf("%w: %s is before the watermark %s minus allowed lateness %s",
			ErrSessionLate, t.UTC().Format(time.RFC3339Nano), time.UnixMicro(s.watermark).UTC().Format(time.RFC3339Nano), time.Duration(s.lateness)*time.Microsecond)
	}
	list := s.byKey[key]
	// list is sorted by start and disjoint, so ends increase too: the sessions
	// that [us, us+gap) overlaps are list[i:j].
	i, _ := slices.BinarySearchFunc(list, us, func(o *openSession, us int64) int {
		if o.end(s.gap) > us {
			return 1
		}
		return -1
	})
	j, _ := slices.BinarySearchFunc(list[i:], us+s.gap, func(o *openSession, lim int64) int {
		if o.start >= lim {
			return 1
		}
		return -1
	})
	j += i

	if i == j { // a new session
		if s.closing.Len() >= s.max {
			return Session{}, nil, fmt.Errorf("%w: %d sessions are open, key %q would open another", ErrSessionOverflow, s.closing.Len(), key)
		}
		o := &openSession{key: key, start: us, last: us, events: 1}
		if list == nil {
			key = strings.Clone(key) // the map and the session keep their own copy
			o.key = key
		} else {
			o.key = list[0].key
		}
		s.byKey[o.key] = slices.Insert(list, i, o)
		heap.Push(&s.closing, o)
		return o.session(s.gap), nil, nil
	}

	into := list[i]
	if j-i > 1 || us < into.start {
		replaced = make([]Session, 0, j-i)
		if us < into.start {
			replaced = append(replaced, into.session(s.gap))
		}
		for _, o := range list[i+1 : j] {
			replaced = append(replaced, o.session(s.gap))
		}
	}
	into.start = min(into.start, us)
	into.last = max(list[j-1].last, us)
	for _, o := range list[i+1 : j] {
		into.events += o.events
		heap.Remove(&s.closing, o.index)
	}
	into.events++
	heap.Fix(&s.closing, into.index)
	if j-i > 1 {
		s.byKey[into.key] = slices.Delete(list, i+1, j)
	}
	return into.session(s.gap), replaced, nil
}

// Closed records watermark (a lower one than before is ignored) and returns,
// and forgets, every open session whose End + allowed_lateness is at or before
// it, sorted by End, then Key, then Start.
func (s *Sessions) Closed(watermark time.Time) []Session {
	w := watermark.UnixMicro()
	if !s.watermarkSet || w > s.watermark {
		s.watermark, s.watermarkSet = w, true
	}
	w = s.watermark
	var out []Session
	for s.closing.Len() > 0 {
		o := s.closing.items[0]
		if o.end(s.gap)+s.lateness > w {
			break
		}
		heap.Pop(&s.closing)
		out = append(out, o.session(s.gap))
		// The first session of a key ends first, so o is its key's first.
		list := s.byKey[o.key]
		if len(list) == 1 {
			delete(s.byKey, o.key)
		} else {
			list[0] = nil
			s.byKey[o.key] = list[1:]
		}
	}
	return out
}

// Len returns the number of open sessions.
func (s *Sessions) Len() int { return s.closing.Len() }

// Open returns the open sessions, sorted by Key, then Start.
func (s *Sessions) Open() []Session {
	out := make([]Session, 0, s.closing.Len())
	for _, o := range s.closing.items {
		out = append(out, o.session(s.gap))
	}
	slices.SortFunc(out, func(a, b Session) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return a.Start.Compare(b.Start)
	})
	return out
}

// sessionHeap orders open sessions by end, then key, then start: the order in
// which they close.
type sessionHeap struct {
	items []*openSession
	gap   int64
}

func (h *sessionHeap) Len() int { return len(h.items) }

func (h *sessionHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if ea, eb := a.end(h.gap), b.end(h.gap); ea != eb {
		return ea < eb
	}
	if a.key != b.key {
		return a.key < b.key
	}
	return a.start < b.start
}

func (h *sessionHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}

func (h *sessionHeap) Push(x any) {
	o := x.(*openSession)
	o.index = len(h.items)
	h.items = append(h.items, o)
}

func (h *sessionHeap) Pop() any {
	n := len(h.items) - 1
	o := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	o.index = -1
	return o
}
