package records

import (
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/valyala/fastjson"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// Limits of a decodable event.
const (
	// MaxEventBytes is the largest event payload accepted.
	MaxEventBytes = 1 << 20
	// MaxListValues bounds the values of all list columns of one event
	// (elements, counted per leaf column): a row's values are 24 bytes
	// each, so this keeps one event's row near 1.5 MiB.
	MaxListValues = 1 << 16
	// minMicros and maxMicros bound timestamps to years 0001..9999.
	minMicros = -62135596800 * 1e6
	maxMicros = 253402300799999999
)

// Decoder decodes JSON events into rows of a Layout. It is not safe for
// concurrent use; each collector worker owns one. The values and string bytes
// of decoded rows live in the decoder's slabs and arena until Reset, which
// makes that memory free for the rows decoded next.
type Decoder struct {
	layout  *Layout
	parser  fastjson.Parser
	arena   arena
	index   map[string]int // JSON key → policy field index
	keys    []string       // policy field index → JSON key
	seen    []bool
	kinds   []kind            // per node id
	units   []int64           // per node id: micros per unit for timestamp numbers
	interns []*internTable    // per node id; nil for non-string fields
	values  []parquet.Value   // the slab rows are taken from
	slabs   [][]parquet.Value // every slab since the decoder was made, reused after Reset
	slab    int               // index of values in slabs
	reps    [][]parquet.Value // values of each repeated column (column fixed+k) of the event being decoded
	nreps   int               // values in reps
	num     []byte            // scratch: the text of a JSON number

	// State of the event being decoded, read by visit.
	row  parquet.Row
	next int // the field expected next: events usually repeat the key order
	err  *DecodeError
}

// NewDecoder returns a decoder for layout.
func NewDecoder(l *Layout) *Decoder {
	p := l.policy
	n := len(l.ids)
	d := &Decoder{
		layout: l, index: make(map[string]int, len(p.Schema.Fields)), keys: make([]string, len(p.Schema.Fields)),
		seen: make([]bool, len(p.Schema.Fields)), kinds: make([]kind, n), units: make([]int64, n), interns: make([]*internTable, n),
		reps: make([][]parquet.Value, l.NumColumns()-l.fixed),
	}
	d.slab = -1
	seed := maphash.MakeSeed()
	for i := range p.Schema.Fields {
		d.keys[i] = p.Schema.Fields[i].Key()
		d.index[d.keys[i]] = i
	}
	for id, nd := range l.ids {
		if nd == nil {
			continue
		}
		d.kinds[id] = nd.kind
		if nd.kind == kindString {
			d.interns[id] = &internTable{seed: seed}
		}
		switch nd.field.Unit {
		case windows.UnitSeconds:
			d.units[id] = 1e6
		case windows.UnitMicroseconds:
			d.units[id] = 1
		case windows.UnitNanoseconds:
			d.units[id] = -1000 // divide
		default:
			d.units[id] = 1000
		}
	}
	return d
}

// Reset releases the string bytes and values of every row decoded so far:
// their memory is reused by the rows decoded next, so rows decoded before
// Reset must not be used after it.
func (d *Decoder) Reset() {
	d.arena.reset()
	if len(d.slabs) > 0 {
		d.slabs = retain(d.slabs, maxRetainedValues)
		d.slab, d.values = 0, d.slabs[0][:0]
	}
	for _, t := range d.interns {
		if t != nil {
			t.reset()
		}
	}
}

// Decode reads one event. seq is its stream sequence and ingestMicros its
// JetStream timestamp, used as event time in ingest mode. It returns the row
// and the event time in microseconds since the Unix epoch; on a bad event the
// error is a *DecodeError.
func (d *Decoder) Decode(data []byte, seq uint64, ingestMicros int64) (parquet.Row, int64, error) {
	l := d.layout
	if len(data) > MaxEventBytes {
		return nil, 0, &DecodeError{Reason: messages.ReasonOutOfRange, Detail: fmt.Sprintf("event is %d bytes, limit %d", len(data), MaxEventBytes)}
	}
	v, err := d.parser.ParseBytes(data)
	if err != nil {
		return nil, 0, &DecodeError{Reason: messages.ReasonMalformedJSON, Detail: err.Error()}
	}
	obj, err := v.Object()
	if err != nil {
		return nil, 0, &DecodeError{Reason: messages.ReasonMalformedJSON, Detail: "event is a JSON " + v.Type().String() + ", want an object"}
	}
	// The row is taken from the slab only on success: a failed decode leaves
	// no gap and no partial row behind. Its non-repeated columns are decoded
	// in place; the values of repeated columns gather in reps and are
	// appended once the event is read.
	row := d.nextRow(l.fixed)
	clear(d.seen)
	if l.fixed < l.NumColumns() {
		for k := range d.reps {
			d.reps[k] = d.reps[k][:0]
		}
		d.nreps = 0
	}
	d.row, d.next, d.err = row, 0, nil
	obj.Visit(d.visit)
	derr := d.err
	if derr == nil {
		for i, n := range l.fields {
			if !d.seen[i] {
				if derr = d.missing(n, 0); derr != nil {
					break
				}
			}
		}
	}
	d.row, d.err = nil, nil
	if derr != nil {
		return nil, 0, derr
	}
	row[l.seqCol] = parquet.Int64Value(int64(seq))
	row[l.seqCol].SetColumnIndex(l.seqCol)
	if l.fixed < l.NumColumns() {
		row = d.appendRepeated(row)
	}
	d.values = d.values[:len(d.values)+len(row)]
	event := ingestMicros
	if l.timeCol >= 0 {
		event = row[l.timeCol].Int64()
	}
	return row, event, nil
}

// appendRepeated extends row, not yet committed to the slab, by the values
// of the repeated columns, in column order.
func (d *Decoder) appendRepeated(row parquet.Row) parquet.Row {
	n := len(row) + d.nreps
	full := d.nextRow(n)
	if &full[0] != &row[0] {
		copy(full, row) // moved to another slab
	}
	at := len(row)
	for _, vs := range d.reps {
		at += copy(full[at:], vs)
	}
	return full
}

// nextRow returns the space of the next row, after the rows handed out.
func (d *Decoder) nextRow(n int) parquet.Row {
	if cap(d.values)-len(d.values) < n {
		// Rows already handed out keep pointing into the old slab.
		if d.slab++; d.slab < len(d.slabs) && cap(d.slabs[d.slab]) >= n {
			d.values = d.slabs[d.slab][:0]
		} else {
			d.values = make([]parquet.Value, 0, max(4096, 64*n))
			if d.slab < len(d.slabs) {
				d.slabs[d.slab] = d.values // too small for this row: replaced
			} else {
				d.slabs = append(d.slabs, d.values)
			}
		}
	}
	start := len(d.values)
	return d.values[start : start+n : start+n]
}

// visit decodes one key of the event into d.row; the first error stops it.
func (d *Decoder) visit(key []byte, fv *fastjson.Value) {
	if d.err != nil {
		return
	}
	l := d.layout
	i := d.next
	if i >= len(d.keys) || string(key) != d.keys[i] {
		var ok bool
		if i, ok = d.index[string(key)]; !ok {
			return // fields outside the schema are ignored
		}
	}
	d.next = i + 1
	n := l.fields[i]
	if d.seen[i] && n.col >= l.fixed {
		// The key again: its values so far are dropped, the last one wins
		// (as for other fields, whose columns are overwritten).
		for c := n.col; c < n.end; c++ {
			d.nreps -= len(d.reps[c-l.fixed])
			d.reps[c-l.fixed] = d.reps[c-l.fixed][:0]
		}
	}
	d.seen[i] = true
	if fv.Type() == fastjson.TypeNull {
		d.err = d.missing(n, 0)
		return
	}
	if k := d.kinds[i]; k == kindObject || k == kindList {
		d.err = d.shred(n, fv, 0)
		return
	}
	col := l.col[i]
	dst := &d.row[col]
	if err := d.value(i, n, fv, dst); err != nil {
		d.err = err
		return
	}
	dst.SetDefinitionLevel(n.def)
	dst.SetColumnIndex(col)
}

// missing fills the columns of n, absent or null in the event, at
// repetition level rep: with its default, or null, or it is an error when n
// is required.
func (d *Decoder) missing(n *node, rep int) *DecodeError {
	switch {
	case n.dflt != nil:
		d.emit(n.col, *n.dflt, rep, n.def)
		return nil
	case n.required:
		return &DecodeError{Reason: messages.ReasonMissingField, Field: n.path, Detail: "required field is absent or null"}
	}
	d.nulls(n, rep, n.def-1)
	return nil
}

// nulls gives every leaf column of n one null at levels rep, def.
func (d *Decoder) nulls(n *node, rep, def int) {
	for c := n.col; c < n.end; c++ {
		d.emit(c, parquet.Value{}, rep, def)
	}
}

// emit puts v with levels and column into the row, or among the values of
// a repeated column.
func (d *Decoder) emit(col int, v parquet.Value, rep, def int) {
	v.SetRepetitionLevel(rep)
	v.SetDefinitionLevel(def)
	v.SetColumnIndex(col)
	if k := col - d.layout.fixed; k >= 0 {
		d.reps[k] = append(d.reps[k], v)
		d.nreps++
		return
	}
	d.row[col] = v
}

// shred decodes v, the non-null value of node n, into its leaf columns at
// repetition level rep (Dremel's record shredding).
func (d *Decoder) shred(n *node, v *fastjson.Value, rep int) *DecodeError {
	switch n.kind {
	case kindObject:
		o, err := v.Object()
		if err != nil {
			return wrongType(n, v.Type(), "an object")
		}
		for _, c := range n.children {
			cv := o.Get(c.key)
			if cv == nil || cv.Type() == fastjson.TypeNull {
				if err := d.missing(c, rep); err != nil {
					return err
				}
				continue
			}
			if err := d.shred(c, cv, rep); err != nil {
				return err
			}
		}
		return nil
	case kindList:
		items, err := v.Array()
		if err != nil {
			return wrongType(n, v.Type(), "an array")
		}
		if len(items) == 0 {
			d.nulls(n, rep, n.def) // the list is there, without elements
			return nil
		}
		e := n.elem
		for j, item := range items {
			if j > 0 {
				rep = n.rep
			}
			if d.nreps > MaxListValues {
				return &DecodeError{Reason: messages.ReasonOutOfRange, Field: n.path, Detail: fmt.Sprintf("the lists of the event hold more than %d values", MaxListValues)}
			}
			if item.Type() == fastjson.TypeNull {
				if e.required {
					return &DecodeError{Reason: messages.ReasonMissingField, Field: e.path, Detail: fmt.Sprintf("element %d is null", j)}
				}
				d.nulls(e, rep, e.def-1)
				continue
			}
			if err := d.shred(e, item, rep); err != nil {
				return err
			}
		}
		return nil
	}
	var x parquet.Value
	if err := d.value(n.id, n, v, &x); err != nil {
		return err
	}
	d.emit(n.col, x, rep, n.def)
	return nil
}

// value decodes v, the non-null value of scalar node n (id i), into dst
// without its levels and column index.
func (d *Decoder) value(i int, n *node, v *fastjson.Value, dst *parquet.Value) *DecodeError {
	t := v.Type()
	switch d.kinds[i] {
	case kindString:
		if t != fastjson.TypeString {
			return wrongType(n, t, "a string")
		}
		b, ok := d.str(i, v.GetStringBytes())
		if !ok {
			return &DecodeError{Reason: messages.ReasonInvalidUTF8, Field: n.path, Detail: "string is not valid UTF-8"}
		}
		*dst = parquet.ByteArrayValue(b)
	case kindInt64:
		if t != fastjson.TypeNumber {
			return wrongType(n, t, "an integer")
		}
		x, err := v.Int64()
		if err != nil {
			return numberError(n, v, "a 64-bit integer")
		}
		*dst = parquet.Int64Value(x)
	case kindFloat64:
		if t != fastjson.TypeNumber {
			return wrongType(n, t, "a number")
		}
		x, err := v.Float64()
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return &DecodeError{Reason: messages.ReasonOutOfRange, Field: n.path, Detail: fmt.Sprintf("%s is not a finite 64-bit float", truncate(v.String()))}
		}
		*dst = parquet.DoubleValue(x)
	case kindBool:
		switch t {
		case fastjson.TypeTrue:
			*dst = parquet.BooleanValue(true)
		case fastjson.TypeFalse:
			*dst = parquet.BooleanValue(false)
		default:
			return wrongType(n, t, "true or false")
		}
	case kindTimestamp:
		us, err := d.timestamp(i, n, v)
		if err != nil {
			return err
		}
		*dst = parquet.Int64Value(us)
	case kindDate:
		if t != fastjson.TypeString {
			return wrongType(n, t, `a date string "YYYY-MM-DD"`)
		}
		days, ok := parseDate(v.GetStringBytes())
		if !ok {
			return &DecodeError{Reason: messages.ReasonWrongType, Field: n.path, Detail: fmt.Sprintf("%s is not a date YYYY-MM-DD", truncate(v.String()))}
		}
		*dst = parquet.Int32Value(days)
	case kindDecimal32, kindDecimal64, kindDecimal128:
		var text []byte
		switch t {
		case fastjson.TypeNumber:
			d.num = v.MarshalTo(d.num[:0])
			text = d.num
		case fastjson.TypeString:
			text = v.GetStringBytes()
		default:
			return wrongType(n, t, fmt.Sprintf("a number or a numeric string (decimal(%d,%d))", n.precision, n.scale))
		}
		return d.decimal(n, text, t == fastjson.TypeString, dst)
	default:
		return &DecodeError{Reason: messages.ReasonWrongType, Field: n.path, Detail: "unsupported type " + string(n.field.Type)}
	}
	return nil
}

