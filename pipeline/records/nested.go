package records

import (
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/windrow/windrow/windows"
)

// kind is how the decoder reads one scalar value.
type kind uint8

const (
	kindString kind = iota + 1
	kindInt64
	kindFloat64
	kindBool
	kindTimestamp
	kindDate
	kindDecimal32  // decimal(p,s), p <= 9: INT32
	kindDecimal64  // p <= 18: INT64
	kindDecimal128 // p <= 38: FIXED_LEN_BYTE_ARRAY
	kindObject
	kindList
)

func (k kind) decimal() bool { return k >= kindDecimal32 && k <= kindDecimal128 }

// node is one field of the schema tree, compiled for the decoder: its
// Parquet levels and leaf columns. The layout's nodes are immutable.
type node struct {
	field    *windows.Field
	path     string // for errors: "s", "s.a", "l[]"
	key      string // JSON key (From or Name); "" for list elements
	id       int    // index of the decoder's per-node state
	kind     kind
	required bool
	// def is the definition level of a present (non-null) value; a null
	// value of an optional node has def-1 in every leaf under it. rep is
	// the repetition level of the node's own repetition: for a list, the
	// level its second and later elements start with.
	def, rep int
	// col is the first leaf column under the node (its column, for a
	// scalar); end is one past its last.
	col, end  int
	precision int // decimals
	scale     int
	size      int // FIXED_LEN_BYTE_ARRAY bytes of a kindDecimal128
	children  []*node
	elem      *node
	dflt      *parquet.Value // the default, without levels and column; nil if none
}

// kindOf maps a field type to the decoder's kind.
func kindOf(t windows.FieldType) (kind, int, int) {
	switch t {
	case windows.TypeString:
		return kindString, 0, 0
	case windows.TypeInt64:
		return kindInt64, 0, 0
	case windows.TypeFloat64:
		return kindFloat64, 0, 0
	case windows.TypeBool:
		return kindBool, 0, 0
	case windows.TypeTimestamp:
		return kindTimestamp, 0, 0
	case windows.TypeDate:
		return kindDate, 0, 0
	case windows.TypeObject:
		return kindObject, 0, 0
	case windows.TypeList:
		return kindList, 0, 0
	}
	if p, s, ok := t.Decimal(); ok {
		switch {
		case p <= 9:
			return kindDecimal32, p, s
		case p <= 18:
			return kindDecimal64, p, s
		}
		return kindDecimal128, p, s
	}
	return 0, 0, 0
}

// decimalBytes[p] is the length of the smallest two's complement big-endian
// integer holding every unscaled value of precision p (16 for p = 38), as
// Spark and DuckDB write them.
var decimalBytes = func() [windows.MaxDecimalPrecision + 1]int {
	var out [windows.MaxDecimalPrecision + 1]int
	for p := 1; p <= windows.MaxDecimalPrecision; p++ {
		limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil) // values < 10^p
		n := 1
		for new(big.Int).Lsh(big.NewInt(1), uint(8*n-1)).Cmp(limit) < 0 {
			n++
		}
		out[p] = n
	}
	return out
}()

