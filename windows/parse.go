package windows

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ParsePolicy parses one policy file: strict YAML (unknown keys are errors), then
// SetDefaults, then Validate. filename only labels errors; nothing is read.
//
// On failure it returns a nil policy and an error matching ErrInvalidPolicy that
// joins one *FieldError per problem, every problem at once, sorted by line, each
// naming the file, the line, the field path and what would be valid:
//
//	policies/sales.yaml:12: window.size: "25x" is not a duration (use e.g. 24h, 15m, 90s)
//
// A value written explicitly in the file is never replaced by a default: an
// explicit "max_out_of_order: 0" stays 0, and an explicit "max_rows: 0" is
// reported as out of range rather than silently becoming 100000.
func ParsePolicy(filename string, data []byte) (*Policy, error) {
	fail := func(line int, field, msg string) error {
		return &FieldError{File: filename, Line: line, Field: field, Msg: msg}
	}

	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(0, "", "the file is empty (a policy needs at least name, source, schema, window and load)")
		}
		line, msg := yamlSyntaxError(err)
		return nil, fail(line, "", "invalid YAML: "+msg)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line, _ = yamlSyntaxError(err)
		}
		return nil, fail(line, "", "a policy file holds exactly one YAML document (found a second one)")
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}

	// Pass 1: walk the node tree against the Policy type. This reports unknown keys,
	// values of the wrong shape and unparsable scalars with their field paths, all
	// at once, and records the line of every field path present in the file.
	st := &walker{lines: map[string]int{}}
	var p Policy
	st.walk("", doc, reflect.ValueOf(&p).Elem())

	if len(st.errs) == 0 {
		// Pass 2: the strict decoder is the authority on the value. The walk has
		// already accepted the document, so this failing is a bug in the walk;
		// it is still reported rather than trusted.
		strict := yaml.NewDecoder(bytes.NewReader(data))
		strict.KnownFields(true)
		var q Policy
		if err := strict.Decode(&q); err != nil {
			line, msg := yamlSyntaxError(err)
			return nil, fail(line, "", msg)
		}
		p = q
	}

	explicit := explicitZeros(&p, st.lines)
	p.SetDefaults()
	for _, restore := range explicit {
		restore()
	}

	bad := make([]string, 0, len(st.errs))
	for _, e := range st.errs {
		bad = append(bad, e.Field)
	}
	all := st.errs
	for _, e := range p.validate() {
		if overlaps(e.Field, bad) {
			continue // already reported as unparsable; the zero value left behind would only repeat it
		}
		e.Line = lineOf(st.lines, e.Field)
		all = append(all, e)
	}
	if len(all) == 0 {
		return &p, nil
	}
	slices.SortStableFunc(all, func(a, b *FieldError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(all))
	for i, e := range all {
		e.File = filename
		errs[i] = e
	}
	return nil, errors.Join(errs...)
}

// explicitZeros returns closures that put back the zero values the file wrote
// explicitly for fields whose default is not zero.
func explicitZeros(p *Policy, lines map[string]int) []func() {
	var out []func()
	dur := func(path string, d *Duration) {
		if _, ok := lines[path]; ok && *d == 0 {
			out = append(out, func() { *d = 0 })
		}
	}
	size := func(path string, b *ByteSize) {
		if _, ok := lines[path]; ok && *b == 0 {
			out = append(out, func() { *b = 0 })
		}
	}
	num := func(path string, n *int) {
		if _, ok := lines[path]; ok && *n == 0 {
			out = append(out, func() { *n = 0 })
		}
	}
	dur("window.max_out_of_order", &p.Window.MaxOutOfOrder)
	dur("window.idle_timeout", &p.Window.IdleTimeout)
	dur("window.future_horizon", &p.Window.FutureHorizon)
	num("segment.max_rows", &p.Segment.MaxRows)
	size("segment.max_bytes", &p.Segment.MaxBytes)
	dur("segment.max_age", &p.Segment.MaxAge)
	size("output.target_file_size", &p.Output.TargetFileSize)
	num("output.row_group_rows", &p.Output.RowGroupSize)
	return out
}

