package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/windrow/windrow/adapters/warehouse"
)

// readChunk is how many rows are read from a Parquet file at a time.
const readChunk = 1024

// batchFile is one opened object of a batch and how to read its rows.
type batchFile struct {
	key    string
	file   *parquet.File
	fields []*anode // one per batch column, then _source_seq
	// flat: no column repeats, so every row holds one value per column at
	// the column's index; otherwise rows are split by column (row.Range).
	flat  bool
	ncols int
}

// anode is how to read one value of a column (or a part of a nested
// column) from a row: its leaf columns and Parquet levels.
type anode struct {
	name     string
	t        *colType
	leaf     bool
	col      int // leaf: column index; otherwise the first leaf under the node
	leaves   []int
	def      int // definition level of a present (non-null) value
	elemDef  int // list: definition level of a list with an element
	rep      int // list: repetition level of its elements
	children []*anode
	elem     *anode
	conv     func(parquet.Value) any        // leaf: a value of its own (in a list or object)
	put      func(parquet.Value, *slot) any // leaf: a value pointing into the column's slot
}

// planFile maps the batch's columns to f's columns, checking that their
// types agree; a difference wraps ErrSchemaMismatch.
func planFile(key string, f *parquet.File, cols []column) (*batchFile, error) {
	s := f.Schema()
	bf := &batchFile{key: key, file: f, flat: true, ncols: len(s.Columns())}
	for _, path := range s.Columns() {
		if lc, ok := s.Lookup(path...); ok && lc.MaxRepetitionLevel > 0 {
			bf.flat = false
		}
	}
	want := append(append([]column(nil), cols...), column{name: "_source_seq", t: &colType{kind: "int64", spelled: "int64"}, required: true})
	for _, c := range want {
		var node parquet.Node
		for _, fl := range s.Fields() {
			if fl.Name() == c.name {
				node = fl
			}
		}
		if node == nil {
			return nil, fmt.Errorf("%w: object %s has no column %q", warehouse.ErrSchemaMismatch, key, c.name)
		}
		n, err := buildNode(s, []string{c.name}, node, c.t, 0, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: object %s column %q (policy type %s): %w", warehouse.ErrSchemaMismatch, key, c.name, c.t.spelled, err)
		}
		bf.fields = append(bf.fields, n)
	}
	return bf, nil
}

// buildNode compiles the Parquet node at path for type t; def and rep are
// the levels of its parent.
func buildNode(s *parquet.Schema, path []string, node parquet.Node, t *colType, def, rep int) (*anode, error) {
	if node.Repeated() {
		return nil, fmt.Errorf("%s: repeated field without a LIST group", pathString(path))
	}
	if node.Optional() {
		def++
	}
	n := &anode{name: path[len(path)-1], t: t, def: def}
	switch t.kind {
	case "object":
		if node.Leaf() {
			return nil, fmt.Errorf("%s: want a group, file has %s", pathString(path), node.Type())
		}
		fields := node.Fields()
		if len(fields) != len(t.members) {
			return nil, fmt.Errorf("%s: %d members, file has %d", pathString(path), len(t.members), len(fields))
		}
		for i, m := range t.members {
			if fields[i].Name() != m.name {
				return nil, fmt.Errorf("%s: member %d is %q, file has %q", pathString(path), i, m.name, fields[i].Name())
			}
			c, err := buildNode(s, append(path[:len(path):len(path)], m.name), fields[i], m.t, def, rep)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, c)
			n.leaves = append(n.leaves, c.leaves...)
		}
		n.col = n.leaves[0]
		return n, nil
	case "list":
		// Three levels: <list> (LIST) { repeated group list { <element> } }.
		fields := node.Fields()
		if node.Leaf() || len(fields) != 1 || !fields[0].Repeated() || fields[0].Leaf() || len(fields[0].Fields()) != 1 {
			return nil, fmt.Errorf("%s: want a three-level LIST group", pathString(path))
		}
		mid := fields[0]
		n.elemDef, n.rep = def+1, rep+1
		elem := mid.Fields()[0]
		e, err := buildNode(s, append(path[:len(path):len(path)], mid.Name(), elem.Name()), elem, t.elem, n.elemDef, n.rep)
		if err != nil {
			return nil, err
		}
		n.elem, n.leaves, n.col = e, e.leaves, e.col
		return n, nil
	}
	if !node.Leaf() {
		return nil, fmt.Errorf("%s: want a %s value, file has a group", pathString(path), t.spelled)
	}
	lc, ok := s.Lookup(path...)
	if !ok {
		return nil, fmt.Errorf("%s: no such column", pathString(path))
	}
	n.leaf, n.col, n.leaves = true, lc.ColumnIndex, []int{lc.ColumnIndex}
	conv, put, err := leafConv(t, node)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pathString(path), err)
	}
	n.conv, n.put = conv, put
	return n, nil
}

func pathString(path []string) string {
	s := path[0]
	for _, p := range path[1:] {
		s += "." + p
	}
	return s
}

// slot holds the current row's value of one top-level column: the values
// handed to CopyFrom point into it and implement pgtype's valuer interfaces,
// so converting a row allocates nothing (only a string's slice header is
// boxed). pgx encodes a row before asking for the next, when the slot is
// reused.
type slot struct {
	i   int8Slot
	f   float8Slot
	b   boolSlot
	t   timeSlot
	d   dateSlot
	dec decimalSlot
	big bigDecimalSlot
}

type int8Slot struct{ v int64 }

func (s *int8Slot) Int64Value() (pgtype.Int8, error) {
	return pgtype.Int8{Int64: s.v, Valid: true}, nil
}

type float8Slot struct{ v float64 }

func (s *float8Slot) Float64Value() (pgtype.Float8, error) {
	return pgtype.Float8{Float64: s.v, Valid: true}, nil
}

type boolSlot struct{ v bool }

func (s *boolSlot) BoolValue() (pgtype.Bool, error) { return pgtype.Bool{Bool: s.v, Valid: true}, nil }

type timeSlot struct{ v time.Time }

func (s *timeSlot) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz{Time: s.v, Valid: true}, nil
}

type dateSlot struct{ v pgtype.Date }

func (s *dateSlot) DateValue() (pgtype.Date, error) { return s.v, nil }

// bigDecimalSlot is a decimal of precision 19..38 (FIXED_LEN_BYTE_ARRAY).
type bigDecimalSlot struct {
	n   big.Int
	exp int32
}

func (s *bigDecimalSlot) NumericValue() (pgtype.Numeric, error) {
	return pgtype.Numeric{Int: &s.n, Exp: s.exp, Valid: true}, nil
}

