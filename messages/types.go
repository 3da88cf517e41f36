package messages

import (
	"errors"
	"fmt"
	"time"
)

// Message is implemented by every contract type.
type Message interface {
	// Type is the versioned type name carried in HeaderType.
	Type() string
	// MsgID is the JetStream deduplication id of this message.
	MsgID() string
	// Validate reports every problem with the message at once.
	Validate() error
}

// Type names. The suffix is the contract version.
const (
	TypeSegmentRegistered = "windrow.SegmentRegistered.v1"
	TypeWindowSealed      = "windrow.WindowSealed.v1"
	TypeLoadCommand       = "windrow.LoadCommand.v1"
	TypeLoadResult        = "windrow.LoadResult.v1"
	TypeBatchManifest     = "windrow.BatchManifest.v1"
)

var (
	_ Message = (*SegmentRegistered)(nil)
	_ Message = (*WindowSealed)(nil)
	_ Message = (*LoadCommand)(nil)
	_ Message = (*LoadResult)(nil)
	_ Message = (*BatchManifest)(nil)
)

// Column describes one column of a batch, as the loader creates it.
type Column struct {
	Name string `json:"name"`
	// Type is the policy type: a scalar windows.FieldType ("int64",
	// "timestamp", …, "decimal(12,2)"), or the spelled-out nested type
	// ("object<a:int64,b:string>", "list<int64>"); "int64"/"timestamp" for
	// lineage columns.
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
}

// SegmentRegistered says that a collector staged a Parquet segment of one
// window. The segment is durable in the object store before this is published.
type SegmentRegistered struct {
	Policy        string    `json:"policy"`
	PolicyVersion uint64    `json:"policy_version"`
	WindowStart   time.Time `json:"window_start"`
	WindowEnd     time.Time `json:"window_end"`
	SegmentID     string    `json:"segment_id"`
	Object        string    `json:"object"` // object store key of the segment file
	Rows          int64     `json:"rows"`
	Bytes         int64     `json:"bytes"`
	// SHA256 is the hex SHA-256 of the segment file as its writer
	// committed it; the compactor verifies it before reading the rows.
	// Registrations from before it was recorded have none.
	SHA256       string    `json:"sha256,omitempty"`
	MinSourceSeq uint64    `json:"min_source_seq"`
	MaxSourceSeq uint64    `json:"max_source_seq"`
	MinEventTime time.Time `json:"min_event_time"`
	MaxEventTime time.Time `json:"max_event_time"`
	// WatermarkTime is the newest event time the segment offers the
	// policy's watermark: each event's time capped at its ingest time, so
	// that events from a clock that runs ahead do not move the watermark
	// past the present. Zero in registrations from before it was recorded:
	// MaxEventTime counts then.
	WatermarkTime time.Time `json:"watermark_time,omitzero"`
	// WatermarkSeq, when set (above MaxSourceSeq), is the source sequence
	// the collectors' ack floor must reach before WatermarkTime counts: the
	// collector lowered the segment's offer to the quorum of its recent
	// events (a segment of events from a clock that runs ahead), which
	// speaks for events up to that sequence, not only the segment's.
	WatermarkSeq uint64    `json:"watermark_seq,omitempty"`
	Collector    string    `json:"collector"`
	CreatedAt    time.Time `json:"created_at"`
	// TraceParent links the segment's span for the window run (W3C traceparent), optional.
	TraceParent string `json:"traceparent,omitempty"`
}

func (m *SegmentRegistered) Type() string { return TypeSegmentRegistered }

// WatermarkFeed is the event time the segment feeds the watermark:
// WatermarkTime, or MaxEventTime when it is not recorded.
func (m *SegmentRegistered) WatermarkFeed() time.Time {
	if m.WatermarkTime.IsZero() {
		return m.MaxEventTime
	}
	return m.WatermarkTime
}

// WatermarkGate is the source sequence the collectors' ack floor must
// reach before the registration's WatermarkFeed counts.
func (m *SegmentRegistered) WatermarkGate() uint64 { return max(m.MaxSourceSeq, m.WatermarkSeq) }

