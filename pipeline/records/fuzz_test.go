package records

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// decodeReasons are the dead-letter reasons a decode may give; late and
// future are the collector's, never the decoder's.
var decodeReasons = map[string]bool{
	messages.ReasonMalformedJSON: true,
	messages.ReasonMissingField:  true,
	messages.ReasonWrongType:     true,
	messages.ReasonOutOfRange:    true,
	messages.ReasonInvalidUTF8:   true,
}

// fuzzRef is a valid sales event decoded before and after every fuzz input:
// whatever the input did, the decoder must still work and the rows it handed
// out before must keep their values.
const fuzzRef = `{"store_id":"store-001","sale_id":"s-1","sku":"latte","quantity":2,"amount":7.5,"currency":"EUR","paid":true,"sold_at":"2026-03-08T10:15:30.123Z","business_day":"2026-03-08"}`

// FuzzDecode feeds arbitrary bytes to the decoder of the deployed
// daily_store_sales layout. The seeds in testdata/fuzz/FuzzDecode cover
// every kind of bad input the collector dead-letters (malformed JSON, wrong
// types, missing and null required fields, NaN and infinities, numbers out of
// range, invalid UTF-8, bad and out-of-range timestamps, deep nesting) and
// every accepted timestamp form. Properties:
//   - Decode never panics;
//   - a success is a well-formed row: NumColumns values, each with its own
//     column index, the definition level its nullability requires and the
//     Parquet kind of its field's type, required fields non-null, strings
//     valid UTF-8, floats finite, timestamps and dates within years
//     0001-9999, the event time equal to the time column, the sequence set;
//   - a failure is a *DecodeError (matching ErrDecode) with one of the
//     decoder's messages.Reason* values, no row, and a one-line message
//     (it goes into a NATS header);
//   - the decoder still decodes a valid event afterwards, and rows decoded
//     earlier are unchanged.
func FuzzDecode(f *testing.F) {
	l := salesLayout(f)
	// Generated rather than committed: an event just over MaxEventBytes.
	f.Add([]byte(`{"store_id":"` + strings.Repeat("x", MaxEventBytes) + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(l)
		ref, _, err := d.Decode([]byte(fuzzRef), 1, 0)
		if err != nil {
			t.Fatalf("reference event: %v", err)
		}
		want := valuesOf(ref)

		row, evt, err := d.Decode(data, 2, 1_700_000_000_000_000)
		if err != nil {
			checkDecodeError(t, err, row)
		} else {
			checkRow(t, l, row, evt, 2)
		}
		got := valuesOf(row)

		after, _, err := d.Decode([]byte(fuzzRef), 3, 0)
		if err != nil {
			t.Fatalf("reference event after the input: %v", err)
		}
		if g := valuesOf(after); !sameValues(g[:l.seqCol], want[:l.seqCol]) || !sameValues(g[l.seqCol+1:], want[l.seqCol+1:]) {
			t.Fatalf("reference event decodes differently after the input: %v, want %v", g, want)
		}
		if g := valuesOf(ref); !sameValues(g, want) {
			t.Fatalf("an earlier row changed: %v, was %v", g, want)
		}
		if g := valuesOf(row); !sameValues(g, got) {
			t.Fatalf("the input's row changed after another decode: %v, was %v", g, got)
		}
	})
}

func checkDecodeError(t *testing.T, err error, row parquet.Row) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
	if !errors.Is(err, ErrDecode) {
		t.Fatalf("error %v does not match ErrDecode", err)
	}
	if !decodeReasons[de.Reason] {
		t.Fatalf("error %v: reason %q is not a decode reason", err, de.Reason)
	}
	if msg := de.Error(); strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error message spans lines (it goes into a header): %q", msg)
	}
	if row != nil {
		t.Fatalf("error %v came with a row", err)
	}
}

