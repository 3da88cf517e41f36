package windows

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// basePolicy is testdata/minimal.yaml; the table below edits it by text replacement,
// so line numbers in the expectations refer to this layout:
//
//	1 name   3 subjects   6-11 two fields   13 time.field   15 window.size   17 load.table
const basePolicy = `name: orders
source:
  subjects: [events.orders.*]
schema:
  fields:
    - name: order_id
      type: string
      required: true
    - name: created_at
      type: timestamp
      required: true
time:
  field: created_at
window:
  size: 1h
load:
  table: raw.orders
`

func edit(pairs ...string) string {
	return strings.NewReplacer(pairs...).Replace(basePolicy)
}

const addField = "      required: true\ntime:"

func TestParsePolicy(t *testing.T) {
	const file = "policies/sales.yaml"
	tests := []struct {
		name    string
		yaml    string
		wantErr error
		want    []string // substrings of the error
		n       int      // number of problems, if not 1
	}{
		{name: "minimal", yaml: basePolicy},
		{
			name:    "bad duration",
			yaml:    edit("size: 1h", "size: 25x"),
			wantErr: ErrInvalidPolicy,
			want:    []string{`policies/sales.yaml:15: window.size: "25x" is not a duration (use e.g. 24h, 15m, 90s)`},
		},
		{
			name:    "days are not a duration unit",
			yaml:    edit("size: 1h", "size: 7d"),
			wantErr: ErrInvalidPolicy,
			want:    []string{`sales.yaml:15: window.size: "7d" is not a duration`, "168h"},
		},
		{
			name:    "bad type",
			yaml:    edit(addField, addField[:len(addField)-len("time:")]+"    - name: total\n      type: integer\ntime:"),
			wantErr: ErrInvalidPolicy,
			want:    []string{`policies/sales.yaml:13: schema.fields[2].type: "integer" is not a type (valid: string, int64, float64, bool, timestamp, date)`},
		},
		{
			name:    "unknown key",
			yaml:    edit("  size: 1h\n", "  size: 1h\n  lateness: 5m\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"policies/sales.yaml:16: window.lateness: unknown field (valid: kind, size, slide, gap, timezone, max_out_of_order, allowed_lateness, late, revise_after, early_every, early_rows, idle_timeout, future_horizon, retain, max_open_sessions)"},
		},
		{
			name:    "unknown top-level key",
			yaml:    basePolicy + "owner: me\n",
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:18: owner: unknown field (valid: name, description, source,"},
		},
		{
			name:    "bad name",
			yaml:    edit("name: orders", "name: Orders"),
			wantErr: ErrInvalidPolicy,
			want:    []string{`sales.yaml:1: name: "Orders" is not a valid policy name (1-63 characters: a lowercase letter`},
		},
		{
			name:    "bad subjects",
			n:       4,
			yaml:    edit("[events.orders.*]", `[events..x, "a.>.b", a*, "has space", ">"]`),
			wantErr: ErrInvalidPolicy,
			want: []string{
				`sales.yaml:3: source.subjects[0]: "events..x" is not a valid subject filter (empty token`,
				`source.subjects[1]: "a.>.b" is not a valid subject filter ('>' must be the last token`,
				`source.subjects[2]: "a*" is not a valid subject filter (token "a*" mixes a wildcard`,
				`source.subjects[3]: "has space" is not a valid subject filter (contains whitespace`,
			},
		},
		{
			name:    "no subjects",
			yaml:    edit("  subjects: [events.orders.*]\n", "  stream: EVENTS\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:2: source.subjects: at least one subject filter is required"},
		},
		{
			name:    "bad stream",
			yaml:    edit("source:\n", "source:\n  stream: my stream\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{`sales.yaml:3: source.stream: "my stream" is not a valid stream name (1-64 characters of A-Z, a-z, 0-9, _ or -)`},
		},
		{
			name:    "reserved and duplicate field names",
			n:       5,
			yaml:    edit("name: order_id", "name: _window_start", addField, "      required: true\n    - {name: _batch_id, type: string}\n    - {name: _wx, type: string}\n    - {name: created_at, type: string}\n    - {name: 9lives, type: string}\ntime:"),
			wantErr: ErrInvalidPolicy,
			want: []string{
				`sales.yaml:6: schema.fields[0].name: "_window_start" is reserved`,
				`schema.fields[2].name: "_batch_id" is reserved`,
				`schema.fields[3].name: "_wx" is reserved`,
				`sales.yaml:14: schema.fields[4].name: "created_at" is already the name of schema.fields[1]`,
				`schema.fields[5].name: "9lives" is not a valid field name`,
			},
		},
		{
			name:    "unit on a string field and a bad unit",
			n:       2,
			yaml:    edit("      type: string\n", "      type: string\n      unit: ms\n", "      type: timestamp\n", "      type: timestamp\n      unit: weeks\n"),
			wantErr: ErrInvalidPolicy,
			want: []string{
				"sales.yaml:8: schema.fields[0].unit: is only allowed on timestamp fields, and this field is string",
				`sales.yaml:12: schema.fields[1].unit: "weeks" is not an epoch unit (valid: s, ms, us, ns)`,
			},
		},
		{
			name:    "time field not required",
			yaml:    edit("      type: timestamp\n      required: true\n", "      type: timestamp\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{`sales.yaml:12: time.field: "created_at" must be a required field: set required: true on schema.fields[1]`},
		},
		{
			name:    "time field not a timestamp",
			yaml:    edit("field: created_at", "field: order_id"),
			wantErr: ErrInvalidPolicy,
			want:    []string{`sales.yaml:13: time.field: "order_id" is a string field, not a timestamp field; candidates: created_at`},
		},
		{
			name:    "time field missing",
			yaml:    edit("time:\n  field: created_at\n", "time:\n  mode: event\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:12: time.field: is required in event mode"},
		},
		{
			name:    "ingest mode with a field",
			yaml:    edit("time:\n", "time:\n  mode: ingest\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:14: time.field: must be empty in ingest mode"},
		},
		{
			name:    "bad time mode",
			yaml:    edit("time:\n", "time:\n  mode: processing\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{`sales.yaml:13: time.mode: "processing" is not a time mode (valid: event, ingest)`},
		},
		{
			name:    "window size that does not align",
			yaml:    edit("size: 1h", "size: 7m"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:15: window.size: 7m0s neither divides 24h nor is a whole number of days"},
		},
		{
			name:    "window size not whole seconds",
			yaml:    edit("size: 1h", "size: 1500ms"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"window.size: 1.5s is not whole seconds"},
		},
		{
			name:    "window size too short",
			yaml:    edit("size: 1h", "size: 500ms"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"window.size: 500ms is too short (valid: at least 1s"},
		},
		{
			name:    "window size missing",
			yaml:    edit("  size: 1h\n", "  late: drop\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:14: window.size: is required"},
		},
		{
			name:    "bad window settings",
			n:       6,
			yaml:    edit("  size: 1h\n", "  size: 1h\n  kind: sliding\n  timezone: Mars/Base\n  late: keep\n  max_out_of_order: -1m\n  allowed_lateness: -1s\n  idle_timeout: 500ms\n"),
			wantErr: ErrInvalidPolicy,
			want: []string{
				`sales.yaml:16: window.kind: "sliding" is not a window kind (valid: tumbling, hopping, session)`,
				`sales.yaml:17: window.timezone: "Mars/Base" is not a known IANA time zone (use e.g. UTC`,
				`sales.yaml:18: window.late: "keep" is not a late mode (valid: drop, dlq, revise)`,
				"sales.yaml:19: window.max_out_of_order: -1m0s must not be negative",
				"sales.yaml:20: window.allowed_lateness: -1s must not be negative",
				"sales.yaml:21: window.idle_timeout: 500ms is too short (valid: at least 1s)",
			},
		},
		{
			name:    "revise_after without late: revise",
			yaml:    edit("  size: 1h\n", "  size: 1h\n  revise_after: 5m\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:16: window.revise_after: is only used with late: revise (late is drop): remove it, or set late: revise"},
		},
		{
			name:    "revise_after out of range",
			yaml:    edit("  size: 1h\n", "  size: 1h\n  late: revise\n  revise_after: 500ms\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:17: window.revise_after: 500ms is out of range (valid: 1s..24h0m0s; absent means 1m0s)"},
		},
		{
			name:    "retain not longer than the window, lateness and revise_after",
			yaml:    edit("  size: 1h\n", "  size: 1h\n  allowed_lateness: 10m\n  late: revise\n  revise_after: 5m\n  retain: 75m\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:19: window.retain: 1h15m0s is too short: a window's state must outlive its size, allowed_lateness and (late: revise) revise_after, 1h15m0s here (valid: longer than 1h15m0s; 0 or absent means 168h0m0s)"},
		},
		{
			name:    "retain negative",
			yaml:    edit("  size: 1h\n", "  size: 1h\n  retain: -1h\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:16: window.retain: -1h0m0s must not be negative (0 or absent means the default, 168h0m0s)"},
		},
		{
			name:    "early loads without late: revise",
			n:       2,
			yaml:    edit("  size: 1h\n", "  size: 1h\n  early_every: 10m\n  early_rows: 50000\n"),
			wantErr: ErrInvalidPolicy,
			want: []string{
				"sales.yaml:16: window.early_every: needs late: revise, because what a window receives after its early load is loaded as revisions (late is drop)",
				"sales.yaml:17: window.early_rows: needs late: revise",
			},
		},
		{
			name:    "early loads out of range",
			n:       2,
			yaml:    edit("  size: 1h\n", "  size: 1h\n  late: revise\n  early_every: 100ms\n  early_rows: 10\n"),
			wantErr: ErrInvalidPolicy,
			want: []string{
				"sales.yaml:17: window.early_every: 100ms is out of range (valid: 1s..24h0m0s; absent or 0 means off)",
				"sales.yaml:18: window.early_rows: 10 is out of range (valid: 1000..1000000000; absent or 0 means off)",
			},
		},
		{
			name:    "Local time zone",
			yaml:    edit("  size: 1h\n", "  size: 1h\n  timezone: Local\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{`window.timezone: "Local" depends on the host`},
		},
		{
			name:    "segment limits",
			n:       3,
			yaml:    basePolicy + "segment:\n  max_rows: 0\n  max_bytes: 1KiB\n  max_age: 31s\n",
			wantErr: ErrInvalidPolicy,
			want: []string{
				"sales.yaml:19: segment.max_rows: 0 is out of range (valid: 1..10000000)",
				"sales.yaml:20: segment.max_bytes: 1KiB is out of range (valid: 64KiB..1GiB)",
				"sales.yaml:21: segment.max_age: 31s is out of range (valid: 100ms..30s",
			},
		},
		{
			name:    "output settings",
			n:       5,
			yaml:    basePolicy + "output:\n  compression: lz4\n  target_file_size: 5GiB\n  row_group_rows: 10\n  sort_by: [nope, order_id, order_id]\n",
			wantErr: ErrInvalidPolicy,
			want: []string{
				`sales.yaml:19: output.compression: "lz4" is not a compression codec (valid: zstd, snappy, gzip, none)`,
				"sales.yaml:20: output.target_file_size: 5GiB is out of range (valid: 1MiB..4GiB)",
				"sales.yaml:21: output.row_group_rows: 10 is out of range (valid: 1000..10000000)",
				`sales.yaml:22: output.sort_by[0]: "nope" is not a field of the schema; candidates: order_id, created_at`,
				`output.sort_by[2]: "order_id" is listed twice (also output.sort_by[1])`,
			},
		},
		{
			name:    "load and sla",
			n:       3,
			yaml:    edit("table: raw.orders", "table: Raw.Orders\n  mode: upsert") + "sla:\n  deadline: -1h\n",
			wantErr: ErrInvalidPolicy,
			want: []string{
				`sales.yaml:17: load.table: "Raw.Orders" is not a valid table name`,
				`sales.yaml:18: load.mode: "upsert" is not a load mode (valid: append, replace, merge)`,
				"sales.yaml:20: sla.deadline: -1h0m0s must not be negative",
			},
		},
		{
			name:    "post-load SQL naming the ledger",
			yaml:    basePolicy + "  post_load:\n    - SELECT 1\n    - DELETE FROM \"_WINDROW_LEDGER\"\n",
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:20: load.post_load[1]: names _windrow…, windrow's own tables"},
		},
		{
			name:    "missing load table",
			yaml:    edit("load:\n  table: raw.orders\n", ""),
			wantErr: ErrInvalidPolicy,
			want:    []string{"policies/sales.yaml: load.table: is required"},
		},
		{
			name: "wrong shapes",
			// The unparsable required flag also leaves the time field not required: reported too.
			n:       4,
			yaml:    edit("subjects: [events.orders.*]", "subjects: events.orders.*", "      required: true\ntime:", "      required: maybe\ntime:") + "segment:\n  max_rows: lots\n",
			wantErr: ErrInvalidPolicy,
			want: []string{
				"sales.yaml:3: source.subjects: must be a list, not a scalar",
				`sales.yaml:11: schema.fields[1].required: "maybe" is not true or false`,
				`sales.yaml:19: segment.max_rows: "lots" is not an integer`,
			},
		},
		{
			name:    "duplicate key",
			yaml:    edit("  size: 1h\n", "  size: 1h\n  size: 2h\n"),
			wantErr: ErrInvalidPolicy,
			want:    []string{"sales.yaml:16: window.size: is set twice (first at line 15)"},
		},
		{
			name:    "bad byte size",
			yaml:    basePolicy + "segment:\n  max_bytes: 12 parsecs\n",
			wantErr: ErrInvalidPolicy,
			want:    []string{`sales.yaml:19: segment.max_bytes: "12 parsecs" is not a byte size (use e.g. 64MiB, 128MB, 1GiB, 512KiB or a number of bytes)`},
		},
		{
			name:    "syntax error",
			yaml:    "name: orders\nsource:\n  subjects: [a\n",
			wantErr: ErrInvalidPolicy,
			want:    []string{"policies/sales.yaml:", "invalid YAML"},
		},
		{
			name:    "empty file",
			yaml:    "",
			wantErr: ErrInvalidPolicy,
			want:    []string{"policies/sales.yaml: the file is empty"},
		},
		{
			name:    "not a mapping",
			yaml:    "- a\n- b\n",
			wantErr: ErrInvalidPolicy,
			want:    []string{"policies/sales.yaml:1: a policy must be a mapping with keys name, description, source"},
		},
		{
			name:    "two documents",
			yaml:    basePolicy + "---\nname: other\n",
			wantErr: ErrInvalidPolicy,
			want:    []string{"policies/sales.yaml:18: a policy file holds exactly one YAML document"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy(file, []byte(tt.yaml))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ParsePolicy error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if p != nil {
					t.Errorf("ParsePolicy returned a policy with an error")
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not contain %q; got:\n%v", w, err)
					}
				}
				want := max(tt.n, 1)
				if n := len(problemsOf(err)); n != want {
					t.Errorf("got %d problems, want %d:\n%v", n, want, err)
				}
			}
		})
	}
}

func problemsOf(err error) []*FieldError {
	var out []*FieldError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, problemsOf(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		out = append(out, fe)
	}
	return out
}

func TestParsePolicyReportsEveryProblem(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "three_problems.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParsePolicy("testdata/three_problems.yaml", data)
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("error = %v, want ErrInvalidPolicy", err)
	}
	got := problemsOf(err)
	want := []FieldError{
		{File: "testdata/three_problems.yaml", Line: 13, Field: "schema.fields[2].type"},
		{File: "testdata/three_problems.yaml", Line: 17, Field: "window.size"},
		{File: "testdata/three_problems.yaml", Line: 18, Field: "window.timezone"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		if got[i].File != w.File || got[i].Line != w.Line || got[i].Field != w.Field {
			t.Errorf("problem %d = %s:%d %s, want %s:%d %s", i, got[i].File, got[i].Line, got[i].Field, w.File, w.Line, w.Field)
		}
	}
}

func TestParsePolicyUnknownKeyNamesLine(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "unknown_key.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParsePolicy("unknown_key.yaml", data)
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("error = %v, want ErrInvalidPolicy", err)
	}
	if want := "unknown_key.yaml:16: window.lateness: unknown field (valid: "; !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to contain %q", err, want)
	}
}

func TestParsePolicyDefaults(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy("minimal.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"source.stream", p.Source.Stream, "EVENTS"},
		{"time.mode", p.Time.Mode, EventTime},
		{"window.kind", p.Window.Kind, Tumbling},
		{"window.timezone", p.Window.Timezone, "UTC"},
		{"window.max_out_of_order", p.Window.MaxOutOfOrder.D(), time.Minute},
		{"window.allowed_lateness", p.Window.AllowedLateness.D(), time.Duration(0)},
		{"window.late", p.Window.Late, LateDrop},
		{"window.idle_timeout", p.Window.IdleTimeout.D(), 30 * time.Second},
		{"window.future_horizon", p.Window.FutureHorizon.D(), 24 * time.Hour},
		{"segment.max_rows", p.Segment.MaxRows, 100000},
		{"segment.max_bytes", p.Segment.MaxBytes, 64 * MiB},
		{"segment.max_age", p.Segment.MaxAge.D(), 5 * time.Second},
		{"output.compression", p.Output.Compression, CompressZstd},
		{"output.target_file_size", p.Output.TargetFileSize, 128 * MiB},
		{"output.row_group_rows", p.Output.RowGroupSize, 122880},
		{"output.sort_by", strings.Join(p.Output.SortBy, ","), "created_at"},
		{"load.mode", p.Load.Mode, LoadAppend},
		{"schema.fields[1].unit", p.Schema.Fields[1].Unit, UnitMilliseconds},
		{"schema.fields[0].unit", p.Schema.Fields[0].Unit, EpochUnit("")},
		{"Location", p.Location(), time.UTC},
		{"FieldIndex(created_at)", p.FieldIndex("created_at"), 1},
		{"FieldIndex(nope)", p.FieldIndex("nope"), -1},
		{"TimeFieldIndex", p.TimeFieldIndex(), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParsePolicyKeepsExplicitValues(t *testing.T) {
	yaml := basePolicy + "window:\n" // placeholder, replaced below
	yaml = edit("  size: 1h\n", "  size: 1h\n  max_out_of_order: 0s\n  timezone: Europe/Berlin\n") + "output:\n  sort_by: []\n"
	p, err := ParsePolicy("p.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if p.Window.MaxOutOfOrder != 0 {
		t.Errorf("max_out_of_order = %v, want the explicit 0", p.Window.MaxOutOfOrder)
	}
	if p.Output.SortBy == nil || len(p.Output.SortBy) != 0 {
		t.Errorf("sort_by = %#v, want the explicit empty list", p.Output.SortBy)
	}
	if got := p.Location().String(); got != "Europe/Berlin" {
		t.Errorf("Location = %s, want Europe/Berlin", got)
	}
}

func TestParsePolicyIngestMode(t *testing.T) {
	yaml := edit("time:\n  field: created_at\n", "time:\n  mode: ingest\n")
	p, err := ParsePolicy("p.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.TimeFieldIndex(); got != -1 {
		t.Errorf("TimeFieldIndex = %d, want -1", got)
	}
	if len(p.Output.SortBy) != 0 {
		t.Errorf("sort_by = %v, want none in ingest mode", p.Output.SortBy)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	var p Policy
	p.SetDefaults()
	err := p.Validate()
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("Validate() = %v, want ErrInvalidPolicy", err)
	}
	for _, want := range []string{"name: is required", "source.subjects: at least one", "schema.fields: at least one", "window.size: is required", "load.table: is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q; got:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "line") {
		t.Errorf("Validate without a file names a line:\n%v", err)
	}
}

func TestDeployedDailyStoreSalesPolicy(t *testing.T) {
	const path = "../deploy/policies/daily_store_sales.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(path, data)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "daily_store_sales" || p.Window.Size.D() != 24*time.Hour || p.Window.Late != LateDLQ ||
		p.Segment.MaxBytes != 32*MiB || p.SLA.Deadline.D() != 2*time.Hour || p.Load.Table != "sales" ||
		!slices.Equal(p.Output.SortBy, []string{"store_id", "sold_at"}) || len(p.Schema.Fields) != 9 {
		t.Errorf("unexpected policy: %+v", p)
	}
	if got := p.TimeFieldIndex(); got != p.FieldIndex("sold_at") || got < 0 {
		t.Errorf("TimeFieldIndex = %d", got)
	}
}
