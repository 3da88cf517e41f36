package records

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/messages"
)

// base holds the required fields of a valid all_types event.
const base = `"s":"x","n":1,"ts":1767225600000`

// event returns a valid all_types event with extra fields appended; extra
// must not repeat a key of base.
func event(extra string) string {
	if extra == "" {
		return "{" + base + "}"
	}
	return "{" + base + "," + extra + "}"
}

// ev returns a valid all_types event with key set to the JSON value (a base
// field is replaced, "<absent>" removes it), any other field added.
func ev(key, value string) string {
	fields := map[string]string{"s": `"x"`, "n": "1", "ts": "1767225600000"}
	order := []string{"s", "n", "ts"}
	if _, ok := fields[key]; !ok {
		order = append(order, key)
	}
	fields[key] = value
	parts := make([]string, 0, len(order))
	for _, k := range order {
		if fields[k] == "<absent>" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%q:%s", k, fields[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// micros is t in microseconds since the Unix epoch.
func micros(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func days(s string) int64 {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t.Unix() / 86400
}

// null marks an expected NULL value.
type null struct{}

// valueOf converts a decoded value to a comparable Go value by its kind.
func valueOf(v parquet.Value) any {
	if v.IsNull() {
		return null{}
	}
	switch v.Kind() {
	case parquet.ByteArray:
		return string(v.ByteArray())
	case parquet.Int64:
		return v.Int64()
	case parquet.Int32:
		return int64(v.Int32())
	case parquet.Double:
		return v.Double()
	case parquet.Boolean:
		return v.Boolean()
	}
	return fmt.Sprintf("unexpected kind %s", v.Kind())
}

func TestDecoderDecode(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	tests := []struct {
		name       string
		json       string
		field      string // the field whose value is checked
		want       any    // its value: string, int64 (int64, timestamp, date), float64, bool or null{}
		wantErr    error
		wantReason string
		wantField  string // the field named by the error, if any
	}{
		// Every type.
		{name: "string", json: ev("s", `"héllo \"w\" \u00e9"`), field: "s", want: `héllo "w" é`},
		{name: "empty string", json: ev("s", `""`), field: "s", want: ""},
		{name: "int64", json: ev("i", "-42"), field: "i", want: int64(-42)},
		{name: "int64 max", json: ev("i", "9223372036854775807"), field: "i", want: int64(math.MaxInt64)},
		{name: "int64 min", json: ev("i", "-9223372036854775808"), field: "i", want: int64(math.MinInt64)},
		{name: "float64", json: ev("f", "12.5"), field: "f", want: 12.5},
		{name: "float64 exponent", json: ev("f", "-1.5e3"), field: "f", want: -1500.0},
		{name: "float64 from integer", json: ev("f", "3"), field: "f", want: 3.0},
		{name: "bool true", json: ev("b", "true"), field: "b", want: true},
		{name: "bool false", json: ev("b", "false"), field: "b", want: false},
		{name: "date", json: ev("d", `"2026-03-08"`), field: "d", want: days("2026-03-08")},
		{name: "date leap day", json: ev("d", `"2024-02-29"`), field: "d", want: days("2024-02-29")},
		{name: "date before epoch", json: ev("d", `"1969-12-31"`), field: "d", want: int64(-1)},

		// Timestamps as RFC 3339 strings.
		{name: "rfc3339 Z", json: ev("ts", `"2026-01-01T00:00:00Z"`), field: "ts", want: micros("2026-01-01T00:00:00Z")},
		{name: "rfc3339 millis", json: ev("ts", `"2026-01-01T12:34:56.789Z"`), field: "ts", want: micros("2026-01-01T12:34:56.789Z")},
		{name: "rfc3339 micros", json: ev("ts", `"2026-01-01T12:34:56.123456Z"`), field: "ts", want: micros("2026-01-01T12:34:56.123456Z")},
		{name: "rfc3339 nanos truncated", json: ev("ts", `"2026-01-01T12:34:56.123456789Z"`), field: "ts", want: micros("2026-01-01T12:34:56.123456Z")},
		{name: "rfc3339 positive offset", json: ev("ts", `"2026-01-01T02:00:00+02:00"`), field: "ts", want: micros("2026-01-01T00:00:00Z")},
		{name: "rfc3339 negative offset", json: ev("ts", `"2025-12-31T19:30:00-04:30"`), field: "ts", want: micros("2026-01-01T00:00:00Z")},
		{name: "rfc3339 zero offset", json: ev("ts", `"2026-01-01T00:00:00+00:00"`), field: "ts", want: micros("2026-01-01T00:00:00Z")},
		{name: "rfc3339 lowercase t and z", json: ev("ts", `"2026-01-01t00:00:00.5z"`), field: "ts", want: micros("2026-01-01T00:00:00.5Z")},
		{name: "rfc3339 before epoch with fraction", json: ev("ts", `"1969-12-31T23:59:59.9999999Z"`), field: "ts", want: int64(-1)},
		{name: "rfc3339 leap day", json: ev("ts", `"2024-02-29T23:59:59Z"`), field: "ts", want: micros("2024-02-29T23:59:59Z")},
		{name: "rfc3339 first instant", json: ev("ts", `"0001-01-01T00:00:00Z"`), field: "ts", want: micros("0001-01-01T00:00:00Z")},
		{name: "rfc3339 last instant", json: ev("ts", `"9999-12-31T23:59:59.999999Z"`), field: "ts", want: micros("9999-12-31T23:59:59.999999Z")},

		// Timestamps as epoch numbers, per unit.
		{name: "epoch ms (default unit)", json: ev("ts", "1767225600123"), field: "ts", want: int64(1767225600123000)},
		{name: "epoch s", json: ev("ts_s", "1767225600"), field: "ts_s", want: int64(1767225600000000)},
		{name: "epoch us", json: ev("ts_us", "1767225600123456"), field: "ts_us", want: int64(1767225600123456)},
		{name: "epoch ns", json: ev("ts_ns", "1767225600123456789"), field: "ts_ns", want: int64(1767225600123456)},
		{name: "epoch negative s", json: ev("ts_s", "-86400"), field: "ts_s", want: int64(-86400e6)},
		// Sub-microsecond parts are dropped toward the past, as for RFC 3339 fractions.
		{name: "epoch negative ns floors", json: ev("ts_ns", "-1"), field: "ts_ns", want: int64(-1)},
		{name: "epoch negative ns exact", json: ev("ts_ns", "-2000"), field: "ts_ns", want: int64(-2)},

		// Wrong forms.
		{name: "string as number", json: ev("s", "5"), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "s"},
		{name: "string as object", json: ev("s", `{"a":1}`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "s"},
		{name: "int as string", json: ev("i", `"5"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "i"},
		{name: "int as bool", json: ev("n", "true"), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "n"},
		{name: "float as int", json: ev("i", "3.5"), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "i"},
		{name: "exponent as int", json: ev("i", "1e3"), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "i"},
		{name: "float as string", json: ev("f", `"1.5"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "f"},
		{name: "bool as number", json: ev("b", "1"), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "b"},
		{name: "bool as string", json: ev("b", `"true"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "b"},
		{name: "date as number", json: ev("d", "20260101"), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "d"},
		{name: "date invalid leap day", json: ev("d", `"2026-02-29"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "d"},
		{name: "date month 13", json: ev("d", `"2026-13-01"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "d"},
		{name: "date with time", json: ev("d", `"2026-01-01T00:00:00Z"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "d"},
		{name: "timestamp as bool", json: ev("ts", "true"), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "timestamp not a time", json: ev("ts", `"yesterday"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "timestamp without zone", json: ev("ts", `"2026-01-01T00:00:00"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "timestamp date only", json: ev("ts", `"2026-01-01"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "timestamp hour 24", json: ev("ts", `"2026-01-01T24:00:00Z"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "timestamp leap second", json: ev("ts", `"2026-12-31T23:59:60Z"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "timestamp Feb 30", json: ev("ts", `"2026-02-30T00:00:00Z"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "timestamp empty fraction", json: ev("ts", `"2026-01-01T00:00:00.Z"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "timestamp offset without colon", json: ev("ts", `"2026-01-01T00:00:00+0200"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "timestamp offset hour 24", json: ev("ts", `"2026-01-01T00:00:00+24:00"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "timestamp trailing text", json: ev("ts", `"2026-01-01T00:00:00Zx"`), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		// Well-formed, but outside years 0001-9999 once in UTC.
		{name: "timestamp year 0", json: ev("ts", `"0000-06-01T00:00:00Z"`), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "ts"},
		{name: "timestamp offset before year 1", json: ev("ts", `"0001-01-01T00:00:00+01:00"`), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "ts"},
		{name: "timestamp offset after year 9999", json: ev("ts", `"9999-12-31T23:30:00-01:00"`), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "ts"},
		{name: "epoch fraction", json: ev("ts", "1767225600000.5"), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},

		// Missing and null.
		{name: "missing required string", json: ev("s", "<absent>"), wantErr: ErrDecode, wantReason: messages.ReasonMissingField, wantField: "s"},
		{name: "missing required int", json: ev("n", "<absent>"), wantErr: ErrDecode, wantReason: messages.ReasonMissingField, wantField: "n"},
		{name: "missing required timestamp", json: ev("ts", "<absent>"), wantErr: ErrDecode, wantReason: messages.ReasonMissingField, wantField: "ts"},
		{name: "null required string", json: ev("s", "null"), wantErr: ErrDecode, wantReason: messages.ReasonMissingField, wantField: "s"},
		{name: "null required int", json: ev("n", "null"), wantErr: ErrDecode, wantReason: messages.ReasonMissingField, wantField: "n"},
		{name: "null required timestamp", json: ev("ts", "null"), wantErr: ErrDecode, wantReason: messages.ReasonMissingField, wantField: "ts"},
		{name: "nullable string absent", json: event(""), field: "o", want: null{}},
		{name: "nullable string null", json: ev("o", "null"), field: "o", want: null{}},
		{name: "nullable int null", json: ev("i", "null"), field: "i", want: null{}},
		{name: "nullable float null", json: ev("f", "null"), field: "f", want: null{}},
		{name: "nullable bool null", json: ev("b", "null"), field: "b", want: null{}},
		{name: "nullable date null", json: ev("d", "null"), field: "d", want: null{}},
		{name: "nullable timestamp null", json: ev("ts_s", "null"), field: "ts_s", want: null{}},
		{name: "nullable timestamp absent", json: event(""), field: "ts_ns", want: null{}},

		// Ranges, NaN and infinities. fastjson reads NaN, Inf and nan as numbers.
		{name: "int overflow", json: ev("i", "9223372036854775808"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "i"},
		{name: "int underflow", json: ev("i", "-9223372036854775809"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "i"},
		{name: "int NaN", json: ev("i", "NaN"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "i"},
		{name: "int Inf", json: ev("i", "Inf"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "i"},
		{name: "float NaN", json: ev("f", "NaN"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "f"},
		{name: "float nan", json: ev("f", "nan"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "f"},
		{name: "float Inf", json: ev("f", "Inf"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "f"},
		{name: "float -inf", json: ev("f", "-inf"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "f"},
		{name: "float 1e400", json: ev("f", "1e400"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "f"},
		{name: "float -1e400", json: ev("f", "-1e400"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "f"},
		// An exponent is a float form, whatever its size.
		{name: "int 1e400", json: ev("i", "1e400"), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "i"},
		{name: "timestamp 1e400", json: ev("ts", "1e400"), wantErr: ErrDecode, wantReason: messages.ReasonWrongType, wantField: "ts"},
		{name: "float Infinity is not JSON", json: ev("f", "Infinity"), wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "float -Infinity is not JSON", json: ev("f", "-Infinity"), wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "timestamp NaN", json: ev("ts", "NaN"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "ts"},
		{name: "timestamp Inf", json: ev("ts", "Inf"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "ts"},
		{name: "epoch s after year 9999", json: ev("ts_s", "253402300800"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "ts_s"},
		{name: "epoch s overflows micros", json: ev("ts_s", "9223372036854775"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "ts_s"},
		{name: "epoch ms before year 1", json: ev("ts", "-62135596800001"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "ts"},
		{name: "epoch us overflow", json: ev("ts_us", "9223372036854775808"), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange, wantField: "ts_us"},
		{name: "epoch ns fits", json: ev("ts_ns", "9223372036854775807"), field: "ts_ns", want: int64(9223372036854775)},

		// UTF-8.
		{name: "invalid UTF-8", json: ev("s", "\"a\xffb\""), wantErr: ErrDecode, wantReason: messages.ReasonInvalidUTF8, wantField: "s"},
		{name: "truncated UTF-8 sequence", json: ev("o", "\"\xe2\x82\""), wantErr: ErrDecode, wantReason: messages.ReasonInvalidUTF8, wantField: "o"},
		{name: "surrogate pair escape", json: ev("s", `"\ud83d\ude00"`), field: "s", want: "😀"},

		// Not an object, broken JSON.
		{name: "array", json: `[1,2]`, wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "string", json: `"event"`, wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "null", json: `null`, wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "number", json: `42`, wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "empty", json: ``, wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "truncated", json: `{"s":"x","n":1,`, wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "trailing garbage", json: event("") + "x", wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "two objects", json: event("") + event(""), wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "unquoted key", json: `{s:"x"}`, wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},

		// Ignored fields.
		{name: "unknown fields ignored", json: event(`"extra":{"a":[1,2,{"b":null}]},"zz":"\xff"`), field: "s", want: "x"},
		{name: "whitespace around", json: " \n\t" + event("") + " \n", field: "n", want: int64(1)},
		{name: "fields in any order", json: `{"ts":"2026-01-01T00:00:00Z","o":"y","n":7,"s":"x"}`, field: "o", want: "y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(l)
			row, _, err := d.Decode([]byte(tt.json), 99, 0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode(%s) error = %v, want %v", tt.json, err, tt.wantErr)
			}
			if tt.wantErr != nil {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("error %v is not a *DecodeError", err)
				}
				if de.Reason != tt.wantReason || de.Field != tt.wantField {
					t.Fatalf("Decode(%s) = reason %q field %q (%v), want reason %q field %q", tt.json, de.Reason, de.Field, err, tt.wantReason, tt.wantField)
				}
				if row != nil {
					t.Fatalf("Decode(%s) returned a row with error %v", tt.json, err)
				}
				return
			}
			fi := l.Policy().FieldIndex(tt.field)
			if got := valueOf(row[l.FieldColumn(fi)]); got != tt.want {
				t.Fatalf("Decode(%s): field %s = %#v, want %#v", tt.json, tt.field, got, tt.want)
			}
			if got := l.Seq(row); got != 99 {
				t.Fatalf("Decode(%s): sequence = %d, want 99", tt.json, got)
			}
		})
	}
}

// TestDecoderRowShape checks every column of one row: values, NULLs, and the
// definition levels and column indexes the Parquet writer relies on.
func TestDecoderRowShape(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	d := NewDecoder(l)
	row, evt, err := d.Decode([]byte(`{"s":"a","n":2,"i":null,"f":1.25,"b":true,"ts":"2026-01-01T00:00:00.001Z","ts_s":1,"d":"2026-01-02"}`), 7, 123)
	if err != nil {
		t.Fatal(err)
	}
	if len(row) != l.NumColumns() {
		t.Fatalf("row has %d values, want %d", len(row), l.NumColumns())
	}
	if want := micros("2026-01-01T00:00:00.001Z"); evt != want {
		t.Fatalf("event time = %d, want %d", evt, want)
	}
	want := map[string]any{
		"s": "a", "n": int64(2), "i": null{}, "f": 1.25, "b": true, "ts": micros("2026-01-01T00:00:00.001Z"),
		"ts_s": int64(1e6), "ts_us": null{}, "ts_ns": null{}, "d": days("2026-01-02"), "o": null{}, SeqColumn: int64(7),
	}
	for c, name := range l.ColumnNames() {
		v := row[c]
		if got := valueOf(v); got != want[name] {
			t.Errorf("column %s = %#v, want %#v", name, got, want[name])
		}
		if v.Column() != c {
			t.Errorf("column %s: value has column index %d, want %d", name, v.Column(), c)
		}
		wantDef := 0
		if fi := l.Policy().FieldIndex(name); fi >= 0 && !l.Policy().Schema.Fields[fi].Required && !v.IsNull() {
			wantDef = 1
		}
		if v.DefinitionLevel() != wantDef {
			t.Errorf("column %s: definition level %d, want %d", name, v.DefinitionLevel(), wantDef)
		}
	}
}

func TestDecoderIngestMode(t *testing.T) {
	l := mustLayout(t, strings.Replace(allTypesPolicy, "time:\n  field: ts\n", "time:\n  mode: ingest\n", 1))
	d := NewDecoder(l)
	_, evt, err := d.Decode([]byte(event("")), 1, 5_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if evt != 5_000_000 {
		t.Fatalf("event time in ingest mode = %d, want the ingest time 5000000", evt)
	}
}

func TestDecoderLimits(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	deep := strings.Repeat(`{"a":`, 10_000) + "1" + strings.Repeat("}", 10_000)
	deepArray := strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000)
	// Padding in an ignored field makes an event of exactly n bytes.
	sized := func(n int) string {
		e := event(`"pad":""`)
		return event(`"pad":"` + strings.Repeat("x", n-len(e)) + `"`)
	}
	tests := []struct {
		name       string
		json       string
		wantErr    error
		wantReason string
	}{
		{name: "event at the size limit", json: sized(MaxEventBytes)},
		{name: "event over the size limit", json: sized(MaxEventBytes + 1), wantErr: ErrDecode, wantReason: messages.ReasonOutOfRange},
		{name: "deep object in an ignored field", json: event(`"x":` + deep), wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "deep array in an ignored field", json: event(`"x":` + deepArray), wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "deep object as the event", json: deep, wantErr: ErrDecode, wantReason: messages.ReasonMalformedJSON},
		{name: "moderately nested ignored field", json: event(`"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(l)
			_, _, err := d.Decode([]byte(tt.json), 1, 0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
			}
			if de := (*DecodeError)(nil); tt.wantErr != nil && (!errors.As(err, &de) || de.Reason != tt.wantReason) {
				t.Fatalf("Decode error = %v, want reason %s", err, tt.wantReason)
			}
		})
	}
}

// TestDecoderErrorKeepsRows guards the slab: a failed decode takes no row
// space, and rows handed out earlier keep their values while many more are
// decoded (until Reset).
func TestDecoderErrorKeepsRows(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	d := NewDecoder(l)
	decode := func(json string, seq uint64) (parquet.Row, error) {
		row, _, err := d.Decode([]byte(json), seq, 0)
		return row, err
	}
	first, err := decode(`{"s":"first","n":1,"ts":1000,"o":"opt","f":0.5}`, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The failing field comes after valid ones, so a buggy decoder would have
	// written part of a row.
	if _, err := decode(`{"s":"bad","n":2,"ts":2000,"o":"zzz","i":"x"}`, 2); !errors.Is(err, ErrDecode) {
		t.Fatalf("bad event: error = %v, want %v", err, ErrDecode)
	}
	second, err := decode(`{"s":"second","n":3,"ts":3000}`, 3)
	if err != nil {
		t.Fatal(err)
	}
	// The failed decode left no gap: the second row follows the first.
	if next := unsafe.Add(unsafe.Pointer(&first[0]), len(first)*int(unsafe.Sizeof(parquet.Value{}))); next != unsafe.Pointer(&second[0]) {
		t.Fatal("a failed decode took row space: the next row does not follow the previous one")
	}
	rows := []parquet.Row{first, second}
	for i := range 10_000 {
		seq := uint64(10 + i)
		if i%7 == 0 {
			if _, err := decode(`{"s":"bad","n":`+fmt.Sprint(i)+`,"ts":"never"}`, seq); !errors.Is(err, ErrDecode) {
				t.Fatalf("bad event %d: error = %v, want %v", i, err, ErrDecode)
			}
			continue
		}
		row, err := decode(fmt.Sprintf(`{"s":"row-%d","n":%d,"ts":%d,"o":"o-%d"}`, i, i, i, i%5), seq)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	col := func(name string) int { return l.FieldColumn(l.Policy().FieldIndex(name)) }
	checks := []struct {
		row  parquet.Row
		col  int
		want any
	}{
		{first, col("s"), "first"}, {first, col("n"), int64(1)}, {first, col("ts"), int64(1_000_000)},
		{first, col("o"), "opt"}, {first, col("f"), 0.5}, {first, col("i"), null{}}, {first, l.seqCol, int64(1)},
		{second, col("s"), "second"}, {second, col("n"), int64(3)}, {second, col("o"), null{}}, {second, l.seqCol, int64(3)},
	}
	for _, c := range checks {
		if got := valueOf(c.row[c.col]); got != c.want {
			t.Errorf("after 10,000 more rows, column %s = %#v, want %#v", l.ColumnNames()[c.col], got, c.want)
		}
	}
	for k, row := range rows[2:] {
		s := string(row[col("s")].ByteArray())
		var n int64
		if _, err := fmt.Sscanf(s, "row-%d", &n); err != nil || row[col("n")].Int64() != n || string(row[col("o")].ByteArray()) != fmt.Sprintf("o-%d", n%5) {
			t.Fatalf("row %d is corrupt: s=%q n=%d o=%q", k, s, row[col("n")].Int64(), row[col("o")].ByteArray())
		}
	}
}

// TestDecoderReuseAfterReset decodes several batches, resetting between them
// as the collector does after a flush: every batch reads back intact though it
// reuses the memory of the one before. Repeated, colliding, unique and long
// strings take every path of the string table and the arena.
func TestDecoderReuseAfterReset(t *testing.T) {
	l := mustLayout(t, allTypesPolicy)
	d := NewDecoder(l)
	colS, colO, colN := l.FieldColumn(0), l.FieldColumn(l.Policy().FieldIndex("o")), l.FieldColumn(1)
	long := strings.Repeat("long-", 60_000) // more than a quarter arena chunk
	for batch := range 3 {
		type want struct{ s, o string }
		var rows []parquet.Row
		var wants []want
		for i := range 6000 {
			w := want{s: fmt.Sprintf("v%d", (i*7+batch)%100), o: fmt.Sprintf("u-%d-%d", batch, i)}
			if i%1000 == 999 {
				w.o = long + w.o
			}
			row, _, err := d.Decode(fmt.Appendf(nil, `{"s":%q,"n":%d,"ts":1,"o":%q}`, w.s, i, w.o), uint64(i), 0)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, row)
			wants = append(wants, w)
		}
		// A cached string does not let an invalid one through.
		if _, _, err := d.Decode([]byte("{\"s\":\"v1\xff\",\"n\":1,\"ts\":1}"), 1, 0); !errors.Is(err, ErrDecode) {
			t.Fatalf("invalid UTF-8 after valid strings: error = %v, want %v", err, ErrDecode)
		}
		for i, row := range rows {
			if s, o, n := string(row[colS].ByteArray()), string(row[colO].ByteArray()), row[colN].Int64(); s != wants[i].s || o != wants[i].o || n != int64(i) {
				t.Fatalf("batch %d row %d = s %q, o %.20q, n %d; want s %q, o %.20q, n %d", batch, i, s, o, n, wants[i].s, wants[i].o, i)
			}
		}
		d.Reset()
	}
}