// leafConv returns the conversions of a leaf's non-null values to what pgx
// encodes for the column's PostgreSQL type, after checking the file's
// physical and logical type: value returns a value of its own (for lists
// and objects), put one that points into the column's slot.
func leafConv(t *colType, node parquet.Node) (value func(parquet.Value) any, put func(parquet.Value, *slot) any, _ error) {
	typ := node.Type()
	kind := typ.Kind()
	lt := typ.LogicalType()
	bad := func() (func(parquet.Value) any, func(parquet.Value, *slot) any, error) {
		return nil, nil, fmt.Errorf("want %s, file has %s", t.spelled, typ)
	}
	switch t.kind {
	case "string":
		if kind != parquet.ByteArray {
			return bad()
		}
		// The bytes stay valid until the next chunk is read, after pgx
		// encoded the row.
		return func(v parquet.Value) any { return v.ByteArray() },
			func(v parquet.Value, _ *slot) any { return v.ByteArray() }, nil
	case "int64":
		if kind != parquet.Int64 {
			return bad()
		}
		return func(v parquet.Value) any { return v.Int64() },
			func(v parquet.Value, s *slot) any { s.i.v = v.Int64(); return &s.i }, nil
	case "float64":
		if kind != parquet.Double {
			return bad()
		}
		return func(v parquet.Value) any { return v.Double() },
			func(v parquet.Value, s *slot) any { s.f.v = v.Double(); return &s.f }, nil
	case "bool":
		if kind != parquet.Boolean {
			return bad()
		}
		return func(v parquet.Value) any { return v.Boolean() },
			func(v parquet.Value, s *slot) any { s.b.v = v.Boolean(); return &s.b }, nil
	case "timestamp":
		ts, ok := logical[*format.TimestampType](lt)
		if kind != parquet.Int64 || !ok {
			return bad()
		}
		var toTime func(int64) time.Time
		switch ts.Unit.Value.(type) {
		case *format.MicroSeconds:
			toTime = time.UnixMicro
		case *format.MilliSeconds:
			toTime = time.UnixMilli
		case *format.NanoSeconds:
			toTime = func(n int64) time.Time { return time.Unix(0, n) }
		default:
			return bad()
		}
		return func(v parquet.Value) any { return toTime(v.Int64()) },
			func(v parquet.Value, s *slot) any { s.t.v = toTime(v.Int64()); return &s.t }, nil
	case "date":
		if _, ok := logical[*format.DateType](lt); kind != parquet.Int32 || !ok {
			return bad()
		}
		date := func(v parquet.Value) pgtype.Date {
			return pgtype.Date{Time: time.Unix(int64(v.Int32())*86400, 0).UTC(), Valid: true}
		}
		return func(v parquet.Value) any { return date(v) },
			func(v parquet.Value, s *slot) any { s.d.v = date(v); return &s.d }, nil
	case "decimal":
		dec, ok := logical[*format.DecimalType](lt)
		if !ok || int(dec.Scale) != t.scale || int(dec.Precision) != t.prec {
			return bad()
		}
		exp := int32(-t.scale)
		var small func(parquet.Value) int64
		switch kind {
		case parquet.Int32:
			small = func(v parquet.Value) int64 { return int64(v.Int32()) }
		case parquet.Int64:
			small = parquet.Value.Int64
		case parquet.FixedLenByteArray, parquet.ByteArray:
			return func(v parquet.Value) any {
					n := new(big.Int)
					twosComplement(n, v.ByteArray())
					return pgtype.Numeric{Int: n, Exp: exp, Valid: true}
				}, func(v parquet.Value, s *slot) any {
					twosComplement(&s.big.n, v.ByteArray())
					s.big.exp = exp
					return &s.big
				}, nil
		default:
			return bad()
		}
		return func(v parquet.Value) any {
				return pgtype.Numeric{Int: big.NewInt(small(v)), Exp: exp, Valid: true}
			}, func(v parquet.Value, s *slot) any {
				s.dec = decimalSlot{unscaled: small(v), scale: int16(t.scale)}
				return &s.dec
			}, nil
	}
	return bad()
}

// logical returns a leaf's logical type as T, if it is one.
func logical[T format.LogicalTypeValue](lt *format.LogicalType) (T, bool) {
	var zero T
	if lt == nil {
		return zero, false
	}
	v, ok := lt.Value.(T)
	return v, ok
}

// twosComplement sets n to a big-endian two's complement integer.
func twosComplement(n *big.Int, b []byte) {
	n.SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
}

// cursor walks the values of each column of one row.
type cursor struct {
	cols [][]parquet.Value
	pos  []int
}

func (c *cursor) peek(col int) (parquet.Value, bool) {
	if c.pos[col] >= len(c.cols[col]) {
		return parquet.Value{}, false
	}
	return c.cols[col][c.pos[col]], true
}

func (c *cursor) skip(n *anode) {
	for _, l := range n.leaves {
		c.pos[l]++
	}
}

// read assembles one value of n: nil, a leaf's converted value, a
// []any (list) or []any of members (object).
func (c *cursor) read(n *anode) any {
	v, ok := c.peek(n.col)
	if !ok {
		return nil
	}
	switch {
	case n.leaf:
		c.pos[n.col]++
		if v.DefinitionLevel() < n.def || v.IsNull() {
			return nil
		}
		return n.conv(v)
	case n.elem != nil:
		if v.DefinitionLevel() < n.def {
			c.skip(n)
			return nil
		}
		if v.DefinitionLevel() < n.elemDef {
			c.skip(n)
			return []any{}
		}
		var out []any
		for {
			out = append(out, c.read(n.elem))
			next, ok := c.peek(n.col)
			if !ok || next.RepetitionLevel() < n.rep {
				return out
			}
		}
	default:
		if v.DefinitionLevel() < n.def {
			c.skip(n)
			return nil
		}
		out := make([]any, len(n.children))
		for i, ch := range n.children {
			out[i] = c.read(ch)
		}
		return out
	}
}

