package main

import (
	"fmt"
	"go/ast"
	"go/types"
	"reflect"
	"strconv"
	"strings"
	"unicode"
)

// section is one top-level part of a policy: "" for the top-level keys that
// are not mappings, else the key of a mapping (source, schema, …).
type section struct {
	Key    string
	GoType string // struct type of the mapping, "" for the top level
	Doc    string
	Rows   []*row
}

// row is one YAML key.
type row struct {
	Path     string // full dotted path: window.size, schema.fields[].type
	Owner    string // Go struct type holding the field
	GoField  string
	Type     string // the YAML type: string, duration, list of strings, mapping, …
	Enum     string // the Go string type whose constants are the allowed values
	Values   []enumValue
	Doc      string // doc comment (raw text)
	SameAs   string // a recursive key: it takes the same keys as this path
	Default  string // the Default cell (Markdown)
	defValue string // the default value when derived unconditionally from a constant
	defFrom  string // where defValue comes from: "SetDefaults", "KeyLimit", "name", …
	defConst string // the constant the default is read from
}

// typeDesc is what a Go type looks like in YAML.
type typeDesc struct {
	Text   string // YAML type
	Enum   string // string type with constants
	Struct string // struct type whose keys nest below
	Suffix string // path suffix before the nested keys: "" for a mapping, "[]" for a list
}

// model is everything the reference is rendered from.
type model struct {
	p        *pkg
	sections []*section
	byField  map[string][]*row // "Owner.GoField" → rows
	paths    map[string]string // struct type → the first path whose keys it holds
	custom   []string          // package types with their own YAML format, in order of use
	notes    []string          // what could not be derived (printed by the generator)
}

// build walks Policy and its nested struct types in field order.
func build(p *pkg) (*model, error) {
	if p.structType("Policy") == nil {
		return nil, fmt.Errorf("no struct type Policy in the windows package")
	}
	m := &model{p: p, byField: map[string][]*row{}, paths: map[string]string{"Policy": ""}}
	top := &section{Key: ""}
	m.sections = append(m.sections, top)
	m.walk("Policy", "", top, []string{"Policy"}, true)
	if len(top.Rows) == 0 {
		m.sections = m.sections[1:]
	}
	m.defaults()
	return m, nil
}

// yamlKey returns the YAML key of a struct field, as go.yaml.in/yaml/v3
// reads it, and whether it is inlined. skip is true for fields YAML ignores.
func yamlKey(name string, tag *ast.BasicLit) (key string, inline, skip bool) {
	if !ast.IsExported(name) {
		return "", false, true
	}
	var t string
	if tag != nil {
		if s, err := strconv.Unquote(tag.Value); err == nil {
			t = reflect.StructTag(s).Get("yaml")
		}
	}
	key, opts, _ := strings.Cut(t, ",")
	if key == "-" && opts == "" {
		return "", false, true
	}
	for _, o := range strings.Split(opts, ",") {
		if o == "inline" {
			inline = true
		}
	}
	if key == "" {
		key = strings.ToLower(name)
	}
	return key, inline, false
}

