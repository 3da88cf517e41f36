package windows

import (
	"time"
)

// FieldType is the type of one schema field. The set is closed: the decoder,
// the Parquet encoder and every warehouse map each of these explicitly.
type FieldType string

const (
	TypeString    FieldType = "string"
	TypeInt64     FieldType = "int64"
	TypeFloat64   FieldType = "float64"
	TypeBool      FieldType = "bool"
	TypeTimestamp FieldType = "timestamp" // microseconds since the Unix epoch, UTC
	TypeDate      FieldType = "date"      // days since the Unix epoch
)

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

// Field is one column.
type Field struct {
	// Name is the JSON key and the column name: [a-z_][a-z0-9_]{0,62}, not starting with "_w".
	Name string    `yaml:"name" json:"name"`
	Type FieldType `yaml:"type" json:"type"`
	// Required fields must be present and not null; others are nullable.
	Required bool `yaml:"required,omitempty" json:"required,omitempty"`
	// Unit reads JSON numbers in a timestamp field. Default "ms". Strings are RFC 3339.
	Unit EpochUnit `yaml:"unit,omitempty" json:"unit,omitempty"`
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
	// Late says what happens to events for a sealed window: "drop" (default, counted) or "dlq".
	Late LateMode `yaml:"late" json:"late"`
	// IdleTimeout: once the source has had nothing pending or in flight this long, the
	// watermark follows the wall clock (now - MaxOutOfOrder). Default 30s.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// FutureHorizon: events later than ingest time + this go to the DLQ with reason "future". Default 24h.
	FutureHorizon Duration `yaml:"future_horizon" json:"future_horizon"`
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
	RowGroupSize   int         `yaml:"row_group_rows" json:"row_group_rows"`     // default 122880 rows, 1000..10,000,000
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