// nestedValue turns an assembled value of a non-leaf node into what pgx
// encodes: an array of the element type, or JSON for jsonb.
func nestedValue(n *anode, v any) any {
	if v == nil {
		return nil
	}
	if n.elem != nil && n.t.elemArray {
		return arrayValue(n.elem.t, v.([]any))
	}
	return json.RawMessage(appendJSON(nil, n, v))
}

// arrayValue is a list of scalars as a typed slice pgx encodes as an array
// (null elements included).
func arrayValue(t *colType, vs []any) any {
	switch t.kind {
	case "string":
		out := make([]pgtype.Text, len(vs))
		for i, v := range vs {
			if v != nil {
				out[i] = pgtype.Text{String: string(v.([]byte)), Valid: true}
			}
		}
		return out
	case "int64":
		out := make([]pgtype.Int8, len(vs))
		for i, v := range vs {
			if v != nil {
				out[i] = pgtype.Int8{Int64: v.(int64), Valid: true}
			}
		}
		return out
	case "float64":
		out := make([]pgtype.Float8, len(vs))
		for i, v := range vs {
			if v != nil {
				out[i] = pgtype.Float8{Float64: v.(float64), Valid: true}
			}
		}
		return out
	case "bool":
		out := make([]pgtype.Bool, len(vs))
		for i, v := range vs {
			if v != nil {
				out[i] = pgtype.Bool{Bool: v.(bool), Valid: true}
			}
		}
		return out
	case "timestamp":
		out := make([]pgtype.Timestamptz, len(vs))
		for i, v := range vs {
			if v != nil {
				out[i] = pgtype.Timestamptz{Time: v.(time.Time), Valid: true}
			}
		}
		return out
	case "date":
		out := make([]pgtype.Date, len(vs))
		for i, v := range vs {
			if v != nil {
				out[i] = v.(pgtype.Date)
			}
		}
		return out
	case "decimal":
		out := make([]pgtype.Numeric, len(vs))
		for i, v := range vs {
			if v != nil {
				out[i] = v.(pgtype.Numeric)
			}
		}
		return out
	}
	panic("postgres: array of " + t.kind) // parseType allows arrays of the kinds above only
}

// appendJSON writes an assembled value as JSON: objects by member name,
// decimals as exact numbers, timestamps as RFC 3339 strings, dates as
// YYYY-MM-DD.
func appendJSON(b []byte, n *anode, v any) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	switch {
	case n.elem != nil:
		b = append(b, '[')
		for i, e := range v.([]any) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, n.elem, e)
		}
		return append(b, ']')
	case !n.leaf:
		b = append(b, '{')
		for i, m := range v.([]any) {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, n.children[i].name) // member names are [a-z0-9_]
			b = append(b, ':')
			b = appendJSON(b, n.children[i], m)
		}
		return append(b, '}')
	}
	switch x := v.(type) {
	case []byte:
		q, _ := json.Marshal(string(x)) // a string cannot fail to marshal
		return append(b, q...)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		q, err := json.Marshal(x)
		if err != nil { // NaN, ±Inf: JSON has no such number
			return strconv.AppendQuote(b, strconv.FormatFloat(x, 'g', -1, 64))
		}
		return append(b, q...)
	case bool:
		return strconv.AppendBool(b, x)
	case time.Time:
		return strconv.AppendQuote(b, x.UTC().Format(time.RFC3339Nano))
	case pgtype.Date:
		return strconv.AppendQuote(b, x.Time.Format(time.DateOnly))
	case pgtype.Numeric:
		return append(b, decimalText(x)...)
	}
	panic(fmt.Sprintf("postgres: JSON of %T", v))
}

