package records

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// typedPolicy has every decimal width, a rename, defaults, an object and
// lists (of scalars, of objects holding a list). Its time field is ts.
const typedPolicy = `name: typed
source:
  subjects: [events.typed.>]
schema:
  fields:
    - {name: ts,       type: timestamp, required: true}
    - {name: store_id, from: storeId, type: string, required: true}
    - {name: channel,  type: string, required: true, default: web}
    - {name: qty,      type: int64, default: "1"}
    - {name: d9,       type: "decimal(9,2)"}
    - {name: d18,      type: "decimal(18, 4)"}
    - {name: d38,      type: "decimal(38,10)"}
    - {name: dint,     type: "decimal(3,0)"}
    - name: s
      type: object
      fields:
        - {name: a, type: int64, required: true}
        - {name: b, from: B, type: string, default: none}
        - {name: when, type: date}
    - {name: l, type: list, items: {type: int64}}
    - {name: nn, type: list, items: {type: string, required: true}}
    - name: lines
      type: list
      items:
        type: object
        fields:
          - {name: sku, type: string}
          - {name: tags, type: list, items: {type: string}}
time:
  field: ts
window:
  size: 1h
output:
  sort_by: [store_id, ts]
load:
  table: typed
`

// tev is a typed event at 2026-01-01 with the given extra members.
func tev(extra string) string {
	s := `{"ts":"2026-01-01T00:00:00Z","storeId":"st"`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

// column returns the values of the leaf column named path in row.
func column(l *Layout, row parquet.Row, path string) []parquet.Value {
	var out []parquet.Value
	for _, v := range row {
		if l.names[v.Column()] == path {
			out = append(out, v)
		}
	}
	return out
}

func TestDecodeDecimal(t *testing.T) {
	l := mustLayout(t, typedPolicy)
	d := NewDecoder(l)
	tests := []struct {
		field, json string
		want        string // the unscaled value, or "null"
		reason      string
	}{
		{"d9", `12.34`, "1234", ""},
		{"d9", `"12.34"`, "1234", ""},
		{"d9", `"+12.3"`, "1230", ""},
		{"d9", `-0.01`, "-1", ""},
		{"d9", `0.1`, "10", ""},
		{"d9", `1.500`, "150", ""}, // trailing zeros beyond the scale are exact
		{"d9", `1.5e1`, "1500", ""},
		{"d9", `150e-2`, "150", ""},
		{"d9", `9999999.99`, "999999999", ""}, // the largest of decimal(9,2)
		{"d9", `-9999999.99`, "-999999999", ""},
		{"d9", `0`, "0", ""},
		{"d9", `-0`, "0", ""},
		{"d9", `0e999999`, "0", ""},
		{"d9", `null`, "null", ""},
		{"d9", `10000000`, "", messages.ReasonOutOfRange}, // 8 digits before the point, 7 allowed
		{"d9", `1.001`, "", messages.ReasonOutOfRange},    // a third digit after the point
		{"d9", `1e-3`, "", messages.ReasonOutOfRange},     // the same, as an exponent
		{"d9", `1e300`, "", messages.ReasonOutOfRange},    // far too large
		{"d9", `"1.2.3"`, "", messages.ReasonWrongType},   // not a number
		{"d9", `"12,5"`, "", messages.ReasonWrongType},    // no comma
		{"d9", `" 1"`, "", messages.ReasonWrongType},      // no spaces
		{"d9", `""`, "", messages.ReasonWrongType},        // empty
		{"d9", `"NaN"`, "", messages.ReasonWrongType},     // no NaN
		{"d9", `true`, "", messages.ReasonWrongType},      // not a number
		{"d9", `"1e"`, "", messages.ReasonWrongType},      // an exponent without digits
		{"d18", `99999999999999.9999`, "999999999999999999", ""},
		{"d18", `-99999999999999.9999`, "-999999999999999999", ""},
		{"d18", `100000000000000`, "", messages.ReasonOutOfRange},
		{"d38", `"9999999999999999999999999999.9999999999"`, "99999999999999999999999999999999999999", ""},
		{"d38", `-9999999999999999999999999999.9999999999`, "-99999999999999999999999999999999999999", ""},
		{"d38", `0.0000000001`, "1", ""},
		{"d38", `-1`, "-10000000000", ""},
		{"d38", `10000000000000000000000000000`, "", messages.ReasonOutOfRange},
		{"d38", `0.00000000001`, "", messages.ReasonOutOfRange},
		{"dint", `999`, "999", ""},
		{"dint", `-999`, "-999", ""},
		{"dint", `1000`, "", messages.ReasonOutOfRange},
		{"dint", `1.5`, "", messages.ReasonOutOfRange},
		{"dint", `2.0`, "2", ""},
	}
	for _, tc := range tests {
		t.Run(tc.field+"="+tc.json, func(t *testing.T) {
			row, _, err := d.Decode([]byte(tev(`"`+tc.field+`":`+tc.json)), 1, 0)
			if tc.reason != "" {
				var de *DecodeError
				if !errors.As(err, &de) || de.Reason != tc.reason || de.Field != tc.field {
					t.Fatalf("Decode = %v, want reason %s on field %s", err, tc.reason, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			vs := column(l, row, tc.field)
			if len(vs) != 1 {
				t.Fatalf("%d values", len(vs))
			}
			if got := unscaled(vs[0]); got != tc.want {
				t.Fatalf("unscaled %s, want %s (value %v)", got, tc.want, vs[0])
			}
		})
	}
}

// unscaled reads a decimal value of any width as an integer string.
func unscaled(v parquet.Value) string {
	switch {
	case v.IsNull():
		return "null"
	case v.Kind() == parquet.Int32:
		return fmt.Sprint(v.Int32())
	case v.Kind() == parquet.Int64:
		return fmt.Sprint(v.Int64())
	}
	b := v.ByteArray()
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n.String()
}

// TestDecimalSumsExactly: 0.1 + 0.2 is 0.3 in a decimal column, at every
// width, where float64 gives 0.30000000000000004.
func TestDecimalSumsExactly(t *testing.T) {
	l := mustLayout(t, typedPolicy)
	d := NewDecoder(l)
	for _, f := range []string{"d9", "d18", "d38"} {
		sum := new(big.Int)
		for _, x := range []string{"0.1", `"0.2"`} {
			row, _, err := d.Decode([]byte(tev(`"`+f+`":`+x)), 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := new(big.Int).SetString(unscaled(column(l, row, f)[0]), 10)
			sum.Add(sum, n)
		}
		_, scale, _ := l.ids[l.policy.FieldIndex(f)].field.Type.Decimal()
		want := new(big.Int).Mul(big.NewInt(3), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale-1)), nil))
		if sum.Cmp(want) != 0 {
			t.Errorf("%s: 0.1 + 0.2 = %s × 10^-%d, want %s", f, sum, scale, want)
		}
	}
}

func TestDecimalOrder(t *testing.T) {
	// Compare orders FIXED_LEN_BYTE_ARRAY decimals by value.
	l := mustLayout(t, strings.Replace(typedPolicy, "sort_by: [store_id, ts]", "sort_by: [d38]", 1))
	d := NewDecoder(l)
	texts := []string{"-100", "-1", "-0.0000000001", "0", "0.0000000001", "1", "99"}
	var rows []parquet.Row
	for i := len(texts) - 1; i >= 0; i-- {
		row, _, err := d.Decode([]byte(tev(`"d38":`+texts[i])), uint64(i), 0)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	l.SortRows(rows)
	for i, r := range rows {
		if got := l.Seq(r); got != uint64(i) {
			t.Fatalf("position %d holds %s", i, texts[got])
		}
	}
}

func TestDecodeRenamesAndDefaults(t *testing.T) {
	l := mustLayout(t, typedPolicy)
	d := NewDecoder(l)
	row, _, err := d.Decode([]byte(`{"ts":"2026-01-01T00:00:00Z","storeId":"s-1","store_id":"ignored","channel":null,"s":{"a":1,"B":"bee"}}`), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"store_id": "s-1", "channel": "web", "qty": "1", "s.b": "bee", "s.a": "1"} {
		if got := column(l, row, path); len(got) != 1 || got[0].String() != want {
			t.Errorf("%s = %v, want %s", path, got, want)
		}
	}
	row, _, err = d.Decode([]byte(`{"ts":"2026-01-01T00:00:00Z","storeId":"s-1","qty":5,"channel":"app","s":{"a":2,"b":"not read: the key is B"}}`), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"channel": "app", "qty": "5", "s.b": "none"} {
		if got := column(l, row, path); len(got) != 1 || got[0].String() != want {
			t.Errorf("%s = %v, want %s", path, got, want)
		}
	}
	// The renamed field's own name is not read; it is required.
	_, _, err = d.Decode([]byte(`{"ts":"2026-01-01T00:00:00Z","store_id":"x"}`), 3, 0)
	var de *DecodeError
	if !errors.As(err, &de) || de.Reason != messages.ReasonMissingField || de.Field != "store_id" {
		t.Fatalf("without storeId: %v", err)
	}
}

func TestDecodeNestedErrors(t *testing.T) {
	l := mustLayout(t, typedPolicy)
	d := NewDecoder(l)
	for _, tc := range []struct{ json, reason, field string }{
		{tev(`"s":[1]`), messages.ReasonWrongType, "s"},
		{tev(`"s":{"b":"x"}`), messages.ReasonMissingField, "s.a"},
		{tev(`"s":{"a":"1"}`), messages.ReasonWrongType, "s.a"},
		{tev(`"s":{"a":1,"when":"2026-13-01"}`), messages.ReasonWrongType, "s.when"},
		{tev(`"l":{"a":1}`), messages.ReasonWrongType, "l"},
		{tev(`"l":[1,"2"]`), messages.ReasonWrongType, "l[]"},
		{tev(`"l":[1,1.5]`), messages.ReasonWrongType, "l[]"},
		{tev(`"nn":["a",null]`), messages.ReasonMissingField, "nn[]"},
		{tev(`"lines":[{"tags":[1]}]`), messages.ReasonWrongType, "lines[].tags[]"},
		{tev("\"lines\":[{\"sku\":\"\xff\"}]"), messages.ReasonInvalidUTF8, "lines[].sku"},
		{tev(`"l":[` + strings.Repeat("1,", MaxListValues+1) + `1]`), messages.ReasonOutOfRange, "l"},
	} {
		row, _, err := d.Decode([]byte(tc.json), 1, 0)
		var de *DecodeError
		if !errors.As(err, &de) || de.Reason != tc.reason || de.Field != tc.field || row != nil {
			t.Errorf("Decode(%.80s) = %v, want %s on %s", tc.json, err, tc.reason, tc.field)
		}
	}
}

// TestNestedRoundTrip: nested rows, written, read back and merged with a
// redelivered copy, come out value for value, levels included.
func TestNestedRoundTrip(t *testing.T) {
	l := mustLayout(t, typedPolicy)
	d := NewDecoder(l)
	events := []string{
		tev(`"s":{"a":1,"B":"x","when":"2026-01-02"},"l":[1,2,3],"nn":["p"],"lines":[{"sku":"a","tags":["t1","t2"]},{"sku":"b","tags":[]},null,{"tags":null}],"d38":"-12.5"`),
		tev(`"l":[],"nn":[],"lines":[]`),
		tev(`"l":[null],"s":null,"lines":null,"d9":1`),
		tev(`"lines":[{"sku":"only"}],"l":[1],"l":[7,8]`), // a repeated key: the last one wins
		`{"storeId":"a","ts":"2026-01-01T00:00:01Z","d18":"0.0001"}`,
	}
	var rows []parquet.Row
	for i, e := range events {
		row, _, err := d.Decode([]byte(e), uint64(i+1), 0)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		checkLevels(t, l, row)
		rows = append(rows, row)
	}
	if got := column(l, rows[3], "l.list.element"); len(got) != 2 || got[0].Int64() != 7 || got[1].Int64() != 8 {
		t.Fatalf("repeated key l: %v, want [7 8]", got)
	}
	want := make([]parquet.Row, len(rows))
	for i, r := range rows {
		want[i] = r.Clone()
	}
	l.SortRows(rows)
	var buf bytes.Buffer
	if err := l.WriteFile(&buf, rows, FileOptions{Codec: Codec(windows.CompressZstd)}); err != nil {
		t.Fatal(err)
	}
	f, err := l.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]parquet.Row{}
	stats, err := l.Merge([]*parquet.File{f, f}, func(rs []parquet.Row) error {
		for _, r := range rs {
			got[l.Seq(r)] = r.Clone()
		}
		return nil
	})
	if err != nil || stats.Rows != int64(len(events)) || stats.Duplicates != int64(len(events)) {
		t.Fatalf("Merge = %+v, %v", stats, err)
	}
	for i, w := range want {
		g := got[uint64(i+1)]
		if !g.Equal(w) {
			t.Errorf("row %d:\n got %v\nwant %v", i+1, g, w)
		}
	}
}

// checkLevels checks the shape of a row: column indexes never decrease, one
// value per non-repeated column at its index, levels within the column's
// maximum.
func checkLevels(t *testing.T, l *Layout, row parquet.Row) {
	t.Helper()
	cols := l.schema.Columns()
	if len(row) < l.fixed {
		t.Fatalf("row has %d values, want at least %d", len(row), l.fixed)
	}
	last := -1
	for i, v := range row {
		c := v.Column()
		if c < last || c >= len(cols) || (i < l.fixed && c != i) {
			t.Fatalf("value %d has column %d (previous %d)", i, c, last)
		}
		last = c
		leaf, _ := l.schema.Lookup(cols[c]...)
		if v.DefinitionLevel() > leaf.MaxDefinitionLevel || v.RepetitionLevel() > leaf.MaxRepetitionLevel {
			t.Fatalf("value %d (%s) has levels r%d d%d, max r%d d%d", i, l.names[c], v.RepetitionLevel(), v.DefinitionLevel(), leaf.MaxRepetitionLevel, leaf.MaxDefinitionLevel)
		}
		if !v.IsNull() && v.DefinitionLevel() != leaf.MaxDefinitionLevel {
			t.Fatalf("value %d (%s) is not null at definition level %d of %d", i, l.names[c], v.DefinitionLevel(), leaf.MaxDefinitionLevel)
		}
	}
}

func TestColumnsTypes(t *testing.T) {
	p, err := windows.ParsePolicy("typed.yaml", []byte(typedPolicy))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range Columns(p) {
		got = append(got, fmt.Sprintf("%s %s %v", c.Name, c.Type, c.Required))
	}
	want := []string{
		"ts timestamp true", "store_id string true", "channel string true", "qty int64 false",
		"d9 decimal(9,2) false", "d18 decimal(18,4) false", "d38 decimal(38,10) false", "dint decimal(3,0) false",
		"s object<a:int64,b:string,when:date> false", "l list<int64> false", "nn list<string> false",
		"lines list<object<sku:string,tags:list<string>>> false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Columns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSchemaValidation: the schema checks, with file:line: field messages.
func TestSchemaValidation(t *testing.T) {
	base := func(fields string) string {
		return "name: v\nsource: {subjects: [e.v]}\nschema:\n  fields:\n    - {name: ts, type: timestamp, required: true}\n" + fields +
			"time: {field: ts}\nwindow: {size: 1h}\nload: {table: v}\n"
	}
	for _, tc := range []struct{ fields, want string }{
		{"    - {name: p, type: \"decimal(39,2)\"}\n", `v.yaml:6: schema.fields[1].type: "decimal(39,2)" is not a valid decimal type (decimal(P,S): precision P 1..38`},
		{"    - {name: p, type: \"decimal(4,5)\"}\n", `v.yaml:6: schema.fields[1].type: "decimal(4,5)" is not a valid decimal type`},
		{"    - {name: p, type: decimal}\n", `schema.fields[1].type: "decimal" is not a valid decimal type`},
		{"    - {name: p, type: \"decimal(0,0)\"}\n", `"decimal(0,0)" is not a valid decimal type`},
		{"    - {name: p, type: \"decimal(5,2)\", default: \"1.234\"}\n", `v.yaml:6: schema.fields[1].default: "1.234" is not a valid decimal(5,2) value (more than 2 digits after the point)`},
		{"    - {name: p, type: \"decimal(5,2)\", default: \"1234\"}\n", `"1234" is not a valid decimal(5,2) value (more than 3 digits before the point)`},
		{"    - {name: n, type: int64, default: x}\n", `schema.fields[1].default: "x" is not a valid int64 value (want an integer that fits 64 bits)`},
		{"    - {name: b, type: bool, default: \"yes\"}\n", `"yes" is not a valid bool value (want true or false)`},
		{"    - {name: d, type: date, default: \"2026-02-30\"}\n", `"2026-02-30" is not a valid date value`},
		{"    - {name: o, type: object}\n", `schema.fields[1].fields: an object field needs at least one member`},
		{"    - {name: o, type: object, default: x, fields: [{name: a, type: int64}]}\n", `schema.fields[1].default: is only allowed on scalar fields`},
		{"    - {name: o, type: object, fields: [{name: A, type: int64}]}\n", `schema.fields[1].fields[0].name: "A" is not a valid field name`},
		{"    - {name: o, type: object, fields: [{name: a, type: int64}, {name: a, type: string}]}\n", `schema.fields[1].fields[1].name: "a" is already the name of schema.fields[1].fields[0]`},
		{"    - {name: o, type: object, fields: [{name: a, type: int64}, {name: b, from: a, type: string}]}\n", `schema.fields[1].fields[1].from: JSON key "a" is already read by schema.fields[1].fields[0]`},
		{"    - {name: l, type: list}\n", `schema.fields[1].items: a list field needs the type of its elements`},
		{"    - {name: l, type: list, items: {type: int}}\n", `schema.fields[1].items.type: "int" is not a type`},
		{"    - {name: l, type: list, items: {type: int64, bogus: 1}}\n", `v.yaml:6: schema.fields[1].items: bogus: unknown field`},
		{"    - {name: l, type: list, items: {name: x, type: int64}}\n", `schema.fields[1].items.name: elements have no name`},
		{"    - {name: l, type: list, items: {type: int64, default: \"1\"}}\n", `schema.fields[1].items.default: elements have no default`},
		{"    - {name: n, type: int64, items: {type: int64}}\n", `schema.fields[1].items: is only allowed on list fields`},
		{"    - {name: n, type: int64, fields: [{name: a, type: int64}]}\n", `schema.fields[1].fields: is only allowed on object fields`},
		{"    - {name: l, type: list, items: {type: list, items: {type: list, items: {type: list, items: {type: list, items: {type: int64}}}}}}\n",
			`schema.fields[1].items.items.items.items.type: list nests too deep: at most 4 levels of object and list`},
		{"    - {name: a, type: string}\n    - {name: b, from: a, type: string}\n", `v.yaml:7: schema.fields[2].from: JSON key "a" is already read by schema.fields[1]`},
		{"    - {name: a, from: \"" + strings.Repeat("k", 257) + "\", type: string}\n", `schema.fields[1].from: must be a JSON key of 1..256 bytes`},
		{"    - {name: o, type: object, fields: [{name: a, type: int64}]}\noutput: {sort_by: [o]}\n", `output.sort_by[0]: "o" is an object field: sort by top-level scalar fields only`},
	} {
		_, err := windows.ParsePolicy("v.yaml", []byte(base(tc.fields)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("fields\n%s: error %v\nwant it to contain %s", tc.fields, err, tc.want)
		}
	}
	// The time field cannot have a default.
	y := strings.Replace(base(""), "{name: ts, type: timestamp, required: true}", "{name: ts, type: timestamp, required: true, default: \"2026-01-01T00:00:00Z\"}", 1)
	if _, err := windows.ParsePolicy("v.yaml", []byte(y)); err == nil || !strings.Contains(err.Error(), `schema.fields[0].default: is not allowed on the time field "ts"`) {
		t.Errorf("default on the time field: %v", err)
	}
	// Valid: every new type, and a policy that writes back and parses the same.
	p, err := windows.ParsePolicy("typed.yaml", []byte(typedPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Schema.Fields[5].Type; got != "decimal(18,4)" {
		t.Errorf("decimal(18, 4) is written %q, want decimal(18,4)", got)
	}
}

// FuzzDecodeTyped feeds arbitrary bytes to the decoder of typedPolicy
// (decimals of every width, renames, defaults, objects, lists of scalars
// and of objects). The seeds in testdata/fuzz/FuzzDecodeTyped are named like
// FuzzDecode's: "ok_…" decode, "<reason>_…" fail with that reason.
// Properties: Decode never panics; a failure is a one-line *DecodeError
// with a decode reason and no row; a row is well formed (checkLevels) and
// comes back value for value from a Parquet file; the decoder still decodes
// the reference event afterwards.
func FuzzDecodeTyped(f *testing.F) {
	l := mustLayout(f, typedPolicy)
	ref := tev(`"d38":"-1.5","s":{"a":1},"lines":[{"sku":"a","tags":["x"]}]`)
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(l)
		row, _, err := d.Decode(data, 2, 1_700_000_000_000_000)
		if err != nil {
			checkDecodeError(t, err, row)
		} else {
			checkLevels(t, l, row)
			want := row.Clone()
			var buf bytes.Buffer
			if err := l.WriteFile(&buf, []parquet.Row{row}, FileOptions{}); err != nil {
				t.Fatalf("write: %v", err)
			}
			pf, err := l.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			var got parquet.Row
			if _, err := l.Merge([]*parquet.File{pf}, func(rs []parquet.Row) error {
				got = rs[0].Clone()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) {
				t.Fatalf("read back %v, wrote %v", got, want)
			}
		}
		if _, _, err := d.Decode([]byte(ref), 3, 0); err != nil {
			t.Fatalf("reference event after the input: %v", err)
		}
	})
}

func TestFuzzDecodeTypedSeeds(t *testing.T) {
	checkSeeds(t, mustLayout(t, typedPolicy), "testdata/fuzz/FuzzDecodeTyped")
}

// BenchmarkDecodeTyped decodes events with decimals, an object and lists
// (of scalars, of objects holding a list), resetting every 100,000 rows as
// the collector does after a flush.
//
//	go test -run xxx -bench DecodeTyped -benchtime 3s -cpu 1 ./pipeline/records/
func BenchmarkDecodeTyped(b *testing.B) {
	l := mustLayout(b, typedPolicy)
	d := NewDecoder(l)
	event := []byte(tev(`"d9":"12.34","d18":1234.5678,"d38":"-1234567890.0123456789","s":{"a":1,"B":"b","when":"2026-01-02"},` +
		`"l":[1,2,3,4],"nn":["x","y"],"lines":[{"sku":"latte","tags":["hot","large"]},{"sku":"tea","tags":[]}]`))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, _, err := d.Decode(event, uint64(n), 0); err != nil {
			b.Fatal(err)
		}
		if n++; n == benchFlushRows {
			d.Reset()
			n = 0
		}
	}
}
