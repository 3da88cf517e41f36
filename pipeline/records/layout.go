package records

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// SeqColumn is the lineage column holding each row's source stream sequence.
const SeqColumn = "_source_seq"

// Layout maps a policy's fields to Parquet columns. It is immutable and safe
// for concurrent use.
//
// Top-level scalar fields are one column each. An object field is a Parquet
// group (its members in policy order) and a list field a three-level LIST;
// their leaves are columns too. Columns that never repeat come first (sorted
// by name, as parquet.Group sorts them, so flat schemas are what they always
// were), then the fields holding a list: every row has exactly one value of
// each non-repeated column, at its column index, so sorting, merging and the
// sequence read row[col] whatever the lists hold.
type Layout struct {
	policy   *windows.Policy
	schema   *parquet.Schema
	col      []int // policy field index → Parquet column index (first leaf of a nested field)
	def      []int // policy field index → definition level of a present value
	seqCol   int   // column of _source_seq
	timeCol  int   // column of the time field, -1 in ingest mode
	sortBy   []int // Parquet columns to sort by: key fields, sort_by, sequence last
	keyCols  []int // Parquet columns of the key fields, in key order
	keyTypes []windows.FieldType
	names    []string
	fields   []*node // compiled top-level fields, in policy order
	ids      []*node // every node by id
	fixed    int     // columns before the first repeated one
	nested   bool    // some field is an object or a list
}

// NewLayout builds the layout of a validated policy.
func NewLayout(p *windows.Policy) (*Layout, error) {
	p = p.WithSessionFields() // session policies: two more columns, set by the compactor
	fields := p.Schema.Fields
	l := &Layout{policy: p, col: make([]int, len(fields)), def: make([]int, len(fields)), timeCol: -1}
	b := &builder{nextID: len(fields)} // top-level field i has id i; nested nodes follow
	type top struct {
		name     string
		pn       parquet.Node
		n        *node
		repeated bool
	}
	tops := make([]top, 0, len(fields)+1)
	tops = append(tops, top{name: SeqColumn, pn: parquet.Int(64)})
	for i := range fields {
		f := &fields[i]
		pn, n, err := b.parquetNode(f, f.Name)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		n.id = i
		l.fields = append(l.fields, n)
		l.nested = l.nested || n.kind == kindObject || n.kind == kindList
		tops = append(tops, top{name: f.Name, pn: wrap(pn, f.Required), n: n, repeated: n.repeated()})
	}
	slices.SortStableFunc(tops, func(a, b top) int {
		if a.repeated != b.repeated {
			if a.repeated {
				return 1
			}
			return -1
		}
		return strings.Compare(a.name, b.name)
	})
	var root parquet.Node
	if l.nested {
		g := &orderedGroup{}
		for _, t := range tops {
			g.fields = append(g.fields, namedNode{Node: t.pn, name: t.name})
		}
		root = g
	} else {
		g := parquet.Group{}
		for _, t := range tops {
			g[t.name] = t.pn
		}
		root = g
	}
	schema := parquet.NewSchema(p.Name, root)
	l.schema = schema
	col := 0
	l.fixed = -1
	for _, t := range tops {
		if t.repeated && l.fixed < 0 {
			l.fixed = col
		}
		if t.n == nil {
			l.seqCol = col
			col++
			continue
		}
		col = t.n.levels(0, 0, col)
	}
	if l.fixed < 0 {
		l.fixed = col
	}
	if col != len(schema.Columns()) {
		return nil, fmt.Errorf("layout has %d columns, the Parquet schema %d", col, len(schema.Columns()))
	}
	l.ids = make([]*node, b.nextID)
	for i, n := range l.fields {
		l.col[i] = n.col
		l.def[i] = n.def
		n.walk(func(c *node) { l.ids[c.id] = c })
	}
	for i, path := range schema.Columns() {
		c, ok := schema.Lookup(path...)
		if !ok || c.ColumnIndex != i {
			return nil, fmt.Errorf("column %s: not at index %d of the Parquet schema", strings.Join(path, "."), i)
		}
	}
	if i := p.TimeFieldIndex(); i >= 0 {
		l.timeCol = l.col[i]
	}
	if err := l.sortOrder(p); err != nil {
		return nil, err
	}
	l.names = make([]string, len(schema.Columns()))
	for i, path := range schema.Columns() {
		l.names[i] = strings.Join(path, ".")
	}
	if err := l.decodeDefaults(); err != nil {
		return nil, err
	}
	return l, nil
}

