package windows

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	_ yaml.Unmarshaler = (*Duration)(nil)
	_ yaml.Marshaler   = Duration(0)
	_ json.Unmarshaler = (*Duration)(nil)
	_ json.Marshaler   = Duration(0)
	_ yaml.Unmarshaler = (*ByteSize)(nil)
	_ yaml.Marshaler   = ByteSize(0)
	_ json.Unmarshaler = (*ByteSize)(nil)
	_ json.Marshaler   = ByteSize(0)
)

// valueError is the error of a scalar that does not parse. Its message names the
// value and what would be valid, but not the field: the caller knows the field.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

// Is makes a valueError match ErrInvalidPolicy.
func (e *valueError) Is(target error) bool { return target == ErrInvalidPolicy }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String renders d as a Go duration string, e.g. "5m0s".
func (d Duration) String() string { return time.Duration(d).String() }

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		hint := "use e.g. 24h, 15m, 90s"
		if strings.HasSuffix(strings.TrimSpace(s), "d") {
			hint = "days are not a unit: use e.g. 24h for a day, 168h for a week"
		}
		return 0, &valueError{fmt.Sprintf("%q is not a duration (%s)", s, hint)}
	}
	return Duration(v), nil
}

// UnmarshalYAML reads a Go duration string such as "24h", "15m" or "1h30m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &valueError{"must be a duration such as 24h, 15m or 90s, not a " + kindName(n.Kind)}
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes d as a Go duration string, e.g. "5m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &valueError{fmt.Sprintf("%s is not a duration string (use e.g. \"24h\", \"15m\", \"90s\")", b)}
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Byte size units. Binary units (KiB) are powers of 1024, decimal units (KB) of 1000.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
	KB  ByteSize = 1e3
	MB  ByteSize = 1e6
	GB  ByteSize = 1e9
	TB  ByteSize = 1e12
)

// byteUnits in the order String prefers them; parsing matches names case-insensitively.
var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB},
}

// String renders b in the unit that divides it exactly with the smallest number,
// binary units winning ties ("64MiB", "128MB", "1KB"), else as a plain number of
// bytes ("1001"). ParseByteSize reads it back.
func (b ByteSize) String() string {
	best, unit := int64(b), ""
	if b > 0 {
		for _, u := range byteUnits {
			if b%u.size == 0 && int64(b/u.size) < best {
				best, unit = int64(b/u.size), u.name
			}
		}
	}
	return strconv.FormatInt(best, 10) + unit
}

// ParseByteSize reads "64MiB", "128MB", "1GiB", "512KiB", "10KB", "100B" or a plain
// number of bytes. Units are case-insensitive; the number is a non-negative integer.
func ParseByteSize(s string) (ByteSize, error) {
	bad := func(why string) error {
		return &valueError{fmt.Sprintf("%q is not a byte size (%suse e.g. 64MiB, 128MB, 1GiB, 512KiB or a number of bytes)", s, why)}
	}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		if strings.HasPrefix(t, "-") {
			return 0, bad("must not be negative; ")
		}
		return 0, bad("")
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, bad("too large; ")
	}
	unit := strings.TrimSpace(t[i:])
	mult := ByteSize(1)
	switch {
	case unit == "" || strings.EqualFold(unit, "B"):
	default:
		found := false
		for _, u := range byteUnits {
			if strings.EqualFold(unit, u.name) {
				mult, found = u.size, true
				break
			}
		}
		if !found {
			if strings.HasPrefix(unit, ".") {
				return 0, bad("whole numbers only; ")
			}
			return 0, bad("")
		}
	}
	if n > math.MaxInt64/int64(mult) {
		return 0, bad("too large; ")
	}
	return ByteSize(n) * mult, nil
}

// UnmarshalYAML reads a byte size such as 64MiB or a plain integer.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &valueError{"must be a byte size such as 64MiB, not a " + kindName(n.Kind)}
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML writes b as in String, e.g. "64MiB".
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// MarshalJSON writes b as an integer number of bytes.
func (b ByteSize) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, int64(b), 10), nil }

// UnmarshalJSON reads an integer number of bytes, or a string as in ParseByteSize.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return &valueError{fmt.Sprintf("%s is not a byte size", data)}
		}
		v, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		*b = v
		return nil
	}
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil || n < 0 {
		return &valueError{fmt.Sprintf("%s is not a byte size (use a non-negative integer number of bytes or a string such as \"64MiB\")", data)}
	}
	*b = ByteSize(n)
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	case yaml.DocumentNode:
		return "document"
	}
	return "node"
}
