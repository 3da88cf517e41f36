package windows

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FieldType is the type of one schema field. The set is closed: the decoder,
// the Parquet encoder and every warehouse map each of these explicitly.
// Decimals carry their precision and scale in the name: "decimal(12,2)"
// (see FieldType.Decimal).
type FieldType string

const (
	TypeString  FieldType = "string"
	TypeInt64   FieldType = "int64"
	TypeFloat64 FieldType = "float64"
	TypeBool    FieldType = "bool"
	// TypeTimestamp is a timestamp with time zone: an instant, stored as
	// microseconds since the Unix epoch, UTC-adjusted.
	TypeTimestamp FieldType = "timestamp"
	TypeDate      FieldType = "date" // days since the Unix epoch
	// TypeDecimal is the prefix of "decimal(P,S)": an exact number of P
	// significant digits (1..MaxDecimalPrecision), S (0..P) of them after
	// the point.
	TypeDecimal FieldType = "decimal"
	// TypeObject is a nested JSON object; Field.Fields lists its members.
	TypeObject FieldType = "object"
	// TypeList is a JSON array; Field.Items is the type of its elements.
	TypeList FieldType = "list"
)

// Limits of nested and decimal types.
const (
	// MaxDecimalPrecision is the largest precision of a decimal field
	// (the largest DuckDB, Spark and PostgreSQL's numeric loaders share).
	MaxDecimalPrecision = 38
	// MaxNestingDepth caps how many object and list levels a field nests:
	// an object of lists of objects is 3.
	MaxNestingDepth = 4
	// MaxFromLen is the longest JSON key a field may read (Field.From).
	MaxFromLen = 256
)

