package windows

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults applied by SetDefaults to fields left at their zero value.
const (
	DefaultStream          = "EVENTS"
	DefaultTimezone        = "UTC"
	DefaultMaxOutOfOrder   = Duration(time.Minute)
	DefaultAllowedLateness = Duration(0)
	DefaultIdleTimeout     = Duration(30 * time.Second)
	DefaultFutureHorizon   = Duration(24 * time.Hour)
	DefaultReviseAfter     = Duration(time.Minute)
	DefaultRetain          = Duration(7 * 24 * time.Hour)
	DefaultSegmentMaxRows  = 100_000
	DefaultSegmentMaxBytes = 64 * MiB
	DefaultSegmentMaxAge   = Duration(5 * time.Second)
	DefaultCompression     = CompressZstd
	DefaultTargetFileSize  = 128 * MiB
	DefaultRowGroupRows    = 122_880
	DefaultTimestampUnit   = UnitMilliseconds
)

// Limits checked by Validate.
const (
	MinSegmentMaxRows  = 1
	MaxSegmentMaxRows  = 10_000_000
	MinSegmentMaxBytes = 64 * KiB
	MaxSegmentMaxBytes = 1 * GiB
	MinSegmentMaxAge   = Duration(100 * time.Millisecond)
	// MaxSegmentMaxAge stays well below the collector consumer's ack wait (2m) so a segment is
	// flushed, and its messages acked, before JetStream redelivers them.
	MaxSegmentMaxAge   = Duration(30 * time.Second)
	MinReviseAfter     = Duration(time.Second)
	MinEarlyRows       = 1000
	MaxEarlyRows       = 1_000_000_000
	MaxReviseAfter     = Duration(24 * time.Hour)
	MinTargetFileSize  = 1 * MiB
	MaxTargetFileSize  = 4 * GiB
	MinMaxFileRows     = 1000
	MaxMaxFileRows     = 1_000_000_000
	MinRowGroupRows    = 1000
	MaxRowGroupRows    = 10_000_000
	MinWindowSize      = Duration(time.Second)
	MinIdleTimeout     = Duration(time.Second)
	maxNameLen         = 63
	lineagePrefix      = "_w"
	validTypesList     = "string, int64, float64, bool, timestamp, date"
	moreTypesNote      = "; exact and nested types: decimal(P,S), object, list"
	validUnitsList     = "s, ms, us, ns"
	validCompressList  = "zstd, snappy, gzip, none"
	nameRule           = "1-63 characters: a lowercase letter, then lowercase letters, digits or _"
	fieldNameRule      = "1-63 characters: a lowercase letter or _, then lowercase letters, digits or _"
	tableRule          = "table or schema.table, each part 1-63 characters of lowercase letters, digits or _, not starting with a digit"
	subjectFilterHint  = "tokens separated by '.', '*' matches one whole token, '>' the rest as the last token, no spaces; e.g. events.sales.>"
	windowSizeExamples = "e.g. 1m, 5m, 15m, 1h, 6h, 24h, 48h, 168h"
)

// LineageColumns are the columns windrow adds to every batch; no schema field may use these names.
var LineageColumns = []string{"_window_start", "_window_end", "_batch_id", "_source_seq", SessionStartField, SessionEndField}

