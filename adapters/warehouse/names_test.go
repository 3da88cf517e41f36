package warehouse

import (
	"errors"
	"testing"
)

func TestParseTable(t *testing.T) {
	tests := []struct {
		in      string
		want    Table
		wantErr bool
	}{
		{in: "sales", want: Table{Name: "sales"}},
		{in: "mart.daily_sales", want: Table{Schema: "mart", Name: "daily_sales"}},
		{in: "Sales", wantErr: true},
		{in: "a.b.c", wantErr: true},
		{in: "mart.", wantErr: true},
		{in: `sales"; DROP TABLE x; --`, wantErr: true},
		{in: LedgerTable, wantErr: true},
		{in: "mart." + LedgerTable, wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseTable(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidIdentifier) {
				t.Errorf("ParseTable(%q) = %v, %v; want ErrInvalidIdentifier", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTable(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	if q, err := QuoteIdent("store_id"); err != nil || q != `"store_id"` {
		t.Errorf(`QuoteIdent("store_id") = %s, %v`, q, err)
	}
}
