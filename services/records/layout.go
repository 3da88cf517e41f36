package records

import (
	"bytes"
	"cmp"
	"fmt"

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
type Layout struct {
	policy  *windows.Policy
	schema  *parquet.Schema
	col     []int // policy field index → Parquet column index
	def     []int // policy field index → definition level of a present value
	seqCol  int   // column of _source_seq
	timeCol int   // column of the time field, -1 in ingest mode
	sortBy  []int // Parquet columns to sort by, sequence last
	names   []string
}

// NewLayout builds the layout of a validated policy.
func NewLayout(p *windows.Policy) (*Layout, error) {
	group := parquet.Group{SeqColumn: parquet.Int(64)}
	for _, f := range p.Schema.Fields {
		node, err := leaf(f.Type)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		if !f.Required {
			node = parquet.Optional(node)
		}
		group[f.Name] = node
	}
	schema := parquet.NewSchema(p.Name, group)
	l := &Layout{policy: p, schema: schema, col: make([]int, len(p.Schema.Fields)), def: make([]int, len(p.Schema.Fields)), timeCol: -1}
	for i, f := range p.Schema.Fields {
		c, ok := schema.Lookup(f.Name)
		if !ok {
			return nil, fmt.Errorf("field %s: not in Parquet schema", f.Name)
		}
		l.col[i] = c.ColumnIndex
		if !f.Required {
			l.def[i] = 1
		}
	}
	c, _ := schema.Lookup(SeqColumn)
	l.seqCol = c.ColumnIndex
	if i := p.TimeFieldIndex(); i >= 0 {
		l.timeCol = l.col[i]
	}
	for _, name := range p.Output.SortBy {
		i := p.FieldIndex(name)
		if i < 0 {
			return nil, fmt.Errorf("sort_by: no field %q", name)
		}
		l.sortBy = append(l.sortBy, l.col[i])
	}
	l.sortBy = append(l.sortBy, l.seqCol)
	l.names = make([]string, len(schema.Columns()))
	for i, path := range schema.Columns() {
		l.names[i] = path[0]
	}
	return l, nil
}

func leaf(t windows.FieldType) (parquet.Node, error) {
	switch t {
	case windows.TypeString:
		return parquet.String(), nil
	case windows.TypeInt64:
		return parquet.Int(64), nil
	case windows.TypeFloat64:
		return parquet.Leaf(parquet.DoubleType), nil
	case windows.TypeBool:
		return parquet.Leaf(parquet.BooleanType), nil
	case windows.TypeTimestamp:
		return parquet.Timestamp(parquet.Microsecond), nil
	case windows.TypeDate:
		return parquet.Date(), nil
	}
	return nil, fmt.Errorf("type %q has no Parquet mapping", t)
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
func Columns(p *windows.Policy) []messages.Column {
	out := make([]messages.Column, len(p.Schema.Fields))
	for i, f := range p.Schema.Fields {
		out[i] = messages.Column{Name: f.Name, Type: string(f.Type), Required: f.Required}
	}
	return out
}

// TimeColumn is the column holding event time, "" for ingest-time policies
// (their rows are ordered by source sequence alone).
func TimeColumn(p *windows.Policy) string {
	if p.Time.Mode == windows.IngestTime {
		return ""
	}
	return p.Time.Field
}