func checkRow(t *testing.T, l *Layout, row parquet.Row, evt int64, seq uint64) {
	t.Helper()
	if len(row) != l.NumColumns() {
		t.Fatalf("row has %d values, want %d", len(row), l.NumColumns())
	}
	for c, v := range row {
		if v.Column() != c {
			t.Fatalf("value %d has column index %d", c, v.Column())
		}
	}
	if evt < minMicros || evt > maxMicros {
		t.Fatalf("event time %d is outside years 0001-9999", evt)
	}
	if got := row[l.timeCol].Int64(); got != evt {
		t.Fatalf("event time %d, time column %d", evt, got)
	}
	if got := l.Seq(row); got != seq {
		t.Fatalf("sequence %d, want %d", got, seq)
	}
	for i, f := range l.Policy().Schema.Fields {
		v := row[l.col[i]]
		if v.IsNull() {
			if f.Required {
				t.Fatalf("required field %s is null", f.Name)
			}
			if v.DefinitionLevel() != 0 {
				t.Fatalf("null field %s has definition level %d", f.Name, v.DefinitionLevel())
			}
			continue
		}
		if v.DefinitionLevel() != l.def[i] {
			t.Fatalf("field %s has definition level %d, want %d", f.Name, v.DefinitionLevel(), l.def[i])
		}
		switch f.Type {
		case windows.TypeString:
			if v.Kind() != parquet.ByteArray || !utf8.Valid(v.ByteArray()) {
				t.Fatalf("field %s = %v (%s), want valid UTF-8 bytes", f.Name, v, v.Kind())
			}
		case windows.TypeInt64:
			if v.Kind() != parquet.Int64 {
				t.Fatalf("field %s has kind %s", f.Name, v.Kind())
			}
		case windows.TypeFloat64:
			if v.Kind() != parquet.Double || math.IsNaN(v.Double()) || math.IsInf(v.Double(), 0) {
				t.Fatalf("field %s = %v (%s), want a finite double", f.Name, v, v.Kind())
			}
		case windows.TypeBool:
			if v.Kind() != parquet.Boolean {
				t.Fatalf("field %s has kind %s", f.Name, v.Kind())
			}
		case windows.TypeTimestamp:
			if v.Kind() != parquet.Int64 || v.Int64() < minMicros || v.Int64() > maxMicros {
				t.Fatalf("field %s = %v (%s), want microseconds within years 0001-9999", f.Name, v, v.Kind())
			}
		case windows.TypeDate:
			if v.Kind() != parquet.Int32 || int64(v.Int32()) < daysFromCivil(1, 1, 1) || int64(v.Int32()) > daysFromCivil(9999, 12, 31) {
				t.Fatalf("field %s = %v (%s), want days within years 0001-9999", f.Name, v, v.Kind())
			}
		default:
			t.Fatalf("field %s: unexpected type %s", f.Name, f.Type)
		}
	}
}

// valuesOf copies a row's values (string bytes included) so that a later
// change to the memory they live in shows.
func valuesOf(row parquet.Row) []parquet.Value {
	out := make([]parquet.Value, len(row))
	for i, v := range row {
		out[i] = v.Clone()
	}
	return out
}

func sameValues(a, b []parquet.Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !parquet.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestFuzzDecodeSeeds keeps the committed corpus meaningful: each seed's
// name says what it must do, "ok_…" decode or "<reason>_…" fail with that
// dead-letter reason, so a seed cannot drift into testing something else.
func TestFuzzDecodeSeeds(t *testing.T) {
	checkSeeds(t, salesLayout(t), "testdata/fuzz/FuzzDecode")
}

// checkSeeds decodes every seed of a corpus directory: a seed named ok_…
// must decode, one named <reason>_… must be dead-lettered with that reason.
func checkSeeds(t *testing.T, l *Layout, dir string) {
	t.Helper()
	seeds := readCorpus(t, dir)
	if len(seeds) < 12 {
		t.Fatalf("%d seeds in %s, want at least 12", len(seeds), dir)
	}
	for name, data := range seeds {
		t.Run(name, func(t *testing.T) {
			wantReason := ""
			if !strings.HasPrefix(name, "ok_") {
				for r := range decodeReasons {
					if strings.HasPrefix(name, r+"_") {
						wantReason = r
					}
				}
				if wantReason == "" {
					t.Fatalf("seed name %q starts neither with ok_ nor with a decode reason", name)
				}
			}
			_, _, err := NewDecoder(l).Decode(data, 1, 0)
			var de *DecodeError
			switch {
			case wantReason == "" && err != nil:
				t.Fatalf("Decode(%.80q) = %v, want a row", data, err)
			case wantReason != "" && (!errors.As(err, &de) || de.Reason != wantReason):
				t.Fatalf("Decode(%.80q) = %v, want reason %s", data, err, wantReason)
			}
		})
	}
}

// readCorpus reads a directory of single-[]byte fuzz corpus files ("go test
// fuzz v1" format), by file name.
func readCorpus(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		header, lit, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		lit, okPrefix := strings.CutPrefix(lit, "[]byte(")
		lit, okSuffix := strings.CutSuffix(lit, ")")
		if header != "go test fuzz v1" || !okPrefix || !okSuffix {
			t.Fatalf("%s: not a corpus file with one []byte value", e.Name())
		}
		s, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out[e.Name()] = []byte(s)
	}
	return out
}