// decimal reads text exactly as n's decimal into dst.
func (d *Decoder) decimal(n *node, text []byte, str bool, dst *parquet.Value) *DecodeError {
	neg, hi, lo, e := parseDecimal(text, n.precision, n.scale, str)
	// As the event wrote it (a JSON string quoted, control characters
	// escaped): the detail goes into a header and must stay on one line.
	shown := string(text)
	if str {
		shown = strconv.Quote(shown)
	}
	switch e {
	case decimalSyntax:
		return &DecodeError{Reason: messages.ReasonWrongType, Field: n.path, Detail: fmt.Sprintf("%s is not a decimal number", truncate(shown))}
	case decimalScale:
		return &DecodeError{Reason: messages.ReasonOutOfRange, Field: n.path, Detail: fmt.Sprintf("%s has more than %d digits after the point (decimal(%d,%d))", truncate(shown), n.scale, n.precision, n.scale)}
	case decimalOverflow:
		return &DecodeError{Reason: messages.ReasonOutOfRange, Field: n.path, Detail: fmt.Sprintf("%s has more than %d digits before the point (decimal(%d,%d))", truncate(shown), n.precision-n.scale, n.precision, n.scale)}
	}
	switch n.kind {
	case kindDecimal32:
		x := int32(lo)
		if neg {
			x = -x
		}
		*dst = parquet.Int32Value(x)
	case kindDecimal64:
		x := int64(lo)
		if neg {
			x = -x
		}
		*dst = parquet.Int64Value(x)
	default:
		var buf [16]byte
		b := buf[:n.size]
		putDecimal128(b, neg, hi, lo)
		*dst = parquet.FixedLenByteArrayValue(d.arena.copy(b))
	}
	return nil
}