// Decimal returns the precision and scale of a "decimal(P,S)" type; ok is
// false for any other type, or a decimal with P or S not in range (P in
// 1..MaxDecimalPrecision, S in 0..P). Spaces around P and S are allowed;
// Canonical removes them.
func (t FieldType) Decimal() (precision, scale int, ok bool) {
	s, found := strings.CutPrefix(string(t), string(TypeDecimal)+"(")
	if !found {
		return 0, 0, false
	}
	s, found = strings.CutSuffix(s, ")")
	ps, ss, comma := strings.Cut(s, ",")
	if !found || !comma {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(strings.TrimSpace(ps))
	sc, err2 := strconv.Atoi(strings.TrimSpace(ss))
	if err1 != nil || err2 != nil || p < 1 || p > MaxDecimalPrecision || sc < 0 || sc > p {
		return 0, 0, false
	}
	return p, sc, true
}

// IsDecimal reports whether t is written as a decimal type, valid or not.
func (t FieldType) IsDecimal() bool {
	return t == TypeDecimal || strings.HasPrefix(string(t), string(TypeDecimal)+"(")
}

// IsNested reports whether t is an object or a list.
func (t FieldType) IsNested() bool { return t == TypeObject || t == TypeList }

// Canonical returns t in the form Columns and the warehouses use:
// "decimal(12,2)" for "decimal(12, 2)"; other types as they are.
func (t FieldType) Canonical() FieldType {
	if p, s, ok := t.Decimal(); ok {
		return FieldType(fmt.Sprintf("decimal(%d,%d)", p, s))
	}
	return t
}

// EpochUnit says how a JSON number in a timestamp field is read.
type EpochUnit string

const (
	UnitSeconds      EpochUnit = "s"
	UnitMilliseconds EpochUnit = "ms"
	UnitMicroseconds EpochUnit = "us"
	UnitNanoseconds  EpochUnit = "ns"
)

// TimeMode says where an event's time comes from.
type TimeMode string

const (
	// EventTime reads the time from a field of the event.
	EventTime TimeMode = "event"
	// IngestTime uses the JetStream message timestamp.
	IngestTime TimeMode = "ingest"
)

// LateMode says what happens to an event whose window is already sealed.
type LateMode string

const (
	LateDrop LateMode = "drop" // counted (a marker on the late subject), not loaded
	LateDLQ  LateMode = "dlq"  // the event goes to the dead-letter stream, reason "late"
	// LateRevise stages the event for a new revision of its window: once the
	// window is loaded, its late events are compacted into revision r+1 (after
	// window.revise_after), as its own batches, and loaded by the policy's load
	// mode: with replace the table ends up with the window's complete rows.
	LateRevise LateMode = "revise"
)

// LoadMode says how a window's batches are applied to the table.
type LoadMode string

const (
	// LoadAppend inserts each batch as it comes (one transaction per batch).
	LoadAppend LoadMode = "append"
	// LoadReplace replaces the window's rows in the table atomically: the
	// window's earlier loads (any revision) are deleted and all its batches
	// inserted in one transaction. Reloads and revisions are idempotent.
	LoadReplace LoadMode = "replace"
	// LoadMerge upserts on load.merge_key: rows of the table whose key
	// appears in the window are replaced by the window's rows (the newest
	// by event time per key), others kept; one transaction per window.
	LoadMerge LoadMode = "merge"
)

// LoadModes lists the load modes, for validation messages and docs.
var LoadModes = []LoadMode{LoadAppend, LoadReplace, LoadMerge}

// Compression names the Parquet page compression codec of final batches.
type Compression string

const (
	CompressZstd   Compression = "zstd"
	CompressSnappy Compression = "snappy"
	CompressGzip   Compression = "gzip"
	CompressNone   Compression = "none"
)

// WindowKind names the window shape.
type WindowKind string

const (
	// Tumbling windows tile time: each event is in exactly one window of window.size.
	Tumbling WindowKind = "tumbling"
	// Hopping windows of window.size start every window.slide: each event is in
	// size/slide windows (see HoppingAssigner).
	Hopping WindowKind = "hopping"
	// Session windows are per key: a session holds a key's events with pauses
	// shorter than window.gap (see Sessions).
	SessionWindows WindowKind = "session"
)

// Policy is one window policy: which events, which schema, which windows,
// where they go. It is the parsed, defaulted and validated form of a policy file.
type Policy struct {
	// Name identifies the policy: [a-z][a-z0-9_]{0,62}. Used in subjects, KV keys and paths.
	Name string `yaml:"name" json:"name"`
	// Version is assigned by the policy store (KV revision); 0 in a file.
	Version     uint64     `yaml:"-" json:"version,omitempty"`
	Description string     `yaml:"description,omitempty" json:"description,omitempty"`
	Source      Source     `yaml:"source" json:"source"`
	Schema      Schema     `yaml:"schema" json:"schema"`
	Time        TimeSpec   `yaml:"time" json:"time"`
	Window      WindowSpec `yaml:"window" json:"window"`
	Segment     Segment    `yaml:"segment" json:"segment"`
	Output      Output     `yaml:"output" json:"output"`
	Load        Load       `yaml:"load" json:"load"`
	SLA         SLA        `yaml:"sla" json:"sla"`

	// WindowHistory lists the window shapes the policy had before a change of
	// window.kind, size, slide or timezone, oldest first, each with the instant it
	// stopped applying (see PastShape). The policy store writes it when it stores
	// a shape change and keeps it when later files leave it out; it is not
	// written by hand.
	WindowHistory []PastShape `yaml:"window_history,omitempty" json:"window_history,omitempty"`

	// Key lists the schema fields that partition a window (required string, int64,
	// date or timestamp fields); empty means no key. Required by session windows.
	Key []string `yaml:"key,omitempty" json:"key,omitempty"`
	// MaxKeysPerWindow caps the distinct key tuples of one window (tumbling and
	// hopping). 0 means DefaultMaxKeysPerWindow; see KeyLimit.
	MaxKeysPerWindow int `yaml:"max_keys_per_window,omitempty" json:"max_keys_per_window,omitempty"`
	// KeyOverflow says what happens to an event over a key cap: "dlq" (reason
	// key_overflow or session_overflow) or "error". "" means dlq; see KeyOverflowMode.
	KeyOverflow KeyOverflow `yaml:"key_overflow,omitempty" json:"key_overflow,omitempty"`

	// loc caches Window.Timezone once loaded; set by SetDefaults and Validate,
	// read-only afterwards (see Location).
	loc *time.Location
}

// Source names the JetStream stream and the subjects a policy collects.
type Source struct {
	// Stream is the JetStream stream holding the events. Default "EVENTS".
	Stream string `yaml:"stream" json:"stream"`
	// Subjects are NATS subject filters (wildcards allowed), at least one.
	Subjects []string `yaml:"subjects" json:"subjects"`
}

// Schema is the flat record schema of a policy.
type Schema struct {
	Fields []Field `yaml:"fields" json:"fields"`
}

// Field is one column, or one member of an object field, or (without a name)
// the elements of a list field.
type Field struct {
	// Name is the column name, and the JSON key unless From is set:
	// [a-z_][a-z0-9_]{0,62}, not starting with "_w" (top level). Empty for Items.
	Name string    `yaml:"name,omitempty" json:"name,omitempty"`
	Type FieldType `yaml:"type" json:"type"`
	// Required fields must be present and not null (or have a Default);
	// others are nullable.
	Required bool `yaml:"required,omitempty" json:"required,omitempty"`
	// Unit reads JSON numbers in a timestamp field. Default "ms". Strings are RFC 3339.
	Unit EpochUnit `yaml:"unit,omitempty" json:"unit,omitempty"`
	// From is the JSON key read into this field when it is not Name: any
	// string of 1..MaxFromLen bytes, e.g. "storeId".
	From string `yaml:"from,omitempty" json:"from,omitempty"`
	// Default is the value of a missing or null field, as text that reads as
	// Type ("web", "0", "12.50", "2026-01-01"); scalar types only. A
	// required field with a default never fails as missing.
	Default *string `yaml:"default,omitempty" json:"default,omitempty"`
	// Fields are the members of an object field (type object only).
	Fields []Field `yaml:"fields,omitempty" json:"fields,omitempty"`
	// Items is the type of a list field's elements (type list only).
	Items Items `yaml:"items,omitempty" json:"items,omitzero"`
}

// Key is the JSON key the field is read from: From, or else Name.
func (f *Field) Key() string {
	if f.From != "" {
		return f.From
	}
	return f.Name
}

// Items is the element type of a list field: a Field without a name, e.g.
// {type: int64} or {type: object, fields: [...]}. Of is nil when absent.
type Items struct{ Of *Field }

// UnmarshalYAML reads the element field strictly (unknown keys are errors).
func (it *Items) UnmarshalYAML(n *yaml.Node) error {
	w := &walker{lines: map[string]int{}}
	var f Field
	w.walk("", n, reflect.ValueOf(&f).Elem())
	if len(w.errs) > 0 {
		msgs := make([]string, len(w.errs))
		for i, e := range w.errs {
			e.Line = 0
			msgs[i] = e.Error()
		}
		return &valueError{strings.Join(msgs, "; ")}
	}
	it.Of = &f
	return nil
}

// MarshalYAML writes the element field.
func (it Items) MarshalYAML() (any, error) { return it.Of, nil }

// MarshalJSON writes the element field, or null.
func (it Items) MarshalJSON() ([]byte, error) { return json.Marshal(it.Of) }

// UnmarshalJSON reads the element field.
func (it *Items) UnmarshalJSON(b []byte) error {
	var f *Field
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	it.Of = f
	return nil
}

// TimeSpec says where event time comes from.
type TimeSpec struct {
	// Mode is "event" (default) or "ingest".
	Mode TimeMode `yaml:"mode" json:"mode"`
	// Field is the name of a required timestamp field; required in event mode, empty in ingest mode.
	Field string `yaml:"field,omitempty" json:"field,omitempty"`
}

// WindowSpec describes windows and lateness.
type WindowSpec struct {
	// Kind is "tumbling" (default), "hopping" or "session".
	Kind WindowKind `yaml:"kind" json:"kind"`
	// Size of a window, > 0, at least 1s, whole seconds. Tumbling: windows that divide a day (or are
	// whole days) align to midnight in Timezone. Hopping: a whole multiple of Slide (at most
	// MaxHoppingWindowsPerEvent times it). Session: must be empty.
	Size Duration `yaml:"size" json:"size"`
	// Slide is how far apart hopping windows start (hopping only): at least 1s, whole seconds,
	// dividing 24h or whole days (so windows align like tumbling windows of this size), at most Size.
	Slide Duration `yaml:"slide,omitempty" json:"slide,omitempty"`
	// Gap ends a session (session only): a pause of Gap or more between two events of a key
	// starts a new session. At least 1s.
	Gap Duration `yaml:"gap,omitempty" json:"gap,omitempty"`
	// Timezone is an IANA zone name used to align boundaries. Default "UTC".
	Timezone string `yaml:"timezone" json:"timezone"`
	// MaxOutOfOrder bounds how far behind the newest event another event may be and still be on time. Default 1m.
	MaxOutOfOrder Duration `yaml:"max_out_of_order" json:"max_out_of_order"`
	// AllowedLateness keeps a window open this long after the watermark passed its end. Default 0.
	AllowedLateness Duration `yaml:"allowed_lateness" json:"allowed_lateness"`
	// Late says what happens to events for a sealed window: "drop" (default, counted), "dlq"
	// (dead-lettered, reason "late") or "revise" (loaded as a new revision of the window).
	Late LateMode `yaml:"late" json:"late"`
	// ReviseAfter (late: revise only) is how long a loaded window's late events gather before
	// they are compacted into its next revision, counted from the first of them. Default 1m,
	// 1s..24h.
	ReviseAfter Duration `yaml:"revise_after,omitempty" json:"revise_after,omitempty"`
	// EarlyEvery (late: revise only) loads a window early, before it closes: its first batches
	// once its first segment is this old, then, until the window closes, a revision with the
	// events staged since every EarlyEvery. 0 (default): off; else 1s..24h.
	EarlyEvery Duration `yaml:"early_every,omitempty" json:"early_every,omitempty"`
	// EarlyRows (late: revise only) loads a window early once this many rows are staged for it
	// (its first batches, then a revision each time that many more are staged), before it
	// closes. 0 (default): off; else 1000..1,000,000,000.
	EarlyRows int64 `yaml:"early_rows,omitempty" json:"early_rows,omitempty"`
	// IdleTimeout: once the source has had nothing pending or in flight this long, the
	// watermark advances by the time elapsed since it went idle (never past now -
	// MaxOutOfOrder); a flush request applies after this long idle. Default 30s.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// FutureHorizon: events later than ingest time + this go to the DLQ with reason "future". Default 24h.
	FutureHorizon Duration `yaml:"future_horizon" json:"future_horizon"`
	// Retain is how long a LOADED window's state is kept, counted both from its load (wall
	// clock) and from its end (behind the watermark); then the window is retired: its state is
	// deleted, its rows stay in the table and its batch files in the object store, and its
	// events arriving later are late (reason late) whatever late says, revise included.
	// 0 or absent (default) means DefaultRetain (7 days), or twice the minimum when that is
	// longer; else it must be longer than the window (the pane for session windows) plus
	// allowed_lateness, plus revise_after with late: revise (RetainMin); see RetainFor.
	Retain Duration `yaml:"retain,omitempty" json:"retain,omitempty"`
	// MaxOpenSessions caps the sessions open at once across all keys (session only).
	// 0 means DefaultMaxOpenSessions; see SessionLimit.
	MaxOpenSessions int `yaml:"max_open_sessions,omitempty" json:"max_open_sessions,omitempty"`
}

// Segment holds the collector's flush triggers; whichever is reached first flushes.
type Segment struct {
	MaxRows  int      `yaml:"max_rows" json:"max_rows"`   // default 100000, 1..10,000,000
	MaxBytes ByteSize `yaml:"max_bytes" json:"max_bytes"` // default 64MiB, 64KiB..1GiB (decoded size estimate)
	MaxAge   Duration `yaml:"max_age" json:"max_age"`     // default 5s, 100ms..(ack wait 30s)
}

// Output describes the final Parquet batches.
type Output struct {
	Compression    Compression `yaml:"compression" json:"compression"`           // default zstd
	TargetFileSize ByteSize    `yaml:"target_file_size" json:"target_file_size"` // default 128MiB, 1MiB..4GiB
	// MaxFileRows caps the rows of one batch file, besides target_file_size: a very large
	// window becomes more, smaller batches (each one load in mode append). 0 (default): no cap;
	// else 1000..1,000,000,000.
	MaxFileRows  int `yaml:"max_file_rows,omitempty" json:"max_file_rows,omitempty"`
	RowGroupSize int `yaml:"row_group_rows" json:"row_group_rows"` // default 122880 rows, 1000..10,000,000
	// SortBy lists field names; the batch is sorted by them, then by source sequence.
	// Default: the time field (event mode) or nothing (ingest mode).
	SortBy []string `yaml:"sort_by" json:"sort_by"`
}

// Load says where and how batches are loaded.
type Load struct {
	// Table is the target table name: [a-z_][a-z0-9_]{0,62}, optionally "schema.table".
	Table string   `yaml:"table" json:"table"`
	Mode  LoadMode `yaml:"mode" json:"mode"` // default append
	// MergeKey names the schema fields that identify a row for mode merge
	// (required there, refused otherwise): required fields, not the time field
	// unless it is part of the identity.
	MergeKey []string `yaml:"merge_key,omitempty" json:"merge_key,omitempty"`
	// PostLoad are SQL statements run after the rows, in the same
	// transaction, with the named parameters $window_start, $window_end
	// (TIMESTAMPTZ), $policy (VARCHAR) and $revision (INTEGER): e.g. keep a
	// rollup table of the loaded rows. In mode append they run after each
	// batch, so they must be idempotent per window (delete, then insert).
	// One statement per item. They run with the least rights the warehouse
	// offers: in PostgreSQL as the table's post-load role (windrow_pl_…),
	// which may query and change the table and the tables an operator
	// granted it, and nothing else; in DuckDB with no file access and only
	// SELECT, INSERT, UPDATE, DELETE and CREATE TABLE. No statement may
	// name _windrow… (the load ledger). Whoever may apply policies is
	// trusted with that: see docs/architecture.md, "Trust boundary".
	PostLoad []string `yaml:"post_load,omitempty" json:"post_load,omitempty"`
}

// SLA is the service level of a policy.
type SLA struct {
	// Deadline after window end by which the window should be loaded. 0 = none.
	Deadline Duration `yaml:"deadline" json:"deadline"`
}

// Duration is a time.Duration that reads and writes as a Go duration string ("5m", "24h", "1h30m").
type Duration time.Duration

// ByteSize is a size in bytes that reads "64MiB", "128MB", "1GiB", "512KiB" or a plain integer.
type ByteSize int64
