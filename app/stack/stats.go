package stack

import "reflect"

// addStats returns a + b field by field, for the Stats structs of the roles
// (collector.Stats, compactor.Stats), whose fields are all int64 counters:
// the counters of a policy's restarted workers add up, and never go back.
// A new counter needs nothing here.
func addStats[T any](a, b T) T {
	var sum T
	va, vb, vs := reflect.ValueOf(a), reflect.ValueOf(b), reflect.ValueOf(&sum).Elem()
	for i := range vs.NumField() {
		vs.Field(i).SetInt(va.Field(i).Int() + vb.Field(i).Int())
	}
	return sum
}
