package windows

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// moreFields adds, after created_at (lines 9-11), four fields on lines 12-15, so
// that time moves to line 16 and window to line 18:
//
//	12 amount float64 required   13 note string   14 day date required   15 n int64 required
const moreFields = "      required: true\n" +
	"    - {name: amount, type: float64, required: true}\n" +
	"    - {name: note, type: string}\n" +
	"    - {name: day, type: date, required: true}\n" +
	"    - {name: n, type: int64, required: true}\n" +
	"time:"

// TestParsePolicyWindowKindsAndKeys extends TestParsePolicy to hopping and
// session windows and to key, max_keys_per_window and key_overflow.
func TestParsePolicyWindowKindsAndKeys(t *testing.T) {
	const file = "policies/sales.yaml"
	hopping := func(lines string) string { return edit("  size: 1h\n", "  kind: hopping\n"+lines) }
	session := func(lines string) string { return edit("  size: 1h\n", "  kind: session\n"+lines) }
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error; none: the policy is valid
		n    int      // number of problems, if not len(want)
	}{
		{name: "hopping", yaml: hopping("  size: 1h\n  slide: 15m\n")},
		{name: "hopping, slide of a day", yaml: hopping("  size: 168h\n  slide: 24h\n  timezone: America/New_York\n")},
		{name: "hopping, size not aligned to a day", yaml: hopping("  size: 36h\n  slide: 12h\n")},
		{name: "hopping, slide = size", yaml: hopping("  size: 1h\n  slide: 1h\n")},
		{name: "hopping with key", yaml: hopping("  size: 1h\n  slide: 15m\n") + "key: [order_id]\nmax_keys_per_window: 500\nkey_overflow: error\n"},
		{name: "session", yaml: session("  gap: 30m\n  max_open_sessions: 5000\n") + "key: [order_id]\n"},
		{name: "tumbling with key", yaml: basePolicy + "key: [order_id, created_at]\n"},
		{
			name: "hopping without slide",
			yaml: hopping("  size: 1h\n"),
			want: []string{"sales.yaml:14: window.slide: is required for hopping windows (how far apart windows start: divides 24h or is whole days, and divides size; e.g. size: 1h with slide: 15m"},
		},
		{
			name: "hopping without size",
			yaml: hopping("  slide: 1m\n"),
			want: []string{"sales.yaml:14: window.size: is required (the length of each hopping window, a whole multiple of slide"},
		},
		{
			name: "hopping slide does not align",
			yaml: hopping("  size: 1h\n  slide: 25m\n"),
			want: []string{"sales.yaml:17: window.slide: 25m0s neither divides 24h nor is a whole number of days, so windows would not align to midnight"},
		},
		{
			name: "hopping slide longer than size",
			yaml: hopping("  size: 1h\n  slide: 2h\n"),
			want: []string{"sales.yaml:17: window.slide: 2h0m0s is longer than size 1h0m0s (valid: at most size"},
		},
		{
			name: "hopping slide does not divide size",
			yaml: hopping("  size: 50m\n  slide: 20m\n"),
			want: []string{"sales.yaml:17: window.slide: 20m0s does not divide size 50m0s"},
		},
		{
			name: "hopping slide too short and not whole seconds",
			yaml: hopping("  size: 1h\n  slide: 500ms\n"),
			want: []string{"window.slide: 500ms is too short (valid: at least 1s"},
		},
		{
			name: "hopping with too many windows per event",
			yaml: hopping("  size: 48h\n  slide: 1m\n"),
			want: []string{"sales.yaml:17: window.slide: 1m0s puts every event into 2880 windows of 48h0m0s (valid: size/slide at most 1440"},
		},
		{
			name: "slide, gap and max_open_sessions on tumbling windows",
			yaml: edit("  size: 1h\n", "  size: 1h\n  slide: 15m\n  gap: 5m\n  max_open_sessions: 10\n"),
			want: []string{
				"sales.yaml:16: window.slide: is only used by hopping windows (kind is tumbling): remove it, or set kind: hopping",
				"sales.yaml:17: window.gap: is only used by session windows (kind is tumbling): remove it, or set kind: session",
				"sales.yaml:18: window.max_open_sessions: is only used by session windows (kind is tumbling)",
			},
		},
		{
			name: "session without key",
			yaml: session("  gap: 30m\n"),
			want: []string{"policies/sales.yaml: key: is required with session windows: a session is the events of one key (valid: a list of required string, int64, date or timestamp fields; candidates: order_id, created_at)"},
		},
		{
			name: "session with size, slide, no gap",
			yaml: session("  size: 1h\n  slide: 1m\n") + "key: [order_id]\n",
			want: []string{
				"sales.yaml:16: window.size: must be empty for session windows: a session lasts from its first event to its last event + gap",
				"sales.yaml:14: window.gap: is required for session windows (a pause of gap or more between two events of a key starts a new session; e.g. 30m)",
				"sales.yaml:17: window.slide: is only used by hopping windows (kind is session)",
			},
		},
		{
			name: "session gap and cap out of range",
			yaml: session("  gap: 500ms\n  max_open_sessions: 20000000\n") + "key: [order_id]\n",
			want: []string{
				"sales.yaml:16: window.gap: 500ms is too short (valid: at least 1s, e.g. 30m)",
				"sales.yaml:17: window.max_open_sessions: 20000000 is out of range (valid: 1..10000000; absent or 0 means 100000)",
			},
		},
		{
			name: "negative gap",
			yaml: session("  gap: -5m\n") + "key: [order_id]\n",
			want: []string{"sales.yaml:16: window.gap: -5m0s must be positive"},
		},
		{
			name: "bad key fields",
			yaml: edit(addField, moreFields) + "key: [nope, amount, note, order_id, order_id, \"\"]\n",
			want: []string{
				`sales.yaml:22: key[0]: "nope" is not a field of the schema (valid: a required string, int64, date or timestamp field; candidates: order_id, created_at, day, n)`,
				`sales.yaml:22: key[1]: "amount" is a float64 field, which has no stable text form for a key (valid: a required string, int64, date or timestamp field; candidates: order_id, created_at, day, n)`,
				`sales.yaml:22: key[2]: "note" must be a required field (a key value cannot be null): set required: true on schema.fields[3]`,
				`sales.yaml:22: key[4]: "order_id" is listed twice (also key[3])`,
				`sales.yaml:22: key[5]: is empty (valid: the name of a required string, int64, date or timestamp field; candidates: order_id, created_at, day, n)`,
			},
		},
		{
			name: "good key types",
			yaml: edit(addField, moreFields) + "key:\n  - order_id\n  - day\n  - n\n  - created_at\n",
		},
		{
			name: "too many key fields",
			yaml: basePolicy + "key: [a, b, c, d, e, f, g, h, i]\n",
			want: []string{"sales.yaml:18: key: 9 fields is too many (valid: at most 8)"},
			n:    10,
		},
		{
			name: "key is a list",
			yaml: basePolicy + "key: order_id\n",
			want: []string{"sales.yaml:18: key: must be a list, not a scalar"},
		},
		{
			name: "key caps without key",
			yaml: basePolicy + "max_keys_per_window: 10\nkey_overflow: dlq\n",
			want: []string{
				"sales.yaml:18: max_keys_per_window: is only used with key: name the key fields, or remove it",
				"sales.yaml:19: key_overflow: is only used with key: name the key fields, or remove it",
			},
		},
		{
			name: "key caps out of range",
			yaml: basePolicy + "key: [order_id]\nmax_keys_per_window: 2000000\nkey_overflow: drop\n",
			want: []string{
				"sales.yaml:19: max_keys_per_window: 2000000 is out of range (valid: 1..1000000; absent or 0 means 10000)",
				`sales.yaml:20: key_overflow: "drop" is not a key overflow mode (valid: dlq, error)`,
			},
		},
		{
			name: "negative max_keys_per_window",
			yaml: basePolicy + "key: [order_id]\nmax_keys_per_window: -1\n",
			want: []string{"sales.yaml:19: max_keys_per_window: -1 is out of range"},
		},
		{
			name: "max_keys_per_window on session windows",
			yaml: session("  gap: 30m\n") + "key: [order_id]\nmax_keys_per_window: 10\n",
			want: []string{"sales.yaml:20: max_keys_per_window: is not used by session windows: each session has one key, and window.max_open_sessions caps them"},
		},
		{
			name: "unknown top-level key lists the key fields",
			yaml: basePolicy + "keys: [order_id]\n",
			want: []string{"sales.yaml:18: keys: unknown field (valid: name, description, source, schema, time, window, segment, output, load, sla, window_history, key, max_keys_per_window, key_overflow)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy(file, []byte(tt.yaml))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("ParsePolicy: %v\n%s", err, tt.yaml)
				}
				if err := p.Validate(); err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPolicy) || p != nil {
				t.Fatalf("ParsePolicy = %v, %v; want ErrInvalidPolicy", p, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q; got:\n%v", w, err)
				}
			}
			want := tt.n
			if want == 0 {
				want = len(tt.want)
			}
			if n := len(problemsOf(err)); n != want {
				t.Errorf("got %d problems, want %d:\n%v", n, want, err)
			}
		})
	}
}

