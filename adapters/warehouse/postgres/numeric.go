package postgres

import (
	"math/big"
	"math/bits"

	"github.com/jackc/pgx/v5/pgtype"
)

// decimalSlot is a decimal of precision up to 18: its unscaled value and
// scale, as Parquet stores it (INT32, INT64). numericCodec writes it in
// PostgreSQL's binary numeric format directly; pgx's own numeric encoding
// goes through big.Int arithmetic for every value and was the most
// expensive part of a COPY with one decimal column.
type decimalSlot struct {
	unscaled int64
	scale    int16
}

// NumericValue makes decimalSlot encodable without numericCodec too.
func (s *decimalSlot) NumericValue() (pgtype.Numeric, error) {
	return pgtype.Numeric{Int: big.NewInt(s.unscaled), Exp: -int32(s.scale), Valid: true}, nil
}

// numericCodec is pgx's numeric codec, with a fast binary encoding of
// *decimalSlot; every other value is pgx's.
type numericCodec struct{ pgtype.NumericCodec }

func (c numericCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(*decimalSlot); ok && format == pgtype.BinaryFormatCode {
		return encodeDecimalSlot{}
	}
	return c.NumericCodec.PlanEncode(m, oid, format, value)
}

type encodeDecimalSlot struct{}

func (encodeDecimalSlot) Encode(value any, buf []byte) ([]byte, error) {
	s := value.(*decimalSlot)
	return appendNumeric(buf, s.unscaled, int(s.scale)), nil
}

// registerNumeric makes m encode *decimalSlot with numericCodec.
func registerNumeric(m *pgtype.Map) {
	m.RegisterType(&pgtype.Type{Name: "numeric", OID: pgtype.NumericOID, Codec: numericCodec{}})
}

var pow10 = [4]uint64{1, 10, 100, 1000}

// appendNumeric appends unscaled × 10^-scale (scale 0..38) in PostgreSQL's
// binary numeric format: ndigits, weight, sign, dscale (int16 each), then
// ndigits base-10000 digits, most significant first, with the decimal
// point between two digits and no trailing zero digits.
func appendNumeric(buf []byte, unscaled int64, scale int) []byte {
	neg := unscaled < 0
	u := uint64(unscaled)
	if neg {
		u = ^u + 1
	}
	// Align the point to a digit boundary: scale+pad is a multiple of 4.
	pad := (4 - scale%4) % 4
	hi, lo := bits.Mul64(u, pow10[pad])
	var groups [8]uint16 // least significant first; < 2^64·1000 < 10000^6
	n := 0
	for hi != 0 || lo != 0 {
		var r uint64
		hi, r = bits.Div64(0, hi, 10000)
		lo, r = bits.Div64(r, lo, 10000)
		groups[n] = uint16(r)
		n++
	}
	frac := (scale + pad) / 4
	weight := n - 1 - frac
	z := 0
	for z < n && groups[z] == 0 {
		z++
	}
	sign := uint16(0)
	if neg && n > 0 {
		sign = 0x4000
	}
	if n == 0 {
		weight = 0
	}
	buf = appendInt16(buf, uint16(n-z))
	buf = appendInt16(buf, uint16(int16(weight)))
	buf = appendInt16(buf, sign)
	buf = appendInt16(buf, uint16(scale))
	for i := n - 1; i >= z; i-- {
		buf = appendInt16(buf, groups[i])
	}
	return buf
}

func appendInt16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }
