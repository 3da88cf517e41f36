package records

import (
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestParseRFC3339MicrosMatchesTimeParse checks the allocation-free fast path
// against time.Parse on random instants of years 0001-9999, in random zones
// and with fractions of 0 to 9 digits.
func TestParseRFC3339MicrosMatchesTimeParse(t *testing.T) {
	layouts := []string{
		"2006-01-02T15:04:05Z07:00",
		"2006-01-02T15:04:05.0Z07:00",
		"2006-01-02T15:04:05.000Z07:00",
		"2006-01-02T15:04:05.000000Z07:00",
		"2006-01-02T15:04:05.000000000Z07:00",
		time.RFC3339Nano, // trailing zeros dropped
	}
	rapid.Check(t, func(t *rapid.T) {
		sec := rapid.Int64Range(minMicros/1_000_000+86400, maxMicros/1_000_000-86400).Draw(t, "sec")
		nsec := rapid.Int64Range(0, 999_999_999).Draw(t, "nsec")
		offset := rapid.IntRange(-23*60-59, 23*60+59).Draw(t, "offset_minutes")
		layout := rapid.SampledFrom(layouts).Draw(t, "layout")
		lower := rapid.Bool().Draw(t, "lowercase")

		zone := time.FixedZone("", offset*60)
		s := time.Unix(sec, nsec).In(zone).Format(layout)
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("time.Parse(%q): %v", s, err)
		}
		if lower {
			s = strings.ToLower(s)
		}
		got, ok := parseRFC3339Micros([]byte(s))
		if !ok || got != want.UnixMicro() {
			t.Fatalf("parseRFC3339Micros(%q) = %d, %v; time.Parse gives %d", s, got, ok, want.UnixMicro())
		}
	})
}

// TestParseRFC3339MicrosRejectsWhatTimeParseRejects mutates valid timestamps
// by one byte: whenever time.Parse rejects the result, the fast path must too,
// and when both accept they must agree.
func TestParseRFC3339MicrosRejectsWhatTimeParseRejects(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sec := rapid.Int64Range(0, maxMicros/1_000_000-86400).Draw(t, "sec")
		s := []byte(time.Unix(sec, rapid.Int64Range(0, 999_999_999).Draw(t, "nsec")).UTC().Format(time.RFC3339Nano))
		i := rapid.IntRange(0, len(s)-1).Draw(t, "index")
		s[i] = rapid.SampledFrom([]byte("0123456789:-+.TZ xa")).Draw(t, "byte")
		if s[i] == ' ' && i == 10 {
			return // the fast path accepts a space for "T", as RFC 3339 5.6 allows
		}
		want, err := time.Parse(time.RFC3339Nano, string(s))
		got, ok := parseRFC3339Micros(s)
		switch {
		case err != nil && ok:
			t.Fatalf("parseRFC3339Micros(%q) = %d, ok; time.Parse rejects it: %v", s, got, err)
		case err == nil && (!ok || got != want.UnixMicro()):
			t.Fatalf("parseRFC3339Micros(%q) = %d, %v; time.Parse gives %d", s, got, ok, want.UnixMicro())
		}
	})
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in     string
		want   int32
		wantOK bool
	}{
		{in: "1970-01-01", want: 0, wantOK: true},
		{in: "1969-12-31", want: -1, wantOK: true},
		{in: "2024-02-29", want: 19782, wantOK: true},
		{in: "2000-02-29", want: 11016, wantOK: true},
		{in: "0001-01-01", want: -719162, wantOK: true},
		{in: "9999-12-31", want: 2932896, wantOK: true},
		{in: "2026-02-29"},
		{in: "1900-02-29"},
		{in: "0000-01-01"},
		{in: "2026-04-31"},
		{in: "2026-00-10"},
		{in: "2026-1-01"},
		{in: "2026-01-01 "},
		{in: "2026/01/01"},
		{in: "+026-01-01"},
		{in: ""},
	}
	for _, tt := range tests {
		got, ok := parseDate([]byte(tt.in))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseDate(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
