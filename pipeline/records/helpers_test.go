package records

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/windrow/windrow/windows"
)

// allTypesPolicy has a field of every type, every epoch unit, and required
// and nullable fields. Its time field is ts (epoch milliseconds).
const allTypesPolicy = `name: all_types
source:
  subjects: [events.all.>]
schema:
  fields:
    - {name: s,     type: string,    required: true}
    - {name: n,     type: int64,     required: true}
    - {name: i,     type: int64}
    - {name: f,     type: float64}
    - {name: b,     type: bool}
    - {name: ts,    type: timestamp, required: true}
    - {name: ts_s,  type: timestamp, unit: s}
    - {name: ts_us, type: timestamp, unit: us}
    - {name: ts_ns, type: timestamp, unit: ns}
    - {name: d,     type: date}
    - {name: o,     type: string}
time:
  field: ts
window:
  size: 1h
output:
  sort_by: [s, ts]
load:
  table: all_types
`

func mustLayout(tb testing.TB, policyYAML string) *Layout {
	tb.Helper()
	p, err := windows.ParsePolicy("test.yaml", []byte(policyYAML))
	if err != nil {
		tb.Fatal(err)
	}
	l, err := NewLayout(p)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// salesLayout is the layout of the deployed daily_store_sales policy.
func salesLayout(tb testing.TB) *Layout {
	tb.Helper()
	const path = "../../deploy/policies/daily_store_sales.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := windows.ParsePolicy(path, data)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := NewLayout(p)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// salesEvents generates n well-formed point-of-sale events of the JSON shape
// of loadtest.Sales (which cannot be imported here: loadtest depends on
// app/stack, which depends on this package), spread over span from start.
func salesEvents(seed uint64, n int, start time.Time, span time.Duration) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	skus := []string{"espresso", "latte", "croissant", "bagel", "muffin", "tea", "juice", "sandwich"}
	currencies := []string{"EUR", "USD", "GBP"}
	step := span / time.Duration(max(n, 1))
	out := make([][]byte, n)
	for i := range n {
		t := start.Add(time.Duration(i) * step).Add(-time.Duration(r.Int64N(int64(time.Minute))))
		if t.Before(start) {
			t = start
		}
		t = t.Truncate(time.Millisecond)
		qty := int64(1 + r.IntN(5))
		cents := int64(150 + r.IntN(2500))
		amount := float64(qty*cents) / 100
		out[i] = fmt.Appendf(nil, `{"store_id":"store-%03d","sale_id":"s-%d-%d","sku":%q,"quantity":%d,"amount":%s,"currency":%q,"paid":%t,"sold_at":%q,"business_day":%q}`,
			1+r.IntN(20), seed, i, skus[r.IntN(len(skus))], qty, strconv.FormatFloat(amount, 'f', 2, 64),
			currencies[r.IntN(len(currencies))], r.IntN(10) != 0,
			t.UTC().Format("2006-01-02T15:04:05.000Z"), t.UTC().Format("2006-01-02"))
	}
	return out
}
