package metrics

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// statCounter is one int64 field of a role's Stats exported as a counter.
type statCounter struct {
	field   int
	counter metric.Int64ObservableCounter
	attrs   []attribute.KeyValue // from the field's attrs tag
}

// statCounters derives the counters of a Stats struct type from its fields'
// tags: metric (the instrument's name), unit, help (its description) and
// attrs ("key=value,…", fixed attributes of the field's observations).
// Fields with the same metric share one instrument. Every field must be an
// int64 with a metric tag.
func statCounters(meter metric.Meter, t reflect.Type, shared map[string]metric.Int64ObservableCounter) ([]statCounter, error) {
	var out []statCounter
	var errs []error
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("metric")
		if f.Type.Kind() != reflect.Int64 || name == "" {
			errs = append(errs, fmt.Errorf("%s.%s: want an int64 field with a metric tag", t, f.Name))
			continue
		}
		c, ok := shared[name]
		if !ok {
			var err error
			c, err = meter.Int64ObservableCounter(name, metric.WithUnit(f.Tag.Get("unit")), metric.WithDescription(f.Tag.Get("help")))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w", t, f.Name, err))
				continue
			}
			shared[name] = c
		}
		sc := statCounter{field: i, counter: c}
		if a := f.Tag.Get("attrs"); a != "" {
			for kv := range strings.SplitSeq(a, ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					errs = append(errs, fmt.Errorf("%s.%s: attrs %q: want key=value,…", t, f.Name, a))
					continue
				}
				sc.attrs = append(sc.attrs, attribute.String(k, v))
			}
		}
		out = append(out, sc)
	}
	return out, errors.Join(errs...)
}

// observeStats observes every counter of stats (a Stats struct value) with
// the attributes extra plus each field's own.
func observeStats(o metric.Observer, counters []statCounter, stats any, extra ...attribute.KeyValue) {
	v := reflect.ValueOf(stats)
	for _, c := range counters {
		attrs := append(append(make([]attribute.KeyValue, 0, len(extra)+len(c.attrs)), extra...), c.attrs...)
		o.ObserveInt64(c.counter, v.Field(c.field).Int(), metric.WithAttributeSet(attribute.NewSet(attrs...)))
	}
}

// instrumentsOf lists the instruments of counters, for RegisterCallback.
func instrumentsOf(counters ...[]statCounter) []metric.Observable {
	seen := map[metric.Int64ObservableCounter]bool{}
	var out []metric.Observable
	for _, cs := range counters {
		for _, c := range cs {
			if !seen[c.counter] {
				seen[c.counter] = true
				out = append(out, c.counter)
			}
		}
	}
	return out
}