func TestParsePolicyNewFieldsValues(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte(edit("  size: 1h\n", "  kind: hopping\n  size: 24h\n  slide: 1h\n")+"key: [order_id]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Window.Kind != Hopping || p.Window.Slide.D() != time.Hour || !slices.Equal(p.Key, []string{"order_id"}) ||
		p.KeyLimit() != DefaultMaxKeysPerWindow || p.KeyOverflowMode() != KeyOverflowDLQ {
		t.Errorf("unexpected policy: %+v", p)
	}
	a, err := NewWindowAssigner(p.Window)
	if err != nil || a.WindowsPerEvent() != 24 {
		t.Errorf("NewWindowAssigner = %v, %v", a, err)
	}
	p, err = ParsePolicy("p.yaml", []byte(edit("  size: 1h\n", "  kind: session\n  gap: 30m\n")+"key: [order_id]\nkey_overflow: error\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Window.SessionLimit() != DefaultMaxOpenSessions || p.KeyOverflowMode() != KeyOverflowError {
		t.Errorf("unexpected policy: %+v", p)
	}
	if _, err := NewSessions(p.Window); err != nil {
		t.Errorf("NewSessions: %v", err)
	}
	// A tumbling policy's encodings do not change: the new fields are omitted when empty.
	p, err = ParsePolicy("p.yaml", []byte(basePolicy))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"slide", "gap", "max_open_sessions", "key", "max_keys_per_window", "key_overflow"} {
		if s := p.Window.Kind; s != Tumbling {
			t.Fatalf("kind %s", s)
		}
		if fieldSet(p, f) {
			t.Errorf("%s is set on a tumbling policy without it", f)
		}
	}
}

func fieldSet(p *Policy, name string) bool {
	switch name {
	case "slide":
		return p.Window.Slide != 0
	case "gap":
		return p.Window.Gap != 0
	case "max_open_sessions":
		return p.Window.MaxOpenSessions != 0
	case "key":
		return len(p.Key) != 0
	case "max_keys_per_window":
		return p.MaxKeysPerWindow != 0
	}
	return p.KeyOverflow != ""
}
