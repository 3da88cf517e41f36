package records

import (
	"fmt"
	"hash/maphash"
	"math"
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
	seen    []bool
	units   []int64           // micros per unit for timestamp numbers
	interns []*internTable    // per policy field; nil for non-string fields
	values  []parquet.Value   // the slab rows are taken from
	slabs   [][]parquet.Value // every slab since the decoder was made, reused after Reset
	slab    int               // index of values in slabs

	// State of the event being decoded, read by visit.
	row  parquet.Row
	next int // the field expected next: events usually repeat the key order
	err  *DecodeError
}

// NewDecoder returns a decoder for layout.
func NewDecoder(l *Layout) *Decoder {
	p := l.policy
	d := &Decoder{
		layout: l, index: make(map[string]int, len(p.Schema.Fields)), seen: make([]bool, len(p.Schema.Fields)),
		units: make([]int64, len(p.Schema.Fields)), interns: make([]*internTable, len(p.Schema.Fields)),
	}
	d.slab = -1
	seed := maphash.MakeSeed()
	for i, f := range p.Schema.Fields {
		d.index[f.Name] = i
		if f.Type == windows.TypeString {
			d.interns[i] = &internTable{seed: seed}
		}
		switch f.Unit {
		case windows.UnitSeconds:
			d.units[i] = 1e6
		case windows.UnitMicroseconds:
			d.units[i] = 1
		case windows.UnitNanoseconds:
			d.units[i] = -1000 // divide
		default:
			d.units[i] = 1000
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
	fields := l.policy.Schema.Fields
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
	// no gap and no partial row behind.
	row := d.nextRow(l.NumColumns())
	clear(d.seen)
	d.row, d.next, d.err = row, 0, nil
	obj.Visit(d.visit)
	derr := d.err
	d.row, d.err = nil, nil
	if derr != nil {
		return nil, 0, derr
	}
	for i := range fields {
		if !d.seen[i] {
			if fields[i].Required {
				return nil, 0, &DecodeError{Reason: messages.ReasonMissingField, Field: fields[i].Name, Detail: "required field is absent"}
			}
			setNull(&row[l.col[i]], l.col[i])
		}
	}
	row[l.seqCol] = parquet.Int64Value(int64(seq))
	row[l.seqCol].SetColumnIndex(l.seqCol)
	d.values = d.values[:len(d.values)+len(row)]
	event := ingestMicros
	if l.timeCol >= 0 {
		event = row[l.timeCol].Int64()
	}
	return row, event, nil
}

// nextRow returns the space of the next row, after the rows handed out.
func (d *Decoder) nextRow(n int) parquet.Row {
	if cap(d.values)-len(d.values) < n {
		// Rows already handed out keep pointing into the old slab.
		if d.slab++; d.slab < len(d.slabs) {
			d.values = d.slabs[d.slab][:0]
		} else {
			d.values = make([]parquet.Value, 0, max(4096, 64*n))
			d.slabs = append(d.slabs[:d.slab], d.values)
		}
	}
	start := len(d.values)
	return d.values[start : start+n : start+n]
}

func setNull(dst *parquet.Value, col int) {
	*dst = parquet.NullValue()
	dst.SetColumnIndex(col)
}

// visit decodes one key of the event into d.row; the first error stops it.
func (d *Decoder) visit(key []byte, fv *fastjson.Value) {
	if d.err != nil {
		return
	}
	fields := d.layout.policy.Schema.Fields
	i := d.next
	if i >= len(fields) || string(key) != fields[i].Name {
		var ok bool
		if i, ok = d.index[string(key)]; !ok {
			return // fields outside the schema are ignored
		}
	}
	d.next = i + 1
	d.seen[i] = true
	col := d.layout.col[i]
	dst := &d.row[col]
	if err := d.value(i, &fields[i], fv, dst); err != nil {
		d.err = err
		return
	}
	if !dst.IsNull() {
		dst.SetDefinitionLevel(d.layout.def[i])
	}
	dst.SetColumnIndex(col)
}

// value decodes v, the value of field i, into dst without its levels and
// column index.
func (d *Decoder) value(i int, f *windows.Field, v *fastjson.Value, dst *parquet.Value) *DecodeError {
	t := v.Type()
	if t == fastjson.TypeNull {
		if f.Required {
			return &DecodeError{Reason: messages.ReasonMissingField, Field: f.Name, Detail: "required field is null"}
		}
		*dst = parquet.NullValue()
		return nil
	}
	switch f.Type {
	case windows.TypeString:
		if t != fastjson.TypeString {
			return wrongType(f, t, "a string")
		}
		b, ok := d.str(i, v.GetStringBytes())
		if !ok {
			return &DecodeError{Reason: messages.ReasonInvalidUTF8, Field: f.Name, Detail: "string is not valid UTF-8"}
		}
		*dst = parquet.ByteArrayValue(b)
	case windows.TypeInt64:
		if t != fastjson.TypeNumber {
			return wrongType(f, t, "an integer")
		}
		n, err := v.Int64()
		if err != nil {
			return numberError(f, v, "a 64-bit integer")
		}
		*dst = parquet.Int64Value(n)
	case windows.TypeFloat64:
		if t != fastjson.TypeNumber {
			return wrongType(f, t, "a number")
		}
		x, err := v.Float64()
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return &DecodeError{Reason: messages.ReasonOutOfRange, Field: f.Name, Detail: fmt.Sprintf("%s is not a finite 64-bit float", truncate(v.String()))}
		}
		*dst = parquet.DoubleValue(x)
	case windows.TypeBool:
		switch t {
		case fastjson.TypeTrue:
			*dst = parquet.BooleanValue(true)
		case fastjson.TypeFalse:
			*dst = parquet.BooleanValue(false)
		default:
			return wrongType(f, t, "true or false")
		}
	case windows.TypeTimestamp:
		us, err := d.timestamp(i, f, v)
		if err != nil {
			return err
		}
		*dst = parquet.Int64Value(us)
	case windows.TypeDate:
		if t != fastjson.TypeString {
			return wrongType(f, t, `a date string "YYYY-MM-DD"`)
		}
		days, ok := parseDate(v.GetStringBytes())
		if !ok {
			return &DecodeError{Reason: messages.ReasonWrongType, Field: f.Name, Detail: fmt.Sprintf("%s is not a date YYYY-MM-DD", truncate(v.String()))}
		}
		*dst = parquet.Int32Value(days)
	default:
		return &DecodeError{Reason: messages.ReasonWrongType, Field: f.Name, Detail: "unsupported type " + string(f.Type)}
	}
	return nil
}

func wrongType(f *windows.Field, t fastjson.Type, want string) *DecodeError {
	return &DecodeError{Reason: messages.ReasonWrongType, Field: f.Name, Detail: fmt.Sprintf("got a JSON %s, want %s", t, want)}
}

func (d *Decoder) timestamp(i int, f *windows.Field, v *fastjson.Value) (int64, *DecodeError) {
	switch v.Type() {
	case fastjson.TypeString:
		us, ok := parseRFC3339Micros(v.GetStringBytes())
		if !ok {
			return 0, &DecodeError{Reason: messages.ReasonWrongType, Field: f.Name, Detail: fmt.Sprintf("%s is not an RFC 3339 timestamp", truncate(v.String()))}
		}
		if us < minMicros || us > maxMicros {
			return 0, &DecodeError{Reason: messages.ReasonOutOfRange, Field: f.Name, Detail: fmt.Sprintf("%s is outside years 0001-9999 in UTC", truncate(v.String()))}
		}
		return us, nil
	case fastjson.TypeNumber:
		n, err := v.Int64()
		if err != nil {
			return 0, numberError(f, v, "an integer epoch time")
		}
		unit := d.units[i]
		var us int64
		if unit < 0 {
			// Floor, not truncation: like an RFC 3339 fraction, the
			// sub-microsecond part moves the time toward the past.
			us = n / -unit
			if n%-unit < 0 {
				us--
			}
		} else {
			if n > maxMicros/unit || n < minMicros/unit {
				return 0, &DecodeError{Reason: messages.ReasonOutOfRange, Field: f.Name, Detail: fmt.Sprintf("%d %s is outside years 0001-9999", n, f.Unit)}
			}
			us = n * unit
		}
		if us < minMicros || us > maxMicros {
			return 0, &DecodeError{Reason: messages.ReasonOutOfRange, Field: f.Name, Detail: fmt.Sprintf("%d %s is outside years 0001-9999", n, f.Unit)}
		}
		return us, nil
	}
	return 0, &DecodeError{Reason: messages.ReasonWrongType, Field: f.Name, Detail: fmt.Sprintf("got a JSON %s, want an RFC 3339 string or epoch %s", v.Type(), f.Unit)}
}

func numberError(f *windows.Field, v *fastjson.Value, want string) *DecodeError {
	s := v.String()
	for _, c := range s {
		if c == '.' || c == 'e' || c == 'E' {
			return &DecodeError{Reason: messages.ReasonWrongType, Field: f.Name, Detail: fmt.Sprintf("%s is not %s", truncate(s), want)}
		}
	}
	return &DecodeError{Reason: messages.ReasonOutOfRange, Field: f.Name, Detail: fmt.Sprintf("%s does not fit %s", truncate(s), want)}
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
