package records

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// sortPolicy sorts by a nullable string, then a nullable int, then time.
const sortPolicy = `name: sort_test
source: {subjects: [x.>]}
schema:
  fields:
    - {name: k, type: string}
    - {name: v, type: int64}
    - {name: ts, type: timestamp, required: true}
time: {field: ts}
window: {size: 1h}
output: {sort_by: [k, v, ts]}
load: {table: sort_test}
`

// TestSortRowsMatchesCompare: SortRows yields exactly Compare's order, for
// few and many distinct keys, nulls, ties and tiny inputs.
func TestSortRowsMatchesCompare(t *testing.T) {
	l := mustLayout(t, sortPolicy)
	for _, tc := range []struct {
		name     string
		n, keys  int
		nullKeys bool
	}{
		{"tiny", 10, 3, true},
		{"few keys", 20000, 20, false},
		{"few keys with nulls", 20000, 20, true},
		{"one key", 5000, 1, false},
		{"too many keys for buckets", 20000, maxSortBuckets + 500, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.keys)))
			dec := NewDecoder(l)
			var rows []parquet.Row
			for i := range tc.n {
				var k, v string
				switch {
				case tc.nullKeys && r.IntN(10) == 0:
					k = "null"
				default:
					k = fmt.Sprintf("%q", fmt.Sprintf("key-%d", r.IntN(tc.keys)))
				}
				if r.IntN(5) == 0 {
					v = "null"
				} else {
					v = fmt.Sprint(r.IntN(50))
				}
				event := fmt.Sprintf(`{"k":%s,"v":%s,"ts":%d}`, k, v, 1_700_000_000_000+int64(r.IntN(3_600_000)))
				row, _, err := dec.Decode([]byte(event), uint64(i+1), 0)
				if err != nil {
					t.Fatal(err)
				}
				rows = append(rows, row)
			}
			want := slices.Clone(rows)
			slices.SortFunc(want, l.Compare)
			got := slices.Clone(rows)
			l.SortRows(got)
			for i := range want {
				if l.Seq(got[i]) != l.Seq(want[i]) {
					t.Fatalf("row %d: got seq %d (%s), want seq %d (%s)", i, l.Seq(got[i]), show(got[i]), l.Seq(want[i]), show(want[i]))
				}
			}
		})
	}
}

func show(r parquet.Row) string {
	var b strings.Builder
	for _, v := range r {
		fmt.Fprintf(&b, "%v ", v)
	}
	return b.String()
}