func wrongType(n *node, t fastjson.Type, want string) *DecodeError {
	return &DecodeError{Reason: messages.ReasonWrongType, Field: n.path, Detail: fmt.Sprintf("got a JSON %s, want %s", t, want)}
}

func (d *Decoder) timestamp(i int, n *node, v *fastjson.Value) (int64, *DecodeError) {
	f := n.field
	switch v.Type() {
	case fastjson.TypeString:
		us, ok := parseRFC3339Micros(v.GetStringBytes())
		if !ok {
			return 0, &DecodeError{Reason: messages.ReasonWrongType, Field: n.path, Detail: fmt.Sprintf("%s is not an RFC 3339 timestamp", truncate(v.String()))}
		}
		if us < minMicros || us > maxMicros {
			return 0, &DecodeError{Reason: messages.ReasonOutOfRange, Field: n.path, Detail: fmt.Sprintf("%s is outside years 0001-9999 in UTC", truncate(v.String()))}
		}
		return us, nil
	case fastjson.TypeNumber:
		x, err := v.Int64()
		if err != nil {
			return 0, numberError(n, v, "an integer epoch time")
		}
		unit := d.units[i]
		var us int64
		if unit < 0 {
			// Floor, not truncation: like an RFC 3339 fraction, the
			// sub-microsecond part moves the time toward the past.
			us = x / -unit
			if x%-unit < 0 {
				us--
			}
		} else {
			if x > maxMicros/unit || x < minMicros/unit {
				return 0, &DecodeError{Reason: messages.ReasonOutOfRange, Field: n.path, Detail: fmt.Sprintf("%d %s is outside years 0001-9999", x, f.Unit)}
			}
			us = x * unit
		}
		if us < minMicros || us > maxMicros {
			return 0, &DecodeError{Reason: messages.ReasonOutOfRange, Field: n.path, Detail: fmt.Sprintf("%d %s is outside years 0001-9999", x, f.Unit)}
		}
		return us, nil
	}
	return 0, &DecodeError{Reason: messages.ReasonWrongType, Field: n.path, Detail: fmt.Sprintf("got a JSON %s, want an RFC 3339 string or epoch %s", v.Type(), f.Unit)}
}