func (m *model) walk(owner, prefix string, sec *section, stack []string, top bool) {
	st := m.p.structType(owner)
	for _, fl := range st.Fields.List {
		names := make([]string, 0, len(fl.Names))
		for _, n := range fl.Names {
			names = append(names, n.Name)
		}
		if len(fl.Names) == 0 {
			names = append(names, baseTypeName(fl.Type))
		}
		for _, goName := range names {
			key, inline, skip := yamlKey(goName, fl.Tag)
			if skip {
				continue
			}
			d := m.describe(fl.Type)
			if inline && d.Struct != "" && d.Suffix == "" && !contains(stack, d.Struct) {
				m.walk(d.Struct, prefix, sec, append(stack, d.Struct), top)
				continue
			}
			path := prefix + key
			doc := commentText(fl.Doc, fl.Comment)
			if top && d.Struct != "" && d.Suffix == "" {
				// A mapping at the top level is a section of its own.
				s := &section{Key: key, GoType: d.Struct, Doc: doc}
				if s.Doc == "" {
					s.Doc = m.p.typeDoc[d.Struct]
				}
				m.sections = append(m.sections, s)
				m.paths[d.Struct] = path
				m.walk(d.Struct, path+".", s, append(stack, d.Struct), false)
				continue
			}
			r := &row{Path: path, Owner: owner, GoField: goName, Type: d.Text, Enum: d.Enum, Doc: doc}
			if d.Enum != "" {
				r.Values = m.p.enums[d.Enum]
			}
			if r.Doc == "" {
				// No comment on the field: the doc of its own type says what it is.
				switch {
				case d.Struct != "":
					r.Doc = m.p.typeDoc[d.Struct]
				case d.Enum != "":
					r.Doc = m.p.typeDoc[d.Enum]
				}
			}
			sec.Rows = append(sec.Rows, r)
			m.byField[owner+"."+goName] = append(m.byField[owner+"."+goName], r)
			if d.Struct == "" {
				continue
			}
			if first, seen := m.paths[d.Struct]; seen && contains(stack, d.Struct) {
				r.SameAs = first
				continue
			}
			m.paths[d.Struct] = path + d.Suffix
			m.walk(d.Struct, path+d.Suffix+".", sec, append(stack, d.Struct), false)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// commentText joins a field's doc comment and its line comment.
func commentText(groups ...*ast.CommentGroup) string {
	var parts []string
	for _, g := range groups {
		if g != nil {
			if t := strings.TrimSpace(g.Text()); t != "" {
				parts = append(parts, t)
			}
		}
	}
	return strings.Join(parts, "\n\n")
}

// describe renders a Go type as its YAML type. A type it does not know is
// shown as its Go spelling, so a new field is always listed.
func (m *model) describe(t ast.Expr) typeDesc {
	switch t := t.(type) {
	case *ast.StarExpr:
		return m.describe(t.X)
	case *ast.ParenExpr:
		return m.describe(t.X)
	case *ast.ArrayType:
		if id, ok := t.Elt.(*ast.Ident); ok && id.Name == "byte" {
			return typeDesc{Text: "string (bytes)"}
		}
		e := m.describe(t.Elt)
		e.Text = "list of " + plural(e.Text)
		e.Suffix = "[]" + e.Suffix
		return e
	case *ast.MapType:
		k := m.describe(t.Key)
		v := m.describe(t.Value)
		v.Text = "mapping of " + k.Text + " to " + v.Text
		v.Suffix = ".<" + k.Text + ">" + v.Suffix
		return v
	case *ast.InterfaceType:
		return typeDesc{Text: "any"}
	case *ast.SelectorExpr:
		if x, ok := t.X.(*ast.Ident); ok && x.Name == "time" {
			switch t.Sel.Name {
			case "Duration":
				return typeDesc{Text: "duration"}
			case "Time":
				return typeDesc{Text: "timestamp (RFC 3339)"}
			}
		}
		return typeDesc{Text: "Go " + types.ExprString(t)}
	case *ast.Ident:
		switch t.Name {
		case "string":
			return typeDesc{Text: "string"}
		case "bool":
			return typeDesc{Text: "boolean"}
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "byte", "rune", "uintptr":
			return typeDesc{Text: "integer"}
		case "float32", "float64":
			return typeDesc{Text: "number"}
		case "any":
			return typeDesc{Text: "any"}
		}
		ts := m.p.types[t.Name]
		if ts == nil {
			return typeDesc{Text: "Go " + t.Name}
		}
		custom := m.p.methods[t.Name]["UnmarshalYAML"]
		if st, ok := ts.Type.(*ast.StructType); ok {
			if custom {
				// A wrapper with its own reader around one struct, such as
				// Items{Of *Field}: in YAML it is that struct.
				if inner := m.wrapped(st); inner != "" {
					return typeDesc{Text: "mapping", Struct: inner}
				}
				m.useCustom(t.Name)
				return typeDesc{Text: humanize(t.Name)}
			}
			return typeDesc{Text: "mapping", Struct: t.Name}
		}
		if custom {
			m.useCustom(t.Name)
			return typeDesc{Text: humanize(t.Name)}
		}
		d := m.describe(ts.Type)
		if len(m.p.enums[t.Name]) > 0 {
			d.Enum = t.Name
		}
		return d
	}
	return typeDesc{Text: "Go " + types.ExprString(t)}
}

// wrapped returns S for a struct of exactly one field of type S or *S.
func (m *model) wrapped(st *ast.StructType) string {
	if len(st.Fields.List) != 1 || len(st.Fields.List[0].Names) > 1 {
		return ""
	}
	name := baseTypeName(st.Fields.List[0].Type)
	if m.p.structType(name) != nil {
		return name
	}
	return ""
}

func (m *model) useCustom(name string) {
	if !contains(m.custom, name) {
		m.custom = append(m.custom, name)
	}
}

// humanize turns a Go type name into words: ByteSize → "byte size".
func humanize(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func plural(s string) string {
	switch {
	case strings.HasPrefix(s, "list of "), strings.HasPrefix(s, "mapping of "), strings.HasPrefix(s, "Go "):
		return s
	case strings.HasSuffix(s, ")"):
		return s
	}
	return s + "s"
}

// rows returns every row, in document order.
func (m *model) rows() []*row {
	var out []*row
	for _, s := range m.sections {
		out = append(out, s.Rows...)
	}
	return out
}
