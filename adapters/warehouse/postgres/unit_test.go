package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/windrow/windrow/adapters/warehouse"
)

func TestConfigValidateNamesEveryField(t *testing.T) {
	c := Config{URL: "mysql://root:hunter2@db/x", MaxConns: -1, ConnectTimeout: -time.Second}
	err := c.Validate()
	for _, want := range []string{"URL:", "MaxConns:", "ConnectTimeout:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate() shows the password: %v", err)
	}
	c = Config{URL: "postgres://u@localhost/db"}
	c.setDefaults()
	if err := c.Validate(); err != nil || c.MaxConns != DefaultMaxConns || c.ConnectTimeout != DefaultConnectTimeout {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

func TestRedactHidesThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://loader:hunter2@db:5432/wh?sslmode=disable",
		"postgres://loader@db/wh?password=hunter2&sslmode=disable",
		"postgres://loader:hunter2@db:bad port/wh",
	} {
		if got := Redact(dsn); strings.Contains(got, "hunter2") {
			t.Errorf("Redact(%q) = %q", dsn, got)
		}
	}
	// Open fails without showing it either (nothing listens on port 1).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Open(ctx, Config{URL: "postgres://loader:hunter2@127.0.0.1:1/wh?sslmode=disable", ConnectTimeout: time.Second})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !warehouse.IsTransient(err) {
		t.Errorf("Open of an unreachable server: %v; want a transient error without the password", err)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err       error
		transient bool
	}{
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "53300"}, true},
		{&pgconn.PgError{Code: "42P01"}, false}, // undefined table
		{&pgconn.PgError{Code: "23502"}, false}, // not null violation
		{fmt.Errorf("write: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{io.ErrUnexpectedEOF, true},
		{context.Canceled, false},
		{errors.New("syntax"), false},
	} {
		if got := warehouse.IsTransient(classify(tc.err)); got != tc.transient {
			t.Errorf("classify(%v): transient %v, want %v", tc.err, got, tc.transient)
		}
	}
	// A full disk is retried, and says so (metrics, logs).
	if err := classify(&pgconn.PgError{Code: "53100"}); !errors.Is(err, warehouse.ErrDiskFull) || !warehouse.IsTransient(err) {
		t.Errorf("classify(disk_full) = %v, want ErrDiskFull, transient", err)
	}
}

func TestBindPostLoad(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`DELETE FROM d WHERE w = $window_start`, `DELETE FROM d WHERE w = ($1::timestamptz)`},
		{`SELECT $policy, $revision, $policy`, `SELECT ($3::text), ($4::bigint), ($3::text)`},
		{`SELECT '$policy', "$policy", $$ $policy $$, $t$ $revision $t$ -- $policy
		  /* $policy */ $window_end`, `SELECT '$policy', "$policy", $$ $policy $$, $t$ $revision $t$ -- $policy
		  /* $policy */ ($2::timestamptz)`},
		{`SELECT $window_startx, $1`, `SELECT $window_startx, $1`},
		{`SELECT 'it''s $policy', $policy`, `SELECT 'it''s $policy', ($3::text)`},
	} {
		if got := bindPostLoad(tc.in); got != tc.want {
			t.Errorf("bindPostLoad(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	b := warehouse.Batch{Policy: "p", Revision: 3, WindowStart: time.Unix(0, 0), WindowEnd: time.Unix(60, 0)}
	if got := fmt.Sprint(postLoadArgs(b)[2:]); got != "[p 3]" {
		t.Errorf("postLoadArgs: policy and revision %v, want [p 3]", got)
	}
}

func TestParseColType(t *testing.T) {
	for in, want := range map[string]string{
		"string": "text", "int64": "bigint", "decimal(12,2)": "numeric(12,2)", "list<int64>": "bigint[]",
		"list<decimal(6,2)>": "numeric(6,2)[]", "list<list<int64>>": "jsonb", "list<object<a:int64>>": "jsonb",
		"object<a:int64,b:list<string>>": "jsonb", "timestamp": "timestamp with time zone",
	} {
		ct, err := parseColType(in)
		if err != nil || ct.sqlType != want || ct.spelled != in {
			t.Errorf("parseColType(%q) = %+v, %v; want %s", in, ct, err, want)
		}
	}
	for _, in := range []string{"int", "decimal(40,2)", "list<int64", "object<A:int64>", "object<a:int64>x"} {
		if _, err := parseColType(in); err == nil {
			t.Errorf("parseColType(%q): no error", in)
		}
	}
}

// appendNumeric writes what pgx's own encoding of the same value means:
// both decode to the same number.
func TestAppendNumericMatchesPgx(t *testing.T) {
	m := pgtype.NewMap()
	values := []int64{0, 1, -1, 9, 10, 9999, 10000, 12345678, -1050, 1 << 62, -(1 << 62), 999999999999999999, -999999999999999999}
	for scale := 0; scale <= 18; scale++ {
		for _, v := range values {
			buf := appendNumeric(nil, v, scale)
			var got pgtype.Numeric
			if err := m.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, buf, &got); err != nil {
				t.Fatalf("%d scale %d: %v", v, scale, err)
			}
			want := new(big.Rat).SetFrac(big.NewInt(v), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
			gotRat := new(big.Rat).SetInt(got.Int)
			if got.Exp >= 0 {
				gotRat.Mul(gotRat, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(got.Exp)), nil)))
			} else {
				gotRat.Quo(gotRat, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-got.Exp)), nil)))
			}
			if gotRat.Cmp(want) != 0 {
				t.Errorf("%d scale %d: decodes to %s, want %s", v, scale, gotRat.FloatString(scale), want.FloatString(scale))
			}
		}
	}
}
