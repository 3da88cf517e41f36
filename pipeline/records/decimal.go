package records

import (
	"math/bits"
)

// decimalError says why a text is not a decimal(p,s) value.
type decimalError uint8

const (
	decimalOK       decimalError = iota
	decimalSyntax                // not a number
	decimalScale                 // more digits after the point than the scale (non-zero ones)
	decimalOverflow              // more digits before the point than precision-scale
)

// maxDecimalExponent bounds the exponent of "1e…" literals; beyond it any
// non-zero value overflows or has too many fraction digits.
const maxDecimalExponent = 1000

// parseDecimal reads text, a JSON number or a numeric string ("-12.50",
// "1.5e2", "+3"; signs other than a leading '-' only when sign is true),
// exactly as a decimal of precision p and scale s, without a float64 round
// trip: the unscaled value (text × 10^s) as a 128-bit magnitude hi:lo and its
// sign. Trailing zeros beyond the scale are accepted ("1.500" for scale 2).
func parseDecimal(text []byte, p, s int, plus bool) (neg bool, hi, lo uint64, e decimalError) {
	i := 0
	if i < len(text) && (text[i] == '-' || (plus && text[i] == '+')) {
		neg = text[i] == '-'
		i++
	}
	intStart := i
	for i < len(text) && text[i] >= '0' && text[i] <= '9' {
		i++
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(text) && text[i] == '.' {
		i++
		fracStart = i
		for i < len(text) && text[i] >= '0' && text[i] <= '9' {
			i++
		}
		fracEnd = i
	}
	if intEnd == intStart && fracEnd == fracStart {
		return false, 0, 0, decimalSyntax
	}
	exp := 0
	if i < len(text) && (text[i] == 'e' || text[i] == 'E') {
		i++
		expNeg := false
		if i < len(text) && (text[i] == '+' || text[i] == '-') {
			expNeg = text[i] == '-'
			i++
		}
		start := i
		for i < len(text) && text[i] >= '0' && text[i] <= '9' {
			if exp <= maxDecimalExponent {
				exp = exp*10 + int(text[i]-'0')
			}
			i++
		}
		if i == start {
			return false, 0, 0, decimalSyntax
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(text) {
		return false, 0, 0, decimalSyntax
	}
	// The digits D (integer then fraction part) have the value D × 10^(exp-frac);
	// the unscaled value is D × 10^shift.
	nInt, nFrac := intEnd-intStart, fracEnd-fracStart
	digit := func(k int) byte { // k-th digit of D
		if k < nInt {
			return text[intStart+k]
		}
		return text[fracStart+k-nInt]
	}
	n := nInt + nFrac
	first := 0 // first non-zero digit
	for first < n && digit(first) == '0' {
		first++
	}
	if first == n {
		return false, 0, 0, decimalOK // zero, whatever its exponent ("-0" is 0)
	}
	shift := exp - nFrac + s
	last := n // one past the last digit kept
	if shift < 0 {
		// Dropping -shift digits: they must be zeros.
		if -shift > n-first {
			return false, 0, 0, decimalScale
		}
		last = n + shift
		for k := last; k < n; k++ {
			if digit(k) != '0' {
				return false, 0, 0, decimalScale
			}
		}
		shift = 0
	}
	if last-first+shift > p {
		return false, 0, 0, decimalOverflow
	}
	for k := first; k < last; k++ {
		hi, lo = mul10add(hi, lo, uint64(digit(k)-'0'))
	}
	for range shift {
		hi, lo = mul10add(hi, lo, 0)
	}
	return neg, hi, lo, decimalOK
}

// mul10add returns hi:lo × 10 + d; callers keep it below 10^38 < 2^127.
func mul10add(hi, lo, d uint64) (uint64, uint64) {
	h, l := bits.Mul64(lo, 10)
	h += hi * 10
	l, c := bits.Add64(l, d, 0)
	return h + c, l
}

// putDecimal128 writes the unscaled value as a big-endian two's complement
// integer of len(dst) bytes.
func putDecimal128(dst []byte, neg bool, hi, lo uint64) {
	if neg {
		// Two's complement over 128 bits: invert and add one.
		var c uint64
		lo, c = bits.Add64(^lo, 1, 0)
		hi = ^hi + c
	}
	for k := len(dst) - 1; k >= 0; k-- {
		dst[k] = byte(lo)
		lo = lo>>8 | hi<<56
		hi >>= 8
	}
}