func numberError(n *node, v *fastjson.Value, want string) *DecodeError {
	s := v.String()
	for _, c := range s {
		if c == '.' || c == 'e' || c == 'E' {
			return &DecodeError{Reason: messages.ReasonWrongType, Field: n.path, Detail: fmt.Sprintf("%s is not %s", truncate(s), want)}
		}
	}
	return &DecodeError{Reason: messages.ReasonOutOfRange, Field: n.path, Detail: fmt.Sprintf("%s does not fit %s", truncate(s), want)}
}

// truncate shortens s for an error detail (it goes into a dead-letter
// header) without splitting a UTF-8 sequence.
func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	n := 64
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// str returns b (valid UTF-8) as bytes that live until Reset, and false if b
// is not valid UTF-8. Repeated values of field i share one copy.
func (d *Decoder) str(i int, b []byte) ([]byte, bool) {
	t := d.interns[i]
	if t == nil || t.off || len(b) > maxInternLen {
		if !utf8.Valid(b) {
			return nil, false
		}
		return d.arena.copy(b), true
	}
	slot := &t.slots[maphash.Bytes(t.seed, b)&(internSlots-1)]
	t.lookups++
	if string(*slot) == string(b) && *slot != nil {
		t.hits++
		return *slot, true // valid: it was checked when stored
	}
	if t.lookups >= internProbe && t.hits < t.lookups/2 {
		t.off = true // mostly distinct values (ids): not worth hashing
	}
	if !utf8.Valid(b) {
		return nil, false
	}
	*slot = d.arena.copy(b)
	return *slot, true
}

