package windows

import (
	"errors"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func keyPolicy(fields ...string) *Policy {
	return &Policy{Key: fields}
}

func TestKeyPath(t *testing.T) {
	p := keyPolicy("store_id")
	if got, want := p.KeyPath([]string{"042"}), "store_id=042/"; got != want {
		t.Errorf("KeyPath = %q, want %q", got, want)
	}
	p = keyPolicy("store_id", "day", "ts")
	got := p.KeyPath([]string{"../etc/passwd", KeyDate(20520), KeyTimestamp(time.Date(2026, 3, 8, 12, 0, 0, 250_000_000, time.UTC).UnixMicro())})
	want := "store_id=%2E%2E%2Fetc%2Fpasswd/day=2026-03-08/ts=2026-03-08T12%3A00%3A00%2E250000Z/"
	if got != want {
		t.Errorf("KeyPath = %q, want %q", got, want)
	}
	for _, tt := range []struct{ in, want string }{
		{"", "k=/"}, {"a b", "k=a%20b/"}, {"\x00", "k=%00/"}, {"%", "k=%25/"}, {"é", "k=%C3%A9/"},
		{"a=b", "k=a%3Db/"}, {`C:\x`, "k=C%3A%5Cx/"}, {"Z_-9", "k=Z_-9/"},
	} {
		if got := keyPolicy("k").KeyPath([]string{tt.in}); got != tt.want {
			t.Errorf("KeyPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := keyPolicy().KeyPath(nil); got != "" {
		t.Errorf("KeyPath without a key = %q, want empty", got)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("KeyPath with the wrong number of values did not panic")
		}
	}()
	keyPolicy("a", "b").KeyPath([]string{"x"})
}

func TestKeyValueText(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{KeyInt64(-42), "-42"}, {KeyInt64(7), "7"},
		{KeyDate(0), "1970-01-01"}, {KeyDate(-1), "1969-12-31"}, {KeyDate(20520), "2026-03-08"},
		{KeyTimestamp(0), "1970-01-01T00:00:00.000000Z"}, {KeyTimestamp(-1), "1969-12-31T23:59:59.999999Z"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestKeyPathProperties: KeyPath is injective (ParseKeyPath reads every path
// back, and distinct tuples give distinct paths), and a path is plain ASCII
// without NUL, control characters, backslashes or dots, with exactly one '/'
// per key field, and never leaves the directory it is appended to.
func TestKeyPathProperties(t *testing.T) {
	value := rapid.OneOf(
		rapid.String(),
		rapid.StringOf(rapid.SampledFrom([]rune{'.', '/', '%', '=', '\\', 0, '\n', 'a', '0', '_', '-', 'é', '\u2028'})),
		rapid.SampledFrom([]string{"", ".", "..", "/", "../..", "%2E", "%", "a/../../b"}),
	)
	rapid.Check(t, func(t *rapid.T) {
		fields := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"store_id", "region", "day", "k"}), 1, 4, rapid.ID[string]).Draw(t, "fields")
		p := keyPolicy(fields...)
		a := rapid.SliceOfN(value, len(fields), len(fields)).Draw(t, "a")
		b := rapid.SliceOfN(value, len(fields), len(fields)).Draw(t, "b")
		pa, pb := p.KeyPath(a), p.KeyPath(b)
		if (pa == pb) != slices.Equal(a, b) {
			t.Fatalf("KeyPath(%q) = %q, KeyPath(%q) = %q", a, pa, b, pb)
		}
		back, err := p.ParseKeyPath(pa)
		if err != nil || !slices.Equal(back, a) {
			t.Fatalf("ParseKeyPath(%q) = %q, %v; want %q", pa, back, err, a)
		}
		for i := 0; i < len(pa); i++ {
			if c := pa[i]; c < 0x21 || c > 0x7e || c == '\\' || c == '.' {
				t.Fatalf("path %q has byte %q", pa, c)
			}
		}
		if strings.Count(pa, "/") != len(fields) || !strings.HasSuffix(pa, "/") || strings.HasPrefix(pa, "/") {
			t.Fatalf("path %q does not have one segment per field", pa)
		}
		if joined := path.Join("base", pa); !strings.HasPrefix(joined, "base/") || !filepath.IsLocal(pa) {
			t.Fatalf("path %q escapes: %q", pa, joined)
		}
	})
}

func TestParseKeyPathRejects(t *testing.T) {
	p := keyPolicy("store_id", "day")
	for _, bad := range []string{
		"", "store_id=1/", "store_id=1/day=2", "store_id=1/day=2/x=3/", "day=2/store_id=1/",
		"store_id=a.b/day=2/", "store_id=%2/day=2/", "store_id=%41/day=2/", "store_id=%2e/day=2/", "store_id=1/day=2//",
	} {
		if _, err := p.ParseKeyPath(bad); err == nil {
			t.Errorf("ParseKeyPath(%q) accepted", bad)
		}
	}
	if _, err := keyPolicy().ParseKeyPath("x=1/"); err == nil {
		t.Errorf("ParseKeyPath without a key accepted a path")
	}
}

func TestWindowKeys(t *testing.T) {
	k := NewWindowKeys(2)
	for _, key := range []string{"a", "b", "a", "b"} {
		if err := k.Admit(key); err != nil {
			t.Fatalf("Admit(%q) = %v", key, err)
		}
	}
	if err := k.Admit("c"); !errors.Is(err, ErrKeyOverflow) {
		t.Fatalf("Admit(c) = %v, want ErrKeyOverflow", err)
	}
	if k.Len() != 2 {
		t.Fatalf("Len = %d after a refused key", k.Len())
	}
	if err := k.Admit("a"); err != nil {
		t.Fatalf("a known key is refused when full: %v", err)
	}
}

func TestKeyDefaults(t *testing.T) {
	var p Policy
	if p.KeyLimit() != DefaultMaxKeysPerWindow || p.KeyOverflowMode() != KeyOverflowDLQ || p.Window.SessionLimit() != DefaultMaxOpenSessions {
		t.Errorf("defaults: %d %s %d", p.KeyLimit(), p.KeyOverflowMode(), p.Window.SessionLimit())
	}
	p = Policy{MaxKeysPerWindow: 5, KeyOverflow: KeyOverflowError, Window: WindowSpec{MaxOpenSessions: 7}}
	if p.KeyLimit() != 5 || p.KeyOverflowMode() != KeyOverflowError || p.Window.SessionLimit() != 7 {
		t.Errorf("explicit: %d %s %d", p.KeyLimit(), p.KeyOverflowMode(), p.Window.SessionLimit())
	}
}
