package records

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/valyala/fastjson"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// ErrDecode is wrapped by every *DecodeError.
var ErrDecode = errors.New("decode event")

// DecodeError says why an event cannot be a row. Reason is one of the
// messages.Reason* identifiers and goes into the dead-letter header.
type DecodeError struct {
	Reason string
	Field  string
	Detail string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
	}
	return fmt.Sprintf("%s: field %s: %s", e.Reason, e.Field, e.Detail)
}

func (e *DecodeError) Unwrap() error { return ErrDecode }

// Limits of a decodable event.
const (
	// MaxEventBytes is the largest event payload accepted.
	MaxEventBytes = 1 << 20
	// minMicros and maxMicros bound timestamps to years 0001..9999.
	minMicros = -62135596800 * 1e6
	maxMicros = 253402300799999999
)

// Decoder decodes JSON events into rows of a Layout. It is not safe for
// concurrent use; each collector worker owns one. String bytes of decoded
// rows live in the decoder's arena until Reset.
type Decoder struct {
	layout *Layout
	parser fastjson.Parser
	arena  arena
	index  map[string]int // JSON key → policy field index
	seen   []bool
	units  []int64 // micros per unit for timestamp numbers
	values []parquet.Value
}

// NewDecoder returns a decoder for layout.
func NewDecoder(l *Layout) *Decoder {
	p := l.policy
	d := &Decoder{layout: l, index: make(map[string]int, len(p.Schema.Fields)), seen: make([]bool, len(p.Schema.Fields)), units: make([]int64, len(p.Schema.Fields))}
	for i, f := range p.Schema.Fields {
		d.index[f.Name] = i
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

// Reset releases the string bytes and values of every row decoded so far.
func (d *Decoder) Reset() {
	d.arena.reset()
	d.values = d.values[:0]
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
	n := l.NumColumns()
	if cap(d.values)-len(d.values) < n {
		// Rows already handed out keep pointing into the old slab.
		d.values = make([]parquet.Value, 0, max(4096, 64*n))
	}
	start := len(d.values)
	row := d.values[start : start+n : start+n]
	clear(d.seen)

	var derr *DecodeError
	obj.Visit(func(key []byte, fv *fastjson.Value) {
		if derr != nil {
			return
		}
		i, ok := d.index[string(key)]
		if !ok {
			return // fields outside the schema are ignored
		}
		d.seen[i] = true
		val, e := d.value(i, &fields[i], fv)
		if e != nil {
			derr = e
			return
		}
		row[l.col[i]] = val
	})
	if derr != nil {
		return nil, 0, derr
	}
	for i := range fields {
		if !d.seen[i] {
			if fields[i].Required {
				return nil, 0, &DecodeError{Reason: messages.ReasonMissingField, Field: fields[i].Name, Detail: "required field is absent"}
			}
			row[l.col[i]] = parquet.NullValue().Level(0, 0, l.col[i])
		}
	}
	row[l.seqCol] = parquet.Int64Value(int64(seq)).Level(0, 0, l.seqCol)
	d.values = d.values[:start+n]
	event := ingestMicros
	if l.timeCol >= 0 {
		event = row[l.timeCol].Int64()
	}
	return row, event, nil
}

func (d *Decoder) value(i int, f *windows.Field, v *fastjson.Value) (parquet.Value, *DecodeError) {
	col, def := d.layout.col[i], d.layout.def[i]
	t := v.Type()
	if t == fastjson.TypeNull {
		if f.Required {
			return parquet.Value{}, &DecodeError{Reason: messages.ReasonMissingField, Field: f.Name, Detail: "required field is null"}
		}
		return parquet.NullValue().Level(0, 0, col), nil
	}
	wrong := func(want string) *DecodeError {
		return &DecodeError{Reason: messages.ReasonWrongType, Field: f.Name, Detail: fmt.Sprintf("got a JSON %s, want %s", t, want)}
	}
	switch f.Type {
	case windows.TypeString:
		if t != fastjson.TypeString {
			return parquet.Value{}, wrong("a string")
		}
		b := v.GetStringBytes()
		if !utf8.Valid(b) {
			return parquet.Value{}, &DecodeError{Reason: messages.ReasonInvalidUTF8, Field: f.Name, Detail: "string is not valid UTF-8"}
		}
		return parquet.ByteArrayValue(d.arena.copy(b)).Level(0, def, col), nil
	case windows.TypeInt64:
		if t != fastjson.TypeNumber {
			return parquet.Value{}, wrong("an integer")
		}
		n, err := v.Int64()
		if err != nil {
			return parquet.Value{}, numberError(f, v, "a 64-bit integer")
		}
		return parquet.Int64Value(n).Level(0, def, col), nil
	case windows.TypeFloat64:
		if t != fastjson.TypeNumber {
			return parquet.Value{}, wrong("a number")
		}
		x, err := v.Float64()
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return parquet.Value{}, &DecodeError{Reason: messages.ReasonOutOfRange, Field: f.Name, Detail: fmt.Sprintf("%s is not a finite 64-bit float", v.String())}
		}
		return parquet.DoubleValue(x).Level(0, def, col), nil
	case windows.TypeBool:
		switch t {
		case fastjson.TypeTrue:
			return parquet.BooleanValue(true).Level(0, def, col), nil
		case fastjson.TypeFalse:
			return parquet.BooleanValue(false).Level(0, def, col), nil
		}
		return parquet.Value{}, wrong("true or false")
	case windows.TypeTimestamp:
		us, e := d.timestamp(i, f, v)
		if e != nil {
			return parquet.Value{}, e
		}
		return parquet.Int64Value(us).Level(0, def, col), nil
	case windows.TypeDate:
		if t != fastjson.TypeString {
			return parquet.Value{}, wrong(`a date string "YYYY-MM-DD"`)
		}
		days, ok := parseDate(v.GetStringBytes())
		if !ok {
			return parquet.Value{}, &DecodeError{Reason: messages.ReasonWrongType, Field: f.Name, Detail: fmt.Sprintf("%s is not a date YYYY-MM-DD", v.String())}
		}
		return parquet.Int32Value(days).Level(0, def, col), nil
	}
	return parquet.Value{}, &DecodeError{Reason: messages.ReasonWrongType, Field: f.Name, Detail: "unsupported type " + string(f.Type)}
}

func (d *Decoder) timestamp(i int, f *windows.Field, v *fastjson.Value) (int64, *DecodeError) {
	switch v.Type() {
	case fastjson.TypeString:
		us, ok := parseRFC3339Micros(v.GetStringBytes())
		if !ok {
			return 0, &DecodeError{Reason: messages.ReasonWrongType, Field: f.Name, Detail: fmt.Sprintf("%s is not an RFC 3339 timestamp", truncate(v.String()))}
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
			us = n / -unit
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

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// arena hands out copies of byte slices from large chunks, so that decoded
// strings cost no allocation each and outlive the parser's buffer.
type arena struct {
	chunk []byte
	full  [][]byte
}

const arenaChunk = 1 << 20

func (a *arena) copy(b []byte) []byte {
	if len(b) > cap(a.chunk)-len(a.chunk) {
		if cap(a.chunk) > 0 {
			a.full = append(a.full, a.chunk)
		}
		a.chunk = make([]byte, 0, max(arenaChunk, len(b)))
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

// reset drops every chunk: rows decoded before still reference them, so they
// are not reused, only released to the garbage collector.
func (a *arena) reset() {
	a.full = nil
	a.chunk = nil
}
