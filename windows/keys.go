package windows

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KeyOverflow says what happens to an event that would take a window past
// max_keys_per_window, or a session policy past window.max_open_sessions.
type KeyOverflow string

const (
	// KeyOverflowDLQ sends the event to the dead-letter stream with reason
	// ReasonKeyOverflow (or ReasonSessionOverflow); the window goes on.
	KeyOverflowDLQ KeyOverflow = "dlq"
	// KeyOverflowError refuses the event with ErrKeyOverflow (or
	// ErrSessionOverflow): the caller stops the policy instead of dropping data.
	KeyOverflowError KeyOverflow = "error"
)

// Key defaults and limits checked by Validate.
const (
	// DefaultMaxKeysPerWindow is max_keys_per_window when it is 0 or absent.
	DefaultMaxKeysPerWindow = 10_000
	// MaxMaxKeysPerWindow is the largest max_keys_per_window.
	MaxMaxKeysPerWindow = 1_000_000
	// MaxKeyFields caps the fields of key (and so the depth of KeyPath).
	MaxKeyFields = 8
	// DefaultKeyOverflow is key_overflow when it is absent.
	DefaultKeyOverflow = KeyOverflowDLQ

	validKeyTypesList = "string, int64, date or timestamp"
)

// Dead-letter reasons for the key caps. The messages package owns the DLQ
// reason list; these are the strings it is to use.
const (
	// ReasonKeyOverflow: the event's window already holds max_keys_per_window
	// distinct keys and the event brings a new one.
	ReasonKeyOverflow = "key_overflow"
	// ReasonSessionOverflow: window.max_open_sessions sessions are open and
	// the event would start another.
	ReasonSessionOverflow = "session_overflow"
)

// ErrKeyOverflow is returned by (*WindowKeys).Admit for a key over the cap.
var ErrKeyOverflow = errors.New("too many distinct keys in the window (max_keys_per_window)")

// KeyLimit returns MaxKeysPerWindow, or DefaultMaxKeysPerWindow when it is 0.
func (p *Policy) KeyLimit() int {
	if p.MaxKeysPerWindow == 0 {
		return DefaultMaxKeysPerWindow
	}
	return p.MaxKeysPerWindow
}

// KeyOverflowMode returns KeyOverflow, or DefaultKeyOverflow when it is empty.
func (p *Policy) KeyOverflowMode() KeyOverflow {
	if p.KeyOverflow == "" {
		return DefaultKeyOverflow
	}
	return p.KeyOverflow
}

// keyProblems checks key, max_keys_per_window and key_overflow.
func (p *Policy) keyProblems() []*FieldError {
	var ps problems
	candidates := candidateList(p.keyCandidates())
	if len(p.Key) > MaxKeyFields {
		ps.add("key", "%d fields is too many (valid: at most %d)", len(p.Key), MaxKeyFields)
	}
	seen := make(map[string]int, len(p.Key))
	for i, name := range p.Key {
		path := fmt.Sprintf("key[%d]", i)
		j := p.FieldIndex(name)
		switch {
		case name == "":
			ps.add(path, "is empty (valid: the name of a required %s field%s)", validKeyTypesList, candidates)
		case j < 0:
			ps.add(path, "%q is not a field of the schema (valid: a required %s field%s)", name, validKeyTypesList, candidates)
		case !isKeyType(p.Schema.Fields[j].Type):
			ps.add(path, "%q is a %s field, which has no stable text form for a key (valid: a required %s field%s)", name, string(p.Schema.Fields[j].Type), validKeyTypesList, candidates)
		case !p.Schema.Fields[j].Required:
			ps.add(path, "%q must be a required field (a key value cannot be null): set required: true on schema.fields[%d]", name, j)
		default:
			if k, dup := seen[name]; dup {
				ps.add(path, "%q is listed twice (also key[%d])", name, k)
				continue
			}
			seen[name] = i
		}
	}
	if p.Window.Kind == SessionWindows && len(p.Key) == 0 {
		ps.add("key", "is required with session windows: a session is the events of one key (valid: a list of required %s fields%s)", validKeyTypesList, candidates)
	}

	switch n := p.MaxKeysPerWindow; {
	case n == 0:
	case p.Window.Kind == SessionWindows:
		ps.add("max_keys_per_window", "is not used by session windows: each session has one key, and window.max_open_sessions caps them")
	case len(p.Key) == 0:
		ps.add("max_keys_per_window", "is only used with key: name the key fields, or remove it")
	case n < 1 || n > MaxMaxKeysPerWindow:
		ps.add("max_keys_per_window", "%d is out of range (valid: 1..%d; absent or 0 means %d)", n, MaxMaxKeysPerWindow, DefaultMaxKeysPerWindow)
	}

	switch p.KeyOverflow {
	case "":
	case KeyOverflowDLQ, KeyOverflowError:
		if len(p.Key) == 0 {
			ps.add("key_overflow", "is only used with key: name the key fields, or remove it")
		}
	default:
		ps.add("key_overflow", "%q is not a key overflow mode (valid: dlq, error)", string(p.KeyOverflow))
	}
	return ps
}

func isKeyType(t FieldType) bool {
	switch t {
	case TypeString, TypeInt64, TypeDate, TypeTimestamp:
		return true
	}
	return false
}

// keyCandidates returns the fields that could be key fields.
func (p *Policy) keyCandidates() []string {
	var names []string
	for _, f := range p.Schema.Fields {
		if f.Name != "" && f.Required && isKeyType(f.Type) {
			names = append(names, f.Name)
		}
	}
	return names
}