func (m *SegmentRegistered) MsgID() string { return "seg-" + m.SegmentID }
func (m *SegmentRegistered) Validate() error {
	var errs []error
	errs = append(errs, checkPolicyWindow(m.Policy, m.WindowStart, m.WindowEnd)...)
	if m.SegmentID == "" {
		errs = append(errs, errors.New("segment_id: empty"))
	}
	if m.Object == "" {
		errs = append(errs, errors.New("object: empty"))
	}
	if m.Rows <= 0 {
		errs = append(errs, fmt.Errorf("rows: %d, want > 0", m.Rows))
	}
	if m.MinSourceSeq == 0 || m.MaxSourceSeq < m.MinSourceSeq {
		errs = append(errs, fmt.Errorf("source seq range [%d, %d] is empty or reversed", m.MinSourceSeq, m.MaxSourceSeq))
	}
	if m.MaxEventTime.Before(m.MinEventTime) {
		errs = append(errs, errors.New("max_event_time before min_event_time"))
	}
	if m.SHA256 != "" && !isHexSHA256(m.SHA256) {
		errs = append(errs, fmt.Errorf("sha256: %q, want 64 hex digits", m.SHA256))
	}
	return wrap(m, errs)
}

// isHexSHA256 reports whether s is a SHA-256 digest in lower-case hex.
func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// WindowSealed announces that a window was sealed: its set of segments is final.
type WindowSealed struct {
	Policy        string    `json:"policy"`
	PolicyVersion uint64    `json:"policy_version"`
	WindowStart   time.Time `json:"window_start"`
	WindowEnd     time.Time `json:"window_end"`
	Revision      int       `json:"revision"`
	Watermark     time.Time `json:"watermark"`
	Segments      int64     `json:"segments"`
	// CutoffSeq is the WINDROW_SEGMENTS sequence of the last registration included.
	CutoffSeq uint64    `json:"cutoff_seq"`
	SealedAt  time.Time `json:"sealed_at"`
	// Idle is true when the window was closed by the idle rule rather than by event time.
	Idle bool `json:"idle,omitempty"`
}

func (m *WindowSealed) Type() string { return TypeWindowSealed }
func (m *WindowSealed) MsgID() string {
	return fmt.Sprintf("sealed-%s-%s-r%d", m.Policy, WindowID(m.WindowStart), m.Revision)
}
func (m *WindowSealed) Validate() error {
	errs := checkPolicyWindow(m.Policy, m.WindowStart, m.WindowEnd)
	if m.Revision < 0 {
		errs = append(errs, fmt.Errorf("revision: %d, want >= 0", m.Revision))
	}
	return wrap(m, errs)
}

// LoadCommand asks a loader to load one Parquet batch of a window. Its MsgID
// is the batch id, which is deterministic: a retried compaction publishes the
// same command and the stream keeps one.
type LoadCommand struct {
	BatchID       string    `json:"batch_id"`
	Policy        string    `json:"policy"`
	PolicyVersion uint64    `json:"policy_version"`
	WindowStart   time.Time `json:"window_start"`
	WindowEnd     time.Time `json:"window_end"`
	Revision      int       `json:"revision"`
	Part          int       `json:"part"`  // 0-based index of this batch in the window run
	Parts         int       `json:"parts"` // number of batches in the window run
	Table         string    `json:"table"`
	Mode          string    `json:"mode"`
	Object        string    `json:"object"` // object store key of the Parquet file
	Rows          int64     `json:"rows"`
	Bytes         int64     `json:"bytes"`
	SHA256        string    `json:"sha256"`
	Columns       []Column  `json:"columns"` // policy schema, in policy order, without lineage columns
	Manifest      string    `json:"manifest"`
	CreatedAt     time.Time `json:"created_at"`

	// In the modes replace and merge a command is a whole-window load:
	// every batch of the window run in one transaction, read from the
	// manifest (the list is never in the message, which has a size limit);
	// BatchID is WindowLoadID, Part is 0, Object, Bytes and SHA256 are
	// empty, Parts is the number of batches.
	// MergeKey: mode merge's key columns.
	MergeKey []string `json:"merge_key,omitempty"`
	// TimeColumn orders rows of one merge key (the newest event time wins,
	// then the highest source sequence); mode merge. Empty: by source
	// sequence alone (ingest-time policies).
	TimeColumn string `json:"time_column,omitempty"`
	// PostLoad: the policy's post-load SQL statements.
	PostLoad []string `json:"post_load,omitempty"`
	// Replay, when > 0, is the window's replay number (`windrow replay`):
	// the loader replaces what an earlier load of the same batch id put in
	// the table instead of reporting a duplicate.
	Replay int `json:"replay,omitempty"`
}