// lineOf returns the line of path, or of its nearest ancestor present in the file.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// overlaps reports whether path equals, contains or lies inside one of paths.
func overlaps(path string, paths []string) bool {
	for _, b := range paths {
		if b == "" {
			return true
		}
		if path == b || isUnder(path, b) || isUnder(b, path) {
			return true
		}
	}
	return false
}

func isUnder(path, ancestor string) bool {
	return strings.HasPrefix(path, ancestor) && len(path) > len(ancestor) &&
		(path[len(ancestor)] == '.' || path[len(ancestor)] == '[')
}

var yamlLineRE = regexp.MustCompile(`line (\d+): `)

// yamlSyntaxError extracts the first line number and a message without the "yaml: " prefix.
func yamlSyntaxError(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.Replace(msg, m[0], "", 1)
	}
	return line, strings.TrimSpace(msg)
}

// walker decodes a yaml.Node tree into a value by reflection, collecting problems
// with field paths instead of stopping at the first.
type walker struct {
	lines map[string]int
	errs  []*FieldError
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	timeType        = reflect.TypeFor[time.Time]() // decoded by yaml from a timestamp scalar
)

func (w *walker) fail(line int, path, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (w *walker) walk(path string, n *yaml.Node, v reflect.Value) {
	for depth := 0; n.Kind == yaml.AliasNode && n.Alias != nil && depth < 100; depth++ {
		n = n.Alias
	}
	if path != "" {
		if _, ok := w.lines[path]; !ok {
			w.lines[path] = n.Line
		}
	}
	if n.ShortTag() == "!!null" {
		return // absent: the zero value, defaulted later
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) || v.Type() == timeType {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			w.fail(n.Line, path, "%s", valueMessage(err, n, v.Type()))
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		w.walkStruct(path, n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n.Line, path, "must be a list, not a %s", kindName(n.Kind))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			w.walk(fmt.Sprintf("%s[%d]", path, i), item, s.Index(i))
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			w.fail(n.Line, path, "must be %s, not a %s", wantedKind(v.Type()), kindName(n.Kind))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			w.fail(n.Line, path, "%s", valueMessage(err, n, v.Type()))
		}
	}
}

func (w *walker) walkStruct(path string, n *yaml.Node, v reflect.Value) {
	t := v.Type()
	keys := yamlKeys(t)
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		names = append(names, k.name)
	}
	if n.Kind != yaml.MappingNode {
		what := "must be"
		if path == "" {
			what = "a policy must be"
		}
		w.fail(n.Line, path, "%s a mapping with keys %s, not a %s", what, strings.Join(names, ", "), kindName(n.Kind))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		child := k.Value
		if path != "" {
			child = path + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			w.fail(k.Line, child, "is set twice (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if _, ok := w.lines[child]; !ok {
			w.lines[child] = k.Line // a missing child is reported at its parent's key
		}
		idx := -1
		for _, f := range keys {
			if f.name == k.Value {
				idx = f.index
				break
			}
		}
		if idx < 0 {
			w.fail(k.Line, child, "unknown field (valid: %s)", strings.Join(names, ", "))
			continue
		}
		w.walk(child, val, v.Field(idx))
	}
}

type yamlKey struct {
	name  string
	index int
}

func yamlKeys(t reflect.Type) []yamlKey {
	var keys []yamlKey
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys = append(keys, yamlKey{name, i})
	}
	return keys
}

// valueMessage turns a decode error for node n into a message naming the value
// and what would be valid.
func valueMessage(err error, n *yaml.Node, t reflect.Type) string {
	var ve *valueError
	if errors.As(err, &ve) {
		return ve.msg
	}
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%q is not %s", n.Value, wantedKind(t))
	}
	return fmt.Sprintf("must be %s, not a %s", wantedKind(t), kindName(n.Kind))
}

func wantedKind(t reflect.Type) string {
	if t == timeType {
		return "an RFC 3339 time such as 2026-11-27T00:00:00Z"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.Kind().String()
}