// KeyInt64 is the key text of an int64 value: decimal, e.g. "-42".
func KeyInt64(v int64) string { return strconv.FormatInt(v, 10) }

// KeyDate is the key text of a date value (days since 1970-01-01): "2006-01-02".
func KeyDate(days int64) string {
	return time.Unix(days*86400, 0).UTC().Format(time.DateOnly)
}

// KeyTimestamp is the key text of a timestamp value (microseconds since the
// epoch): RFC 3339 in UTC with exactly six fraction digits,
// "2006-01-02T15:04:05.000000Z".
func KeyTimestamp(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000000Z")
}

// KeyPath returns the Hive-style path of one key tuple: one "field=value/"
// segment per key field, in the order of p.Key, e.g. "store_id=042/" or
// "store_id=042/day=2026-03-08/". values[i] is the text of p.Key[i]'s value:
// a string as is, other types as KeyInt64, KeyDate and KeyTimestamp write them.
// It returns "" when the policy has no key, and panics when len(values) is not
// len(p.Key) (a bug in the caller, like an index out of range).
//
// Values are escaped so that the path is safe to append to a directory or an
// object prefix: every byte other than A-Z, a-z, 0-9, '_' and '-' is written as
// %XX (uppercase hex), as Hive escapes partition values. So the result is
// ASCII without '.', '\', '/' (except after each segment), NUL or control
// characters; no segment is "." or ".."; it cannot escape the directory it is
// appended to; and distinct tuples give distinct paths (ParseKeyPath reads a
// path back). An empty value is "field=".
//
// The same string is the canonical form of a key tuple, e.g. for WindowKeys.
func (p *Policy) KeyPath(values []string) string {
	if len(values) != len(p.Key) {
		panic(fmt.Sprintf("windows: KeyPath got %d values for the %d key fields %v", len(values), len(p.Key), p.Key))
	}
	n := 0
	for i, v := range values {
		n += len(p.Key[i]) + 2 + len(v)
	}
	var b strings.Builder
	b.Grow(n)
	for i, v := range values {
		b.WriteString(p.Key[i])
		b.WriteByte('=')
		escapeKeyValue(&b, v)
		b.WriteByte('/')
	}
	return b.String()
}

// ParseKeyPath reads the values back from a path that KeyPath wrote for p.
func (p *Policy) ParseKeyPath(path string) ([]string, error) {
	bad := func(format string, args ...any) ([]string, error) {
		return nil, fmt.Errorf("key path %q: %s", path, fmt.Sprintf(format, args...))
	}
	if len(p.Key) == 0 {
		if path != "" {
			return bad("the policy has no key")
		}
		return []string{}, nil
	}
	rest, ok := strings.CutSuffix(path, "/")
	if !ok {
		return bad("does not end with '/'")
	}
	segs := strings.Split(rest, "/")
	if len(segs) != len(p.Key) {
		return bad("%d segments, want %d (%s)", len(segs), len(p.Key), strings.Join(p.Key, ", "))
	}
	values := make([]string, len(segs))
	for i, seg := range segs {
		v, ok := strings.CutPrefix(seg, p.Key[i]+"=")
		if !ok {
			return bad("segment %d is %q, want %s=<value>", i, seg, p.Key[i])
		}
		u, err := unescapeKeyValue(v)
		if err != nil {
			return bad("segment %d: %v", i, err)
		}
		values[i] = u
	}
	return values, nil
}

const upperHex = "0123456789ABCDEF"

func keyByteSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func escapeKeyValue(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if keyByteSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

func unescapeKeyValue(v string) (string, error) {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case keyByteSafe(c):
			b.WriteByte(c)
		case c == '%' && i+2 < len(v) && isUpperHex(v[i+1]) && isUpperHex(v[i+2]):
			hi := strings.IndexByte(upperHex, v[i+1])
			lo := strings.IndexByte(upperHex, v[i+2])
			u := byte(hi<<4 | lo)
			if keyByteSafe(u) {
				return "", fmt.Errorf("%%%c%c escapes a byte that is never escaped", v[i+1], v[i+2])
			}
			b.WriteByte(u)
			i += 2
		default:
			return "", fmt.Errorf("byte %q at %d is neither safe nor a %%XX escape", c, i)
		}
	}
	return b.String(), nil
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

// WindowKeys counts the distinct key tuples of one window against
// max_keys_per_window. Keys are KeyPath strings. It is not safe for concurrent use.
type WindowKeys struct {
	max  int
	keys map[string]struct{}
}

// NewWindowKeys returns an empty set that admits at most max distinct keys
// (use Policy.KeyLimit); max < 1 admits none.
func NewWindowKeys(max int) *WindowKeys {
	return &WindowKeys{max: max, keys: map[string]struct{}{}}
}

// Admit records key and returns nil, or returns an error matching
// ErrKeyOverflow, without recording it, when key is new and the window already
// holds max keys. A key seen before is always admitted.
func (k *WindowKeys) Admit(key string) error {
	if _, ok := k.keys[key]; ok {
		return nil
	}
	if len(k.keys) >= k.max {
		return fmt.Errorf("%w: the window already holds %d keys", ErrKeyOverflow, len(k.keys))
	}
	k.keys[key] = struct{}{}
	return nil
}

// Len returns the number of distinct keys admitted.
func (k *WindowKeys) Len() int { return len(k.keys) }