// decimalText writes an unscaled integer and exponent as exact decimal text.
func decimalText(n pgtype.Numeric) string {
	s := n.Int.String()
	scale := int(-n.Exp)
	if scale <= 0 {
		return s
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	for len(s) <= scale {
		s = "0" + s
	}
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}

// rowSource streams the rows of a batch's files into pgx.CopyFrom: the
// batch's columns, then the lineage values.
type rowSource struct {
	ctx     context.Context
	files   []*batchFile
	lineage [3]any // _window_start, _window_end, _batch_id

	fi     int // current file
	groups []parquet.RowGroup
	gi     int // next row group
	rows   parquet.Rows
	buf    []parquet.Row
	n, i   int
	vals   []any
	slots  []slot // one per column of the current file
	cur    cursor
	copied int64
	err    error
}

func newRowSource(ctx context.Context, files []*batchFile, start, end time.Time, batchID string) *rowSource {
	s := &rowSource{ctx: ctx, files: files, buf: make([]parquet.Row, readChunk), fi: -1}
	s.lineage = [3]any{start, end, batchID}
	if len(files) > 0 {
		s.vals = make([]any, len(files[0].fields)+3)
		s.slots = make([]slot, len(files[0].fields))
	}
	return s
}

// Next implements pgx.CopyFromSource.
func (s *rowSource) Next() bool {
	for s.i >= s.n {
		if s.err != nil || !s.fill() {
			return false
		}
	}
	row := s.buf[s.i]
	s.i++
	f := s.files[s.fi]
	if f.flat && len(row) == f.ncols {
		for j, n := range f.fields {
			if n.leaf {
				v := row[n.col]
				if v.IsNull() {
					s.vals[j] = nil
				} else {
					s.vals[j] = n.put(v, &s.slots[j])
				}
				continue
			}
			s.vals[j] = s.nested(n, row)
		}
	} else {
		for j, n := range f.fields {
			s.vals[j] = s.nested(n, row)
		}
	}
	k := len(f.fields)
	s.vals[k], s.vals[k+1], s.vals[k+2] = s.lineage[0], s.lineage[1], s.lineage[2]
	s.copied++
	return true
}

// nested reads a column through the row's column cursors.
func (s *rowSource) nested(n *anode, row parquet.Row) any {
	f := s.files[s.fi]
	if s.cur.cols == nil || len(s.cur.cols) != f.ncols {
		s.cur.cols, s.cur.pos = make([][]parquet.Value, f.ncols), make([]int, f.ncols)
	}
	for i := range s.cur.cols {
		s.cur.cols[i], s.cur.pos[i] = nil, 0
	}
	row.Range(func(col int, vs []parquet.Value) bool {
		s.cur.cols[col] = vs
		return true
	})
	v := s.cur.read(n)
	if n.leaf {
		return v
	}
	return nestedValue(n, v)
}

// fill reads the next chunk of rows, moving on to the next row group and
// file when one ends.
func (s *rowSource) fill() bool {
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return false
	}
	for {
		if s.rows == nil {
			if s.fi < 0 || s.gi >= len(s.groups) {
				s.fi++
				if s.fi >= len(s.files) {
					return false
				}
				s.groups, s.gi = s.files[s.fi].file.RowGroups(), 0
				s.cur.cols = nil
				continue
			}
			s.rows = s.groups[s.gi].Rows()
			s.gi++
		}
		n, err := s.rows.ReadRows(s.buf)
		s.n, s.i = n, 0
		if err == io.EOF {
			err = s.rows.Close()
			s.rows = nil
		}
		if err != nil {
			s.err = fmt.Errorf("read object %s: %w: %w", s.files[s.fi].key, warehouse.ErrTransient, err)
			return false
		}
		if n > 0 {
			return true
		}
	}
}

// Values implements pgx.CopyFromSource.
func (s *rowSource) Values() ([]any, error) { return s.vals, nil }

// Err implements pgx.CopyFromSource.
func (s *rowSource) Err() error { return s.err }

// close releases an unfinished row group reader.
func (s *rowSource) close() {
	if s.rows != nil {
		s.rows.Close()
		s.rows = nil
	}
}