func (m *LoadCommand) Type() string { return TypeLoadCommand }
func (m *LoadCommand) MsgID() string {
	if m.Replay > 0 {
		return fmt.Sprintf("%s-replay%d", m.BatchID, m.Replay)
	}
	return m.BatchID
}

// WholeWindow reports whether the command loads every batch of its window
// run at once, from its manifest (modes replace and merge).
func (m *LoadCommand) WholeWindow() bool { return m.Mode == "replace" || m.Mode == "merge" }

func (m *LoadCommand) Validate() error {
	errs := checkPolicyWindow(m.Policy, m.WindowStart, m.WindowEnd)
	want := BatchID(m.Policy, m.WindowStart, m.Revision, m.Part)
	if m.WholeWindow() {
		want = WindowLoadID(m.Policy, m.WindowStart, m.Revision)
	}
	if m.BatchID == "" {
		errs = append(errs, errors.New("batch_id: empty"))
	} else if m.BatchID != want {
		errs = append(errs, fmt.Errorf("batch_id: %q, want %q", m.BatchID, want))
	}
	if m.Parts < 1 || m.Part < 0 || m.Part >= m.Parts {
		errs = append(errs, fmt.Errorf("part %d of %d is out of range", m.Part, m.Parts))
	}
	if m.Table == "" {
		errs = append(errs, errors.New("table: empty"))
	}
	if m.Mode == "" {
		errs = append(errs, errors.New("mode: empty"))
	}
	switch {
	case m.WholeWindow():
		if m.Object != "" {
			errs = append(errs, errors.New("object: set on a whole-window load (the manifest names the files)"))
		}
		if m.Manifest == "" {
			errs = append(errs, errors.New("manifest: empty on a whole-window load"))
		}
	case m.Object == "":
		errs = append(errs, errors.New("object: empty"))
	}
	if m.Mode == "merge" && len(m.MergeKey) == 0 {
		errs = append(errs, errors.New("merge_key: required with mode merge"))
	}
	if m.Rows < 0 {
		errs = append(errs, fmt.Errorf("rows: %d, want >= 0", m.Rows))
	}
	if len(m.Columns) == 0 {
		errs = append(errs, errors.New("columns: empty"))
	}
	return wrap(m, errs)
}

// LoadStatus is the outcome of a load.
type LoadStatus string

const (
	// LoadLoaded: the batch's rows and its ledger row committed.
	LoadLoaded LoadStatus = "loaded"
	// LoadDuplicate: the ledger already had the batch; nothing was loaded again.
	LoadDuplicate LoadStatus = "duplicate"
	// LoadFailed: the batch could not be loaded and was given up (poison).
	LoadFailed LoadStatus = "failed"
)

// LoadResult reports the outcome of one LoadCommand.
type LoadResult struct {
	BatchID     string     `json:"batch_id"`
	Policy      string     `json:"policy"`
	WindowStart time.Time  `json:"window_start"`
	WindowEnd   time.Time  `json:"window_end"`
	Revision    int        `json:"revision"`
	Part        int        `json:"part"`
	Parts       int        `json:"parts"`
	Table       string     `json:"table"`
	Status      LoadStatus `json:"status"`
	Rows        int64      `json:"rows"`
	// BatchRows are the rows of the batch as compacted (the command's
	// rows); the window counts them as loaded.
	BatchRows int64         `json:"batch_rows"`
	Error     string        `json:"error,omitempty"`
	Duration  time.Duration `json:"duration_ns"`
	LoadedAt  time.Time     `json:"loaded_at"`
	Loader    string        `json:"loader"`
	Replay    int           `json:"replay,omitempty"` // the command's replay number
}

func (m *LoadResult) Type() string { return TypeLoadResult }
func (m *LoadResult) MsgID() string {
	if m.Replay > 0 {
		return fmt.Sprintf("result-%s-replay%d-%s", m.BatchID, m.Replay, m.Status)
	}
	return "result-" + m.BatchID + "-" + string(m.Status)
}
func (m *LoadResult) Validate() error {
	errs := checkPolicyWindow(m.Policy, m.WindowStart, m.WindowEnd)
	if m.BatchID == "" {
		errs = append(errs, errors.New("batch_id: empty"))
	}
	switch m.Status {
	case LoadLoaded, LoadDuplicate:
	case LoadFailed:
		if m.Error == "" {
			errs = append(errs, errors.New("error: empty for a failed load"))
		}
	default:
		errs = append(errs, fmt.Errorf("status: %q, want loaded, duplicate or failed", m.Status))
	}
	return wrap(m, errs)
}