// sortOrder sets the columns rows are sorted by: key fields first (a
// window's rows come out of the merge key by key), for session windows the
// time field, then output.sort_by, then the source sequence.
func (l *Layout) sortOrder(p *windows.Policy) error {
	// The compactor writes one key's files at a time.
	for _, name := range p.Key {
		i := p.FieldIndex(name)
		if i < 0 {
			return fmt.Errorf("key: no field %q", name)
		}
		if k := l.fields[i].kind; k == kindObject || k == kindList {
			return fmt.Errorf("key: field %q is not a scalar", name)
		}
		l.keyCols = append(l.keyCols, l.col[i])
		l.keyTypes = append(l.keyTypes, p.Schema.Fields[i].Type)
		l.sortBy = append(l.sortBy, l.col[i])
	}
	sortBy := p.Output.SortBy
	if p.Window.Kind == windows.SessionWindows && l.timeCol >= 0 {
		// Sessions are cut from each key's rows in time order.
		l.sortBy = append(l.sortBy, l.timeCol)
		sortBy = slices.DeleteFunc(slices.Clone(sortBy), func(n string) bool { return n == p.Time.Field })
	}
	for _, name := range sortBy {
		if slices.Contains(p.Key, name) {
			continue // already first
		}
		i := p.FieldIndex(name)
		if i < 0 {
			return fmt.Errorf("sort_by: no field %q", name)
		}
		if k := l.fields[i].kind; k == kindObject || k == kindList {
			return fmt.Errorf("sort_by: field %q is not a scalar", name)
		}
		l.sortBy = append(l.sortBy, l.col[i])
	}
	l.sortBy = append(l.sortBy, l.seqCol)
	return nil
}

// decodeDefaults decodes the fields' defaults once, as events are, for the
// decoder to copy.
func (l *Layout) decodeDefaults() error {
	var d *Decoder
	for _, n := range l.ids {
		if n == nil || n.field.Default == nil {
			continue
		}
		if d == nil {
			d = NewDecoder(l)
		}
		v, err := d.defaultValue(n, *n.field.Default)
		if err != nil {
			return fmt.Errorf("field %s: %w", n.path, err)
		}
		n.dflt = &v
	}
	return nil
}

// Policy returns the policy the layout was built from.
func (l *Layout) Policy() *windows.Policy { return l.policy }

// Schema is the Parquet schema of segments and batches.
func (l *Layout) Schema() *parquet.Schema { return l.schema }

// NumColumns is the length of every row.
func (l *Layout) NumColumns() int { return len(l.names) }

// ColumnNames lists the Parquet column names by column index.
func (l *Layout) ColumnNames() []string { return l.names }

// FieldColumn returns the Parquet column index of policy field i.
func (l *Layout) FieldColumn(i int) int { return l.col[i] }

// Seq returns a row's source sequence.
func (l *Layout) Seq(row parquet.Row) uint64 { return uint64(row[l.seqCol].Int64()) }

// Compare orders rows by the policy's sort fields, then by source sequence.
// Nulls sort first.
func (l *Layout) Compare(a, b parquet.Row) int {
	// Sorting a segment calls this millions of times: the common kinds are
	// compared here, through pointers, without copying values.
	for _, c := range l.sortBy {
		x, y := &a[c], &b[c]
		if x.Kind() == y.Kind() { // neither is null, or both are
			switch x.Kind() {
			case parquet.ByteArray:
				// Equal interned strings share their bytes: bytes.Compare
				// returns at once without reading them.
				if r := bytes.Compare(x.ByteArray(), y.ByteArray()); r != 0 {
					return r
				}
				continue
			case parquet.Int64:
				if xi, yi := x.Int64(), y.Int64(); xi != yi {
					if xi < yi {
						return -1
					}
					return 1
				}
				continue
			}
		}
		if r := compareValues(x, y); r != 0 {
			return r
		}
	}
	return 0
}

// compareValues orders two values of one column. It takes pointers: sorting
// calls it millions of times, and copying values costs more than comparing.
func compareValues(a, b *parquet.Value) int {
	an, bn := a.IsNull(), b.IsNull()
	if an || bn {
		switch {
		case an && bn:
			return 0
		case an:
			return -1
		}
		return 1
	}
	switch a.Kind() {
	case parquet.ByteArray:
		// Equal interned strings share their bytes: bytes.Compare returns
		// at once without reading them.
		return bytes.Compare(a.ByteArray(), b.ByteArray())
	case parquet.Int64:
		return cmp.Compare(a.Int64(), b.Int64())
	case parquet.Int32:
		return cmp.Compare(a.Int32(), b.Int32())
	case parquet.Double:
		return cmp.Compare(a.Double(), b.Double())
	case parquet.FixedLenByteArray:
		// Decimals: big-endian two's complement of one length. Of one
		// sign, the bytes order as unsigned; a negative is less.
		x, y := a.ByteArray(), b.ByteArray()
		if len(x) > 0 && len(y) > 0 && (x[0]^y[0])&0x80 != 0 {
			if x[0]&0x80 != 0 {
				return -1
			}
			return 1
		}
		return bytes.Compare(x, y)
	case parquet.Boolean:
		ab, bb := a.Boolean(), b.Boolean()
		switch {
		case ab == bb:
			return 0
		case !ab:
			return -1
		}
		return 1
	}
	return 0
}

