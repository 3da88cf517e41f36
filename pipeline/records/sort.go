package records

import (
	"bytes"
	"slices"

	"github.com/parquet-go/parquet-go"
)

// maxSortBuckets bounds the distinct values of the first sort column that
// SortRows buckets by; beyond it a plain comparison sort is used.
const maxSortBuckets = 4096

// SortRows sorts rows in Compare order. Most policies sort first by a string
// column with few distinct values (a store, a tenant, a country): rows are
// bucketed by that value and each bucket is sorted by the remaining columns,
// which are mostly in order already (event time, then sequence). That avoids
// most string comparisons and the cache misses of a full comparison sort.
func (l *Layout) SortRows(rows []parquet.Row) {
	if len(rows) < 256 || len(l.sortBy) < 2 || rows[0][l.sortBy[0]].Kind() != parquet.ByteArray {
		slices.SortFunc(rows, l.Compare)
		return
	}
	c0 := l.sortBy[0]
	index := make(map[string]int, 64)
	var buckets [][]parquet.Row
	var nulls []parquet.Row
	for _, r := range rows {
		v := &r[c0]
		if v.IsNull() {
			nulls = append(nulls, r)
			continue
		}
		if v.Kind() != parquet.ByteArray {
			slices.SortFunc(rows, l.Compare) // not the column shape we expected
			return
		}
		i, ok := index[string(v.ByteArray())]
		if !ok {
			if len(buckets) == maxSortBuckets {
				slices.SortFunc(rows, l.Compare)
				return
			}
			i = len(buckets)
			index[string(v.ByteArray())] = i
			buckets = append(buckets, nil)
		}
		buckets[i] = append(buckets[i], r)
	}
	slices.SortFunc(buckets, func(a, b []parquet.Row) int {
		return bytes.Compare(a[0][c0].ByteArray(), b[0][c0].ByteArray())
	})
	rest := l.sortBy[1:]
	compareRest := func(a, b parquet.Row) int {
		for _, c := range rest {
			if r := compareValues(&a[c], &b[c]); r != 0 {
				return r
			}
		}
		return 0
	}
	// Nulls sort first (Compare's order), then the buckets by value.
	out := rows[:0]
	slices.SortFunc(nulls, l.Compare)
	out = append(out, nulls...)
	for _, b := range buckets {
		slices.SortFunc(b, compareRest)
		out = append(out, b...)
	}
}