// parquetNode returns the Parquet node of field f (without its own
// optional/required wrapper) and the compiled node.
func (b *builder) parquetNode(f *windows.Field, path string) (parquet.Node, *node, error) {
	k, p, s := kindOf(f.Type)
	n := &node{field: f, path: path, key: f.Key(), kind: k, required: f.Required, precision: p, scale: s, id: b.nextID}
	b.nextID++
	switch k {
	case kindString:
		return parquet.String(), n, nil
	case kindInt64:
		return parquet.Int(64), n, nil
	case kindFloat64:
		return parquet.Leaf(parquet.DoubleType), n, nil
	case kindBool:
		return parquet.Leaf(parquet.BooleanType), n, nil
	case kindTimestamp:
		return parquet.Timestamp(parquet.Microsecond), n, nil
	case kindDate:
		return parquet.Date(), n, nil
	case kindDecimal32:
		return parquet.Decimal(s, p, parquet.Int32Type), n, nil
	case kindDecimal64:
		return parquet.Decimal(s, p, parquet.Int64Type), n, nil
	case kindDecimal128:
		n.size = decimalBytes[p]
		return parquet.Decimal(s, p, parquet.FixedLenByteArrayType(n.size)), n, nil
	case kindObject:
		g := &orderedGroup{}
		for i := range f.Fields {
			m := &f.Fields[i]
			pn, cn, err := b.parquetNode(m, path+"."+m.Name)
			if err != nil {
				return nil, nil, err
			}
			g.fields = append(g.fields, namedNode{Node: wrap(pn, m.Required), name: m.Name})
			n.children = append(n.children, cn)
		}
		return g, n, nil
	case kindList:
		it := f.Items.Of
		if it == nil {
			return nil, nil, fmt.Errorf("list field %s has no items", path)
		}
		pn, cn, err := b.parquetNode(it, path+"[]")
		if err != nil {
			return nil, nil, err
		}
		n.elem = cn
		return parquet.List(wrap(pn, it.Required)), n, nil
	}
	return nil, nil, fmt.Errorf("type %q has no Parquet mapping", f.Type)
}

type builder struct{ nextID int }

func wrap(n parquet.Node, required bool) parquet.Node {
	if required {
		return n
	}
	return parquet.Optional(n)
}

// levels sets the definition and repetition levels and the leaf columns of
// n and its subtree; def and rep are the levels of n's parent when present.
// col is n's first leaf column; levels returns one past its last.
func (n *node) levels(def, rep, col int) int {
	if !n.required {
		def++
	}
	n.def, n.rep, n.col = def, rep, col
	switch n.kind {
	case kindObject:
		for _, c := range n.children {
			col = c.levels(def, rep, col)
		}
	case kindList:
		// optional group (LIST) { repeated group list { element } }
		n.rep = rep + 1
		col = n.elem.levels(def+1, rep+1, col)
	default:
		col++
	}
	n.end = col
	return col
}

// repeated reports whether the subtree of n has a list.
func (n *node) repeated() bool {
	switch n.kind {
	case kindList:
		return true
	case kindObject:
		return slices.ContainsFunc(n.children, (*node).repeated)
	}
	return false
}

// walk calls fn for n and every node under it.
func (n *node) walk(fn func(*node)) {
	fn(n)
	for _, c := range n.children {
		c.walk(fn)
	}
	if n.elem != nil {
		n.elem.walk(fn)
	}
}

// orderedGroup is a Parquet group whose fields keep the order given
// (parquet.Group sorts them by name). Objects keep the policy's member order,
// which is also the member order of the warehouse's STRUCT type, and the
// root puts every column that repeats after those that do not, so that a
// row's values of non-repeated columns sit at their column index.
type orderedGroup struct{ fields []parquet.Field }

func (g *orderedGroup) ID() int                     { return 0 }
func (g *orderedGroup) String() string              { return nodeText(g) }
func (g *orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g *orderedGroup) Optional() bool              { return false }
func (g *orderedGroup) Repeated() bool              { return false }
func (g *orderedGroup) Required() bool              { return true }
func (g *orderedGroup) Leaf() bool                  { return false }
func (g *orderedGroup) Fields() []parquet.Field     { return g.fields }
func (g *orderedGroup) Encoding() encoding.Encoding { return nil }
func (g *orderedGroup) Compression() compress.Codec { return nil }
func (g *orderedGroup) GoType() reflect.Type {
	m := make(parquet.Group, len(g.fields))
	for _, f := range g.fields {
		m[f.Name()] = f
	}
	return m.GoType()
}

func nodeText(n parquet.Node) string {
	var b strings.Builder
	_ = parquet.PrintSchema(&b, "", n)
	return b.String()
}

// namedNode is a field of an orderedGroup.
type namedNode struct {
	parquet.Node
	name string
}

func (f namedNode) Name() string { return f.name }

// Value is only used by parquet-go's reflection-based reads and writes,
// which windrow does not use for these schemas.
func (f namedNode) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Struct {
		return base.FieldByName(f.name)
	}
	return reflect.Value{}
}