// internTable remembers recent values of one string field, so that repeated
// values (store ids, currencies) share one copy in the arena: the arena
// shrinks and sorting compares equal keys by pointer, without loading their
// bytes. It turns itself off for fields whose values rarely repeat.
type internTable struct {
	seed          maphash.Seed
	slots         [internSlots][]byte // direct-mapped by hash
	lookups, hits int
	off           bool
}

const (
	internSlots  = 256
	maxInternLen = 64   // longer strings are copied without a lookup
	internProbe  = 1024 // lookups after which a table with few hits turns off
)

// reset forgets the values (the arena reuses their bytes) and turns the table
// on again.
func (t *internTable) reset() {
	clear(t.slots[:])
	t.lookups, t.hits, t.off = 0, 0, false
}

// Memory kept for reuse across Reset; beyond it, slabs and chunks go to the
// garbage collector.
const (
	maxRetainedValues = 64 << 20 / int(unsafe.Sizeof(parquet.Value{}))
	maxRetainedBytes  = 32 << 20
)

// retain returns the first slabs of ss holding at most limit elements (at
// least one slab) and drops the others.
func retain[S ~[]E, E any](ss []S, limit int) []S {
	keep, total := 1, cap(ss[0])
	for keep < len(ss) && total+cap(ss[keep]) <= limit {
		total += cap(ss[keep])
		keep++
	}
	clear(ss[keep:])
	return ss[:keep]
}