// BatchRef describes one final Parquet batch of a window run.
type BatchRef struct {
	BatchID string `json:"batch_id"`
	Object  string `json:"object"`
	Rows    int64  `json:"rows"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
	// Key is the key path ("store_id=042/") of a batch of one key's rows:
	// a key large enough for files of its own (see decision 0015). Empty
	// for a shared batch and without a key.
	Key string `json:"key,omitempty"`
	// Keys are the key paths of a shared batch's rows, in key order: the
	// keys too small for files of their own, grouped (policies with key,
	// not session windows). A later revision keeps them admitted under
	// max_keys_per_window.
	Keys []string `json:"keys,omitempty"`
}

// BatchManifest sits next to a window run's batch files and lists them.
type BatchManifest struct {
	Policy        string     `json:"policy"`
	PolicyVersion uint64     `json:"policy_version"`
	WindowStart   time.Time  `json:"window_start"`
	WindowEnd     time.Time  `json:"window_end"`
	Revision      int        `json:"revision"`
	Table         string     `json:"table"`
	Columns       []Column   `json:"columns"`
	Batches       []BatchRef `json:"batches"`
	// Prior are the earlier revisions' batches the run was made with (see
	// WindowState.PriorManifest); a later revision reads them from here.
	Prior      []BatchRef `json:"prior_batches,omitempty"`
	Rows       int64      `json:"rows"`
	Duplicates int64      `json:"duplicates"` // rows dropped because their source sequence was seen before
	Segments   int        `json:"segments"`
	CreatedAt  time.Time  `json:"created_at"`
}

func (m *BatchManifest) Type() string { return TypeBatchManifest }
func (m *BatchManifest) MsgID() string {
	return fmt.Sprintf("manifest-%s-%s-r%d", m.Policy, WindowID(m.WindowStart), m.Revision)
}
func (m *BatchManifest) Validate() error {
	errs := checkPolicyWindow(m.Policy, m.WindowStart, m.WindowEnd)
	var rows int64
	for i, b := range m.Batches {
		if want := BatchID(m.Policy, m.WindowStart, m.Revision, i); b.BatchID != want {
			errs = append(errs, fmt.Errorf("batches[%d].batch_id: %q, want %q", i, b.BatchID, want))
		}
		rows += b.Rows
	}
	if rows != m.Rows {
		errs = append(errs, fmt.Errorf("rows: %d, but batches add up to %d", m.Rows, rows))
	}
	return wrap(m, errs)
}

// WindowID is the stable id of a window: its start in UTC, "20060102T150405Z".
func WindowID(start time.Time) string { return start.UTC().Format(windowIDLayout) }

const windowIDLayout = "20060102T150405Z"

// ParseWindowID returns the start of the window with id id.
func ParseWindowID(id string) (time.Time, error) { return time.Parse(windowIDLayout, id) }

// BatchID is the deterministic id of a batch: the same window run always
// yields the same ids, so retries and replays are idempotent end to end.
func BatchID(policy string, windowStart time.Time, revision, part int) string {
	return fmt.Sprintf("%s-%s-r%d-p%04d", policy, WindowID(windowStart), revision, part)
}

// WindowLoadID is the id of a whole-window load (modes replace and merge):
// the ledger key and msg id of the run's one load command.
func WindowLoadID(policy string, windowStart time.Time, revision int) string {
	return fmt.Sprintf("%s-%s-r%d", policy, WindowID(windowStart), revision)
}

func checkPolicyWindow(policy string, start, end time.Time) []error {
	var errs []error
	if policy == "" {
		errs = append(errs, errors.New("policy: empty"))
	}
	if start.IsZero() || !end.After(start) {
		errs = append(errs, fmt.Errorf("window [%s, %s) is empty", start.Format(time.RFC3339), end.Format(time.RFC3339)))
	}
	return errs
}

func joinErrs(errs []error) error { return errors.Join(errs...) }

func wrap(m Message, errs []error) error {
	if err := joinErrs(errs); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, m.Type(), err)
	}
	return nil
}
