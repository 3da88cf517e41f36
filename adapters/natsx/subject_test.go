package natsx

import "testing"

func TestSubjectCovers(t *testing.T) {
	tests := []struct {
		filter, sub string
		want        bool
	}{
		// ">" covers everything with at least one token.
		{">", "a", true},
		{">", "a.b.c", true},
		{">", "*", true},
		{">", ">", true},
		{">", "events.sales.>", true},

		// "*" is exactly one token.
		{"*", "a", true},
		{"*", "*", true},
		{"*", "a.b", false},
		{"*", ">", false},

		// Exact subjects.
		{"events.sales", "events.sales", true},
		{"events.sales", "events.returns", false},
		{"events.sales", "events.sales.eu", false}, // longer
		{"events.sales.eu", "events.sales", false}, // shorter
		{"events.sales", "events.*", false},
		{"events.sales", "events.>", false},

		// Trailing ">".
		{"events.>", "events.sales", true},
		{"events.>", "events.sales.eu.berlin", true},
		{"events.>", "events.sales.>", true},
		{"events.>", "events.*", true},
		{"events.>", "events.*.>", true},
		{"events.>", "events.>", true},
		{"events.>", "events", false}, // ">" needs at least one more token
		{"events.>", "orders.sales", false},
		{"events.sales.>", "events.>", false},
		{"events.sales.>", "events.sales", false},
		{"events.sales.>", "events.sales.eu", true},
		{"events.sales.>", "events.*.eu", false},

		// "*" in the middle.
		{"events.*", "events.sales", true},
		{"events.*", "events.*", true},
		{"events.*", "events.sales.eu", false},
		{"events.*", "events.>", false},
		{"events.*.eu", "events.sales.eu", true},
		{"events.*.eu", "events.*.eu", true},
		{"events.*.eu", "events.sales.us", false},
		{"events.*.>", "events.sales.>", true},
		{"events.*.>", "events.sales.eu", true},
		{"events.*.>", "events.>", false}, // events.> also matches events.x
		{"events.*.>", "events.sales", false},
		{"*.>", ">", false}, // ">" also matches a one-token subject
		{"*.>", "a.>", true},
	}
	for _, tt := range tests {
		if got := SubjectCovers(tt.filter, tt.sub); got != tt.want {
			t.Errorf("SubjectCovers(%q, %q) = %v, want %v", tt.filter, tt.sub, got, tt.want)
		}
	}
}