var (
	policyNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	streamNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	fieldNameRE  = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	tableNameRE  = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$`)
)

// SetDefaults fills every field left at its zero value with its documented
// default, and caches the time zone when it loads. Call it before Validate; it is
// what ParsePolicy does. An explicit empty sort_by list ([]) is kept as "no sort".
func (p *Policy) SetDefaults() {
	if p.Source.Stream == "" {
		p.Source.Stream = DefaultStream
	}
	if p.Time.Mode == "" {
		p.Time.Mode = EventTime
	}
	for i := range p.Schema.Fields {
		setFieldDefaults(&p.Schema.Fields[i])
	}
	w := &p.Window
	if w.Kind == "" {
		w.Kind = Tumbling
	}
	if w.Timezone == "" {
		w.Timezone = DefaultTimezone
	}
	if w.MaxOutOfOrder == 0 {
		w.MaxOutOfOrder = DefaultMaxOutOfOrder
	}
	if w.Late == "" {
		w.Late = LateDrop
	}
	if w.Late == LateRevise && w.ReviseAfter == 0 {
		w.ReviseAfter = DefaultReviseAfter
	}
	if w.IdleTimeout == 0 {
		w.IdleTimeout = DefaultIdleTimeout
	}
	if w.FutureHorizon == 0 {
		w.FutureHorizon = DefaultFutureHorizon
	}
	s := &p.Segment
	if s.MaxRows == 0 {
		s.MaxRows = DefaultSegmentMaxRows
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = DefaultSegmentMaxBytes
	}
	if s.MaxAge == 0 {
		s.MaxAge = DefaultSegmentMaxAge
	}
	o := &p.Output
	if o.Compression == "" {
		o.Compression = DefaultCompression
	}
	if o.TargetFileSize == 0 {
		o.TargetFileSize = DefaultTargetFileSize
	}
	if o.RowGroupSize == 0 {
		o.RowGroupSize = DefaultRowGroupRows
	}
	if o.SortBy == nil && p.Time.Mode == EventTime && p.Time.Field != "" {
		o.SortBy = []string{p.Time.Field}
	}
	if p.Load.Mode == "" {
		p.Load.Mode = LoadAppend
	}
	if loc, err := loadZone(w.Timezone); err == nil {
		p.loc = loc
	}
	for i := range p.WindowHistory {
		h := &p.WindowHistory[i]
		h.Until = h.Until.UTC()
		if h.Kind == "" {
			h.Kind = Tumbling
		}
		if h.Timezone == "" {
			h.Timezone = DefaultTimezone
		}
	}
}

// Validate checks every documented constraint and reports every problem at once:
// the result is nil or an errors.Join of *FieldError, each matching ErrInvalidPolicy.
// Validate does not apply defaults; call SetDefaults first.
func (p *Policy) Validate() error {
	errs := p.validate()
	if len(errs) == 0 {
		return nil
	}
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return errors.Join(joined...)
}

// FieldIndex returns the index of the schema field called name, or -1.
func (p *Policy) FieldIndex(name string) int {
	for i := range p.Schema.Fields {
		if p.Schema.Fields[i].Name == name {
			return i
		}
	}
	return -1
}

// TimeFieldIndex returns the index of the event-time field, or -1 in ingest mode.
func (p *Policy) TimeFieldIndex() int {
	if p.Time.Mode == IngestTime || p.Time.Field == "" {
		return -1
	}
	return p.FieldIndex(p.Time.Field)
}

// Location returns the policy's time zone. After SetDefaults or Validate it
// returns a cached value and is safe for concurrent use (as long as nothing
// mutates the policy). On a policy that was never defaulted or validated it loads
// the zone on every call, and falls back to UTC if the zone does not load.
func (p *Policy) Location() *time.Location {
	if p.loc != nil {
		return p.loc
	}
	if loc, err := loadZone(p.Window.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

// loadZone loads an IANA zone. "" is UTC; "Local" is refused because it would make
// window boundaries depend on the host.
func loadZone(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, errors.New(`"Local" depends on the host; name an IANA zone such as UTC or Europe/Berlin`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not a known IANA time zone (use e.g. UTC, America/New_York, Europe/Berlin)", name)
	}
	return loc, nil
}

type problems []*FieldError

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (p *Policy) validate() []*FieldError {
	var ps problems

	switch {
	case p.Name == "":
		ps.add("name", "is required (%s)", nameRule)
	case !policyNameRE.MatchString(p.Name):
		ps.add("name", "%q is not a valid policy name (%s)", p.Name, nameRule)
	}

	// source
	if !streamNameRE.MatchString(p.Source.Stream) {
		ps.add("source.stream", "%q is not a valid stream name (1-64 characters of A-Z, a-z, 0-9, _ or -)", p.Source.Stream)
	}
	if len(p.Source.Subjects) == 0 {
		ps.add("source.subjects", "at least one subject filter is required (e.g. events.sales.>)")
	}
	seenSubj := make(map[string]int, len(p.Source.Subjects))
	for i, s := range p.Source.Subjects {
		path := fmt.Sprintf("source.subjects[%d]", i)
		if why := subjectFilterProblem(s); why != "" {
			ps.add(path, "%q is not a valid subject filter (%s; %s)", s, why, subjectFilterHint)
			continue
		}
		if j, dup := seenSubj[s]; dup {
			ps.add(path, "%q is listed twice (also source.subjects[%d])", s, j)
			continue
		}
		seenSubj[s] = i
	}

	// schema
	if len(p.Schema.Fields) == 0 {
		ps.add("schema.fields", "at least one field is required")
	}
	seenField := make(map[string]int, len(p.Schema.Fields))
	for i, f := range p.Schema.Fields {
		base := fmt.Sprintf("schema.fields[%d]", i)
		switch {
		case f.Name == "":
			ps.add(base+".name", "is required (%s)", fieldNameRule)
		case !fieldNameRE.MatchString(f.Name):
			ps.add(base+".name", "%q is not a valid field name (%s)", f.Name, fieldNameRule)
		case strings.HasPrefix(f.Name, lineagePrefix) || isLineageColumn(f.Name):
			ps.add(base+".name", "%q is reserved: names starting with %q and the lineage columns %s are added by windrow", f.Name, lineagePrefix, strings.Join(LineageColumns, ", "))
		default:
			if j, dup := seenField[f.Name]; dup {
				ps.add(base+".name", "%q is already the name of schema.fields[%d] (field names must be unique)", f.Name, j)
			} else {
				seenField[f.Name] = i
			}
		}
		ps.fieldProblems(base, &f, 1)
		if f.Default != nil && p.Time.Mode == EventTime && f.Name == p.Time.Field {
			ps.add(base+".default", "is not allowed on the time field %q: an event without a time has no window", f.Name)
		}
	}
	ps.keyProblems("schema.fields", p.Schema.Fields)
	// Sorting, merging and event time read one value per row: they name
	// top-level scalar fields, never an object or a list.
	for i, name := range p.Output.SortBy {
		if j := p.FieldIndex(name); j >= 0 && p.Schema.Fields[j].Type.IsNested() {
			ps.add(fmt.Sprintf("output.sort_by[%d]", i), "%q is an %s field: sort by top-level scalar fields only", name, p.Schema.Fields[j].Type)
		}
	}
	for i, name := range p.Load.MergeKey {
		if j := p.FieldIndex(name); j >= 0 && p.Schema.Fields[j].Type.IsNested() {
			ps.add(fmt.Sprintf("load.merge_key[%d]", i), "%q is an %s field: a merge key is made of top-level scalar fields", name, p.Schema.Fields[j].Type)
		}
	}

	// time
	switch p.Time.Mode {
	case EventTime:
		if p.Time.Field == "" {
			ps.add("time.field", "is required in event mode: name a required timestamp field (or set time.mode: ingest)")
			break
		}
		i := p.FieldIndex(p.Time.Field)
		switch {
		case i < 0:
			ps.add("time.field", "%q is not a field of the schema (valid: the name of a required timestamp field%s)", p.Time.Field, candidateList(p.timestampFields()))
		case p.Schema.Fields[i].Type != TypeTimestamp:
			ps.add("time.field", "%q is a %s field, not a timestamp field%s", p.Time.Field, string(p.Schema.Fields[i].Type), candidateList(p.timestampFields()))
		case !p.Schema.Fields[i].Required:
			ps.add("time.field", "%q must be a required field: set required: true on schema.fields[%d]", p.Time.Field, i)
		}
	case IngestTime:
		if p.Time.Field != "" {
			ps.add("time.field", "must be empty in ingest mode (the JetStream message time is used); remove it or set time.mode: event")
		}
	default:
		ps.add("time.mode", "%q is not a time mode (valid: event, ingest)", string(p.Time.Mode))
	}

	// window
	w := &p.Window
	ps = append(ps, w.problems()...)
	if loc, err := loadZone(w.Timezone); err != nil {
		ps.add("window.timezone", "%s", err)
	} else {
		p.loc = loc
	}

	ps = append(ps, p.historyProblems()...)

	// key (top level, but checked against the schema and the window kind)
	ps = append(ps, p.keyProblems()...)

	// segment
	s := p.Segment
	if s.MaxRows < MinSegmentMaxRows || s.MaxRows > MaxSegmentMaxRows {
		ps.add("segment.max_rows", "%d is out of range (valid: %d..%d)", s.MaxRows, MinSegmentMaxRows, MaxSegmentMaxRows)
	}
	if s.MaxBytes < MinSegmentMaxBytes || s.MaxBytes > MaxSegmentMaxBytes {
		ps.add("segment.max_bytes", "%s is out of range (valid: %s..%s)", s.MaxBytes, MinSegmentMaxBytes, MaxSegmentMaxBytes)
	}
	if s.MaxAge < MinSegmentMaxAge || s.MaxAge > MaxSegmentMaxAge {
		ps.add("segment.max_age", "%s is out of range (valid: %s..%s; the upper bound keeps flushes well inside the collector's 2m ack wait)", s.MaxAge, MinSegmentMaxAge, MaxSegmentMaxAge)
	}

	// output
	o := p.Output
	switch o.Compression {
	case CompressZstd, CompressSnappy, CompressGzip, CompressNone:
	default:
		ps.add("output.compression", "%q is not a compression codec (valid: %s)", string(o.Compression), validCompressList)
	}
	if o.TargetFileSize < MinTargetFileSize || o.TargetFileSize > MaxTargetFileSize {
		ps.add("output.target_file_size", "%s is out of range (valid: %s..%s)", o.TargetFileSize, MinTargetFileSize, MaxTargetFileSize)
	}
	if n := o.MaxFileRows; n != 0 && (n < MinMaxFileRows || n > MaxMaxFileRows) {
		ps.add("output.max_file_rows", "%d is out of range (valid: %d..%d; absent or 0 means no cap)", n, MinMaxFileRows, MaxMaxFileRows)
	}
	if o.RowGroupSize < MinRowGroupRows || o.RowGroupSize > MaxRowGroupRows {
		ps.add("output.row_group_rows", "%d is out of range (valid: %d..%d)", o.RowGroupSize, MinRowGroupRows, MaxRowGroupRows)
	}
	seenSort := make(map[string]int, len(o.SortBy))
	for i, name := range o.SortBy {
		path := fmt.Sprintf("output.sort_by[%d]", i)
		if p.FieldIndex(name) < 0 {
			ps.add(path, "%q is not a field of the schema%s", name, candidateList(p.fieldNames()))
			continue
		}
		if j, dup := seenSort[name]; dup {
			ps.add(path, "%q is listed twice (also output.sort_by[%d])", name, j)
			continue
		}
		seenSort[name] = i
	}

	// load
	switch {
	case p.Load.Table == "":
		ps.add("load.table", "is required (%s)", tableRule)
	case !tableNameRE.MatchString(p.Load.Table):
		ps.add("load.table", "%q is not a valid table name (%s)", p.Load.Table, tableRule)
	case strings.HasPrefix(p.Load.Table[strings.LastIndexByte(p.Load.Table, '.')+1:], "_windrow"):
		ps.add("load.table", "%q is reserved: names starting with _windrow belong to windrow's own tables (such as the load ledger)", p.Load.Table)
	}
	if !slices.Contains(LoadModes, p.Load.Mode) {
		ps.add("load.mode", "%q is not a load mode (valid: append, replace, merge)", string(p.Load.Mode))
	}
	switch {
	case p.Load.Mode == LoadMerge && len(p.Load.MergeKey) == 0:
		ps.add("load.merge_key", "is required with mode merge: the fields that identify a row (valid: %s)", candidateList(p.requiredFieldNames()))
	case p.Load.Mode != LoadMerge && len(p.Load.MergeKey) > 0:
		ps.add("load.merge_key", "is only used with mode merge (mode is %s)", p.Load.Mode)
	}
	seenKey := map[string]bool{}
	for i, name := range p.Load.MergeKey {
		path := fmt.Sprintf("load.merge_key[%d]", i)
		j := p.FieldIndex(name)
		switch {
		case j < 0:
			ps.add(path, "%q is not a schema field (valid: %s)", name, candidateList(p.requiredFieldNames()))
		case !p.Schema.Fields[j].Required:
			ps.add(path, "%q must be a required field: a null key cannot identify a row (valid: %s)", name, candidateList(p.requiredFieldNames()))
		case seenKey[name]:
			ps.add(path, "%q is listed twice", name)
		}
		seenKey[name] = true
	}
	for i, stmt := range p.Load.PostLoad {
		path := fmt.Sprintf("load.post_load[%d]", i)
		switch {
		case strings.TrimSpace(stmt) == "":
			ps.add(path, "is empty: write one SQL statement per list item")
		case strings.Contains(strings.ToLower(stmt), "_windrow"):
			// The warehouses refuse it too (adapters/warehouse.CheckPostLoad).
			ps.add(path, "names _windrow…, windrow's own tables (such as the load ledger, which makes loads exactly-once): post-load SQL may not touch them")
		}
	}

	// sla
	if p.SLA.Deadline < 0 {
		ps.add("sla.deadline", "%s must not be negative (0 means no deadline)", p.SLA.Deadline)
	}
	return ps
}

// problems checks a WindowSpec except its time zone, with field paths under "window.".
func (w *WindowSpec) problems() []*FieldError {
	ps := problems(w.kindProblems())
	if w.MaxOutOfOrder < 0 {
		ps.add("window.max_out_of_order", "%s must not be negative", w.MaxOutOfOrder)
	}
	if w.AllowedLateness < 0 {
		ps.add("window.allowed_lateness", "%s must not be negative", w.AllowedLateness)
	}
	switch w.Late {
	case LateDrop, LateDLQ:
		if w.ReviseAfter != 0 {
			ps.add("window.revise_after", "is only used with late: revise (late is %s): remove it, or set late: revise", string(w.Late))
		}
		if w.EarlyEvery != 0 {
			ps.add("window.early_every", "needs late: revise, because what a window receives after its early load is loaded as revisions (late is %s): set late: revise, or remove it", string(w.Late))
		}
		if w.EarlyRows != 0 {
			ps.add("window.early_rows", "needs late: revise, because what a window receives after its early load is loaded as revisions (late is %s): set late: revise, or remove it", string(w.Late))
		}
	case LateRevise:
		if w.ReviseAfter < MinReviseAfter || w.ReviseAfter > MaxReviseAfter {
			ps.add("window.revise_after", "%s is out of range (valid: %s..%s; absent means %s)", w.ReviseAfter, MinReviseAfter, MaxReviseAfter, DefaultReviseAfter)
		}
		if w.EarlyEvery != 0 && (w.EarlyEvery < MinReviseAfter || w.EarlyEvery > MaxReviseAfter) {
			ps.add("window.early_every", "%s is out of range (valid: %s..%s; absent or 0 means off)", w.EarlyEvery, MinReviseAfter, MaxReviseAfter)
		}
		if w.EarlyRows != 0 && (w.EarlyRows < MinEarlyRows || w.EarlyRows > MaxEarlyRows) {
			ps.add("window.early_rows", "%d is out of range (valid: %d..%d; absent or 0 means off)", w.EarlyRows, MinEarlyRows, MaxEarlyRows)
		}
	default:
		ps.add("window.late", "%q is not a late mode (valid: drop, dlq, revise)", string(w.Late))
	}
	if w.Retain < 0 {
		ps.add("window.retain", "%s must not be negative (0 or absent means the default, %s)", w.Retain, DefaultRetain)
	} else if low := w.RetainMin(); w.Retain != 0 && w.Retain.D() <= low {
		dflt := *w
		dflt.Retain = 0
		ps.add("window.retain", "%s is too short: a window's state must outlive its size, allowed_lateness and (late: revise) revise_after, %s here (valid: longer than %s; 0 or absent means %s)",
			w.Retain, Duration(low), Duration(low), dflt.RetainFor())
	}
	if w.IdleTimeout < MinIdleTimeout {
		ps.add("window.idle_timeout", "%s is too short (valid: at least %s)", w.IdleTimeout, MinIdleTimeout)
	}
	if w.FutureHorizon <= 0 {
		ps.add("window.future_horizon", "%s must be positive (e.g. 24h)", w.FutureHorizon)
	}
	return ps
}

func sizeProblem(size Duration) *FieldError {
	const day = int64(24 * time.Hour / time.Second)
	fe := func(format string, args ...any) *FieldError {
		return &FieldError{Field: "window.size", Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case size == 0:
		return fe("is required (a duration that divides 24h or is whole days, %s)", windowSizeExamples)
	case size < MinWindowSize:
		return fe("%s is too short (valid: at least 1s, %s)", size, windowSizeExamples)
	case size.D()%time.Second != 0:
		return fe("%s is not whole seconds (%s)", size, windowSizeExamples)
	}
	secs := int64(size.D() / time.Second)
	if day%secs != 0 && secs%day != 0 {
		return fe("%s neither divides 24h nor is a whole number of days, so windows would not align to midnight (%s)", size, windowSizeExamples)
	}
	return nil
}

// subjectFilterProblem says why s is not a valid NATS subject filter, or "".
func subjectFilterProblem(s string) string {
	if s == "" {
		return "empty"
	}
	if strings.ContainsAny(s, " \t\r\n\f\v") {
		return "contains whitespace"
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return "empty token"
		case t == ">":
			if i != len(tokens)-1 {
				return "'>' must be the last token"
			}
		case t == "*":
		case strings.ContainsAny(t, "*>"):
			return fmt.Sprintf("token %q mixes a wildcard with other characters", t)
		}
	}
	return ""
}

func isLineageColumn(name string) bool {
	for _, c := range LineageColumns {
		if name == c {
			return true
		}
	}
	return false
}

func (p *Policy) fieldNames() []string {
	names := make([]string, 0, len(p.Schema.Fields))
	for _, f := range p.Schema.Fields {
		if f.Name != "" {
			names = append(names, f.Name)
		}
	}
	return names
}

func (p *Policy) requiredFieldNames() []string {
	var out []string
	for _, f := range p.Schema.Fields {
		if f.Required {
			out = append(out, f.Name)
		}
	}
	return out
}

func (p *Policy) timestampFields() []string {
	var names []string
	for _, f := range p.Schema.Fields {
		if f.Type == TypeTimestamp && f.Required && f.Name != "" {
			names = append(names, f.Name)
		}
	}
	return names
}

func candidateList(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return "; candidates: " + strings.Join(names, ", ")
}

// setFieldDefaults gives timestamp fields their default unit and writes
// decimal types canonically, in nested fields too.
func setFieldDefaults(f *Field) {
	if f.Type == TypeTimestamp && f.Unit == "" {
		f.Unit = DefaultTimestampUnit
	}
	f.Type = f.Type.Canonical()
	for i := range f.Fields {
		setFieldDefaults(&f.Fields[i])
	}
	if f.Items.Of != nil {
		setFieldDefaults(f.Items.Of)
	}
}

const decimalRule = "decimal(P,S): precision P 1..38 digits, scale S 0..P of them after the point, e.g. decimal(12,2)"

// fieldProblems checks one field's type, unit, from, default and nested
// fields (not its name, which depends on where the field is). depth counts
// the object and list levels down to f.
func (ps *problems) fieldProblems(base string, f *Field, depth int) {
	switch {
	case f.Type == TypeString, f.Type == TypeInt64, f.Type == TypeFloat64, f.Type == TypeBool, f.Type == TypeTimestamp, f.Type == TypeDate:
	case f.Type.IsDecimal():
		if _, _, ok := f.Type.Decimal(); !ok {
			ps.add(base+".type", "%q is not a valid decimal type (%s)", string(f.Type), decimalRule)
		}
	case f.Type.IsNested():
		if depth > MaxNestingDepth {
			ps.add(base+".type", "%s nests too deep: at most %d levels of object and list", f.Type, MaxNestingDepth)
		}
	case f.Type == "":
		ps.add(base+".type", "is required (valid: %s)%s", validTypesList, moreTypesNote)
	default:
		ps.add(base+".type", "%q is not a type (valid: %s)%s", string(f.Type), validTypesList, moreTypesNote)
	}
	if f.Unit != "" {
		switch {
		case f.Type != TypeTimestamp && f.Type != "":
			ps.add(base+".unit", "is only allowed on timestamp fields, and this field is %s", string(f.Type))
		case f.Unit != UnitSeconds && f.Unit != UnitMilliseconds && f.Unit != UnitMicroseconds && f.Unit != UnitNanoseconds:
			ps.add(base+".unit", "%q is not an epoch unit (valid: %s)", string(f.Unit), validUnitsList)
		}
	}
	if len(f.From) > MaxFromLen || !utf8.ValidString(f.From) {
		ps.add(base+".from", "must be a JSON key of 1..%d bytes of valid UTF-8 (it is %d bytes)", MaxFromLen, len(f.From))
	}
	if f.Default != nil {
		switch {
		case f.Type.IsNested():
			ps.add(base+".default", "is only allowed on scalar fields, and this field is %s (give its members defaults instead)", f.Type)
		default:
			if why := defaultProblem(f, *f.Default); why != "" {
				ps.add(base+".default", "%q is not a valid %s value (%s)", *f.Default, f.Type, why)
			}
		}
	}
	switch f.Type {
	case TypeObject:
		if len(f.Fields) == 0 {
			ps.add(base+".fields", "an object field needs at least one member, e.g. fields: [{name: a, type: int64}]")
		}
		seen := make(map[string]int, len(f.Fields))
		for i := range f.Fields {
			m := &f.Fields[i]
			mb := fmt.Sprintf("%s.fields[%d]", base, i)
			switch {
			case m.Name == "":
				ps.add(mb+".name", "is required (%s)", fieldNameRule)
			case !fieldNameRE.MatchString(m.Name):
				ps.add(mb+".name", "%q is not a valid field name (%s)", m.Name, fieldNameRule)
			default:
				if j, dup := seen[m.Name]; dup {
					ps.add(mb+".name", "%q is already the name of %s.fields[%d] (member names must be unique)", m.Name, base, j)
				} else {
					seen[m.Name] = i
				}
			}
			ps.fieldProblems(mb, m, depth+1)
		}
		ps.keyProblems(base+".fields", f.Fields)
	case TypeList:
		it := f.Items.Of
		if it == nil {
			ps.add(base+".items", "a list field needs the type of its elements, e.g. items: {type: int64}")
			break
		}
		ib := base + ".items"
		if it.Name != "" {
			ps.add(ib+".name", "elements have no name: remove it (the list is the field %q)", f.Name)
		}
		if it.From != "" {
			ps.add(ib+".from", "elements are not read from a key: remove it")
		}
		if it.Default != nil {
			ps.add(ib+".default", "elements have no default: a null element stays null (or, with required: true, is refused)")
		} else {
			ps.fieldProblems(ib, it, depth+1)
		}
	}
	if f.Type != TypeObject && len(f.Fields) > 0 {
		ps.add(base+".fields", "is only allowed on object fields, and this field is %s", f.Type)
	}
	if f.Type != TypeList && f.Items.Of != nil {
		ps.add(base+".items", "is only allowed on list fields, and this field is %s", f.Type)
	}
}

// keyProblems reports two fields of one object (or the top level) that
// read the same JSON key.
func (ps *problems) keyProblems(base string, fields []Field) {
	seen := make(map[string]int, len(fields))
	for i := range fields {
		f := &fields[i]
		if f.Name == "" {
			continue
		}
		k := f.Key()
		if j, dup := seen[k]; dup {
			if f.From == "" && fields[j].From == "" {
				continue // the same name twice: reported with the names
			}
			what := ".name"
			if f.From != "" {
				what = ".from"
			}
			ps.add(fmt.Sprintf("%s[%d]%s", base, i, what), "JSON key %q is already read by %s[%d] (each key fills one field; rename with from)", k, base, j)
			continue
		}
		seen[k] = i
	}
}

// defaultProblem says why text is not a value of f's scalar type, or "".
// It accepts what the decoder accepts in an event (for a string, any text).
func defaultProblem(f *Field, text string) string {
	switch {
	case f.Type == TypeString:
		return ""
	case f.Type == TypeInt64:
		if _, err := strconv.ParseInt(text, 10, 64); err != nil {
			return "want an integer that fits 64 bits"
		}
	case f.Type == TypeFloat64:
		x, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return "want a finite number"
		}
	case f.Type == TypeBool:
		if text != "true" && text != "false" {
			return "want true or false"
		}
	case f.Type == TypeDate:
		if t, err := time.Parse(time.DateOnly, text); err != nil || t.Year() < 1 {
			return "want a date YYYY-MM-DD"
		}
	case f.Type == TypeTimestamp:
		if _, err := strconv.ParseInt(text, 10, 64); err == nil {
			return "" // epoch number in unit; the decoder checks its range
		}
		if _, err := time.Parse(time.RFC3339Nano, text); err != nil {
			return "want an RFC 3339 time such as 2026-01-01T00:00:00Z, or an epoch number in unit"
		}
	case f.Type.IsDecimal():
		p, s, ok := f.Type.Decimal()
		if !ok {
			return "" // the type is reported
		}
		return decimalProblem(text, p, s)
	}
	return ""
}

// decimalProblem says why text is not an exact decimal(p,s) number, or "".
func decimalProblem(text string, p, s int) string {
	if strings.ContainsAny(text, "/_ ") || text == "" {
		return "want a number such as 12.50"
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return "want a number such as 12.50"
	}
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s)), nil)))
	if !scaled.IsInt() {
		return fmt.Sprintf("more than %d digits after the point", s)
	}
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
	if new(big.Int).Abs(scaled.Num()).Cmp(limit) >= 0 {
		return fmt.Sprintf("more than %d digits before the point", p-s)
	}
	return ""
}