// arena hands out copies of byte slices from large chunks, so that decoded
// strings cost no allocation each and outlive the parser's buffer. After
// reset the chunks are reused.
type arena struct {
	chunks [][]byte // every chunk; chunks[cur] is being filled
	cur    int
}

const arenaChunk = 1 << 20

func (a *arena) copy(b []byte) []byte {
	if len(b) > arenaChunk/4 {
		// A long string gets memory of its own rather than wasting most of
		// a chunk; the garbage collector frees it after reset.
		return append([]byte(nil), b...)
	}
	if len(a.chunks) == 0 || len(b) > cap(a.chunks[a.cur])-len(a.chunks[a.cur]) {
		a.grow()
	}
	c := a.chunks[a.cur]
	start := len(c)
	c = append(c, b...)
	a.chunks[a.cur] = c
	return c[start:len(c):len(c)]
}

// grow moves to the next chunk: one kept from before reset, or a new one.
func (a *arena) grow() {
	if len(a.chunks) > 0 {
		a.cur++
	}
	if a.cur < len(a.chunks) {
		a.chunks[a.cur] = a.chunks[a.cur][:0]
		return
	}
	a.chunks = append(a.chunks, make([]byte, 0, arenaChunk))
}

// reset makes every chunk free for reuse.
func (a *arena) reset() {
	if len(a.chunks) == 0 {
		return
	}
	a.chunks = retain(a.chunks, maxRetainedBytes)
	a.chunks[0] = a.chunks[0][:0]
	a.cur = 0
}

// defaultValue decodes text, a field's default, as node n's type: the text
// itself for a string, else the JSON value it spells (a date or an RFC 3339
// time as a JSON string). The value owns its bytes.
func (d *Decoder) defaultValue(n *node, text string) (parquet.Value, error) {
	if n.kind == kindString {
		if !utf8.ValidString(text) {
			return parquet.Value{}, fmt.Errorf("default %q is not valid UTF-8", text)
		}
		return parquet.ByteArrayValue([]byte(text)), nil
	}
	js := text
	switch n.kind {
	case kindDate:
		js = strconv.Quote(text)
	case kindTimestamp:
		if _, err := strconv.ParseInt(text, 10, 64); err != nil {
			js = strconv.Quote(text)
		}
	}
	var p fastjson.Parser
	v, err := p.Parse(js)
	if err != nil {
		return parquet.Value{}, fmt.Errorf("default %q is not a %s value", text, n.field.Type)
	}
	var x parquet.Value
	if derr := d.value(n.id, n, v, &x); derr != nil {
		return parquet.Value{}, fmt.Errorf("default %q: %s", text, derr.Detail)
	}
	return x.Clone(), nil
}
