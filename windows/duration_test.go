package windows

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr error
	}{
		{"64MiB", 64 << 20, nil},
		{"128MB", 128_000_000, nil},
		{"1GiB", 1 << 30, nil},
		{"512KiB", 512 << 10, nil},
		{"10KB", 10_000, nil},
		{"10kb", 10_000, nil},
		{"64 MiB", 64 << 20, nil},
		{"1000", 1000, nil},
		{"100B", 100, nil},
		{"0", 0, nil},
		{"", 0, ErrInvalidPolicy},
		{"-1MiB", 0, ErrInvalidPolicy},
		{"1.5GiB", 0, ErrInvalidPolicy},
		{"12 parsecs", 0, ErrInvalidPolicy},
		{"99999999999TiB", 0, ErrInvalidPolicy},
		{"99999999999999999999", 0, ErrInvalidPolicy},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for _, tt := range []struct {
		in   ByteSize
		want string
	}{
		{64 * MiB, "64MiB"}, {128 * MB, "128MB"}, {GiB, "1GiB"}, {512 * KiB, "512KiB"},
		{10 * KB, "10KB"}, {1000, "1KB"}, {1001, "1001"}, {0, "0"}, {4 * GiB, "4GiB"},
	} {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		if back, err := ParseByteSize(tt.in.String()); err != nil || back != tt.in {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in.String(), back, err, tt.in)
		}
	}
}

type sizes struct {
	D Duration `yaml:"d" json:"d"`
	B ByteSize `yaml:"b" json:"b"`
}

func TestDurationAndByteSizeYAML(t *testing.T) {
	var v sizes
	if err := yaml.Unmarshal([]byte("d: 1h30m\nb: 64MiB\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.D.D() != 90*time.Minute || v.B != 64*MiB {
		t.Fatalf("decoded %+v", v)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "d: 1h30m0s\nb: 64MiB\n"; got != want {
		t.Errorf("yaml.Marshal = %q, want %q", got, want)
	}
	for _, bad := range []string{"d: 25x\n", "d: [1h]\n", "b: lots\n", "b: {a: 1}\n"} {
		if err := yaml.Unmarshal([]byte(bad), &v); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("yaml.Unmarshal(%q) error = %v, want ErrInvalidPolicy", bad, err)
		}
	}
}

func TestDurationAndByteSizeJSON(t *testing.T) {
	v := sizes{D: Duration(5 * time.Minute), B: 64 * MiB}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `{"d":"5m0s","b":67108864}`; got != want {
		t.Errorf("json.Marshal = %s, want %s", got, want)
	}
	var back sizes
	if err := json.Unmarshal(out, &back); err != nil || back != v {
		t.Errorf("json round trip = %+v, %v; want %+v", back, err, v)
	}
	if err := json.Unmarshal([]byte(`{"d":"24h","b":"1GiB"}`), &back); err != nil || back.D.D() != 24*time.Hour || back.B != GiB {
		t.Errorf("json.Unmarshal strings = %+v, %v", back, err)
	}
	for _, bad := range []string{`{"d":300}`, `{"d":"5 minutes"}`, `{"b":-1}`, `{"b":1.5}`, `{"b":"lots"}`} {
		err := json.Unmarshal([]byte(bad), &back)
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "(") {
			t.Errorf("json.Unmarshal(%s) error = %v, want ErrInvalidPolicy with a hint", bad, err)
		}
	}
}

func TestFieldErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{File: "p.yaml", Line: 3, Field: "name", Msg: "bad"}, "p.yaml:3: name: bad"},
		{FieldError{File: "p.yaml", Field: "name", Msg: "bad"}, "p.yaml: name: bad"},
		{FieldError{Field: "name", Msg: "bad"}, "name: bad"},
		{FieldError{Line: 3, Msg: "bad"}, "line 3: bad"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
