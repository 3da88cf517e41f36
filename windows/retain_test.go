package windows

import (
	"testing"
	"time"
)

func TestRetainForDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    WindowSpec
		want time.Duration
	}{
		{"absent: 7 days", WindowSpec{Kind: Tumbling, Size: Duration(time.Hour)}, 7 * 24 * time.Hour},
		{"set", WindowSpec{Kind: Tumbling, Size: Duration(time.Hour), Retain: Duration(48 * time.Hour)}, 48 * time.Hour},
		{"weekly windows: twice the minimum", WindowSpec{Kind: Tumbling, Size: Duration(7 * 24 * time.Hour), AllowedLateness: Duration(time.Hour)}, 2 * (7*24 + 1) * time.Hour},
		{"revise adds revise_after", WindowSpec{Kind: Tumbling, Size: Duration(7 * 24 * time.Hour), Late: LateRevise}, 2 * (7*24*time.Hour + time.Minute)},
	} {
		if got := tc.w.RetainFor().D(); got != tc.want {
			t.Errorf("%s: RetainFor = %s, want %s", tc.name, got, tc.want)
		}
	}
}
