package windows

import (
	"errors"
	"strings"
	"testing"
)

func TestNotRunYet(t *testing.T) {
	base := `name: x
source: {subjects: [e.>]}
schema:
  fields:
    - {name: k, type: string, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
load: {table: x}
`
	for _, tc := range []struct {
		name, extra string
		want        []string
	}{
		{"tumbling", "window: {size: 1h}\n", nil},
		{"hopping", "window: {kind: hopping, size: 1h, slide: 15m}\n", nil},
		{"session", "window: {kind: session, gap: 30m}\nkey: [k]\n", nil},
		{"session revise", "window: {kind: session, gap: 30m, late: revise}\nkey: [k]\n", []string{"x.yaml: window.late: revise is not run for session windows yet"}},
		{"keys", "window: {size: 1h}\nkey: [k]\n", nil},
	} {
		p, err := ParsePolicy("x.yaml", []byte(base+tc.extra))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = p.NotRunYet("x.yaml")
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v, want nil", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("%s: %v does not match ErrInvalidPolicy", tc.name, err)
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want it to contain %q", tc.name, err, w)
			}
		}
	}
}

func TestSessionPane(t *testing.T) {
	for _, tc := range []struct {
		gap, want string
	}{
		{"1s", "1h"}, {"30m", "1h"}, {"1h", "1h"}, {"61m", "2h"}, {"5h", "6h"}, {"13h", "24h"}, {"24h", "24h"}, {"25h", "48h"}, {"72h", "72h"},
	} {
		gap, err := parseDuration(tc.gap)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := parseDuration(tc.want)
		if got := (WindowSpec{Kind: SessionWindows, Gap: gap}).SessionPane(); got != want {
			t.Errorf("gap %s: pane %s, want %s", tc.gap, got, want)
		}
	}
}