// Codec returns the Parquet codec for a policy compression name.
func Codec(c windows.Compression) compress.Codec {
	switch c {
	case windows.CompressSnappy:
		return &snappy.Codec{}
	case windows.CompressGzip:
		return &gzip.Codec{}
	case windows.CompressNone:
		return &uncompressed.Codec{}
	}
	return &zstd.Codec{Level: zstd.SpeedDefault}
}

// Columns lists a policy's fields as the loader creates them, in policy order.
// A column's Type is its field type as ColumnType writes it.
func Columns(p *windows.Policy) []messages.Column {
	p = p.WithSessionFields()
	out := make([]messages.Column, len(p.Schema.Fields))
	for i := range p.Schema.Fields {
		f := &p.Schema.Fields[i]
		out[i] = messages.Column{Name: f.Name, Type: ColumnType(f), Required: f.Required}
	}
	return out
}

// ColumnType writes a field's type for messages.Column.Type: a scalar type as
// in the policy ("int64", "decimal(12,2)"), an object as
// "object<name:type,...>" with its members in policy order, a list as
// "list<type>". Members and elements are nullable in the warehouse (a STRUCT
// member or a list element has no NOT NULL); required ones are checked by
// the decoder.
func ColumnType(f *windows.Field) string {
	var b strings.Builder
	writeType(&b, f)
	return b.String()
}

func writeType(b *strings.Builder, f *windows.Field) {
	switch f.Type {
	case windows.TypeObject:
		b.WriteString("object<")
		for i := range f.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			m := &f.Fields[i]
			b.WriteString(m.Name)
			b.WriteByte(':')
			writeType(b, m)
		}
		b.WriteByte('>')
	case windows.TypeList:
		b.WriteString("list<")
		if it := f.Items.Of; it != nil {
			writeType(b, it)
		}
		b.WriteByte('>')
	default:
		b.WriteString(string(f.Type.Canonical()))
	}
}

// TimeColumn is the column holding event time, "" for ingest-time policies
// (their rows are ordered by source sequence alone).
func TimeColumn(p *windows.Policy) string {
	if p.Time.Mode == windows.IngestTime {
		return ""
	}
	return p.Time.Field
}

// IsSession reports whether the layout is a session policy's (with the
// session bound columns).
func (l *Layout) IsSession() bool { return l.policy.Window.Kind == windows.SessionWindows }

// TimeMicros is the row's event time in microseconds (event-time policies).
func (l *Layout) TimeMicros(row parquet.Row) int64 { return row[l.timeCol].Int64() }

// SetSession sets a session policy's row's session bounds (microseconds).
func (l *Layout) SetSession(row parquet.Row, startUs, endUs int64) {
	n := len(l.fields)
	for i, us := range []int64{startUs, endUs} {
		f := n - 2 + i
		v := parquet.Int64Value(us)
		v.SetDefinitionLevel(l.def[f])
		v.SetColumnIndex(l.col[f])
		row[l.col[f]] = v
	}
}

// HasKey reports whether the policy partitions windows by key.
func (l *Layout) HasKey() bool { return len(l.keyCols) > 0 }

// SameKey reports whether two rows have the same key.
func (l *Layout) SameKey(a, b parquet.Row) bool {
	for _, c := range l.keyCols {
		if compareValues(&a[c], &b[c]) != 0 {
			return false
		}
	}
	return true
}

// KeyPath is a row's Hive-style key path ("store_id=042/"), "" without a key.
func (l *Layout) KeyPath(row parquet.Row) string {
	if len(l.keyCols) == 0 {
		return ""
	}
	values := make([]string, len(l.keyCols))
	for i, c := range l.keyCols {
		v := row[c]
		switch l.keyTypes[i] {
		case windows.TypeInt64:
			values[i] = windows.KeyInt64(v.Int64())
		case windows.TypeDate:
			values[i] = windows.KeyDate(int64(v.Int32()))
		case windows.TypeTimestamp:
			values[i] = windows.KeyTimestamp(v.Int64())
		default:
			values[i] = string(v.ByteArray())
		}
	}
	return l.policy.KeyPath(values)
}
