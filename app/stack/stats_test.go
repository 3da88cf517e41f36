package stack

import (
	"reflect"
	"testing"

	"github.com/windrow/windrow/services/collector"
	"github.com/windrow/windrow/services/compactor"
)

// countUp sets field i of a Stats value to base+i, so that a field left out
// of a sum shows.
func countUp[T any](base int64) T {
	var v T
	rv := reflect.ValueOf(&v).Elem()
	for i := range rv.NumField() {
		rv.Field(i).SetInt(base + int64(i))
	}
	return v
}

func TestAddStatsSumsEveryField(t *testing.T) {
	check := func(t *testing.T, got any, n int) {
		rv := reflect.ValueOf(got)
		for i := range n {
			if want := int64(100 + 2*i + 10); rv.Field(i).Int() != want {
				t.Errorf("%s = %d, want %d", rv.Type().Field(i).Name, rv.Field(i).Int(), want)
			}
		}
	}
	t.Run("collector", func(t *testing.T) {
		got := addStats(countUp[collector.Stats](10), countUp[collector.Stats](100))
		check(t, got, reflect.TypeFor[collector.Stats]().NumField())
	})
	t.Run("compactor", func(t *testing.T) {
		got := addStats(countUp[compactor.Stats](10), countUp[compactor.Stats](100))
		check(t, got, reflect.TypeFor[compactor.Stats]().NumField())
	})
}
