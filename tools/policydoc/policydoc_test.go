package main

import (
	"bytes"
	"fmt"
	"go/constant"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/windrow/windrow/windows"
)

func root(t *testing.T) string {
	t.Helper()
	dir, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// The checked-in reference is what the generator writes now: a change to the
// policy types, defaults, constants or examples needs a regeneration.
func TestReferenceIsUpToDate(t *testing.T) {
	r := root(t)
	got, _, err := Generate(filepath.Join(r, sourceDir))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(r, outputFile))
	if err != nil {
		t.Fatalf("%v: run `go run ./tools/policydoc`", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		line := func(ls []string) string {
			if i < len(ls) {
				return ls[i]
			}
			return "(end of file)"
		}
		t.Fatalf("%s is stale: run `go run ./tools/policydoc` (or `task docs`) and commit it.\nfirst difference at line %d:\n  generated: %s\n  file:      %s",
			outputFile, i+1, line(gl), line(wl))
	}
}

func TestExamplesValidate(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.Title, func(t *testing.T) {
			if err := checkExample(ex); err != nil {
				t.Error(err)
			}
		})
	}
}

func loadModel(t *testing.T) *model {
	t.Helper()
	p, err := loadPkg(filepath.Join(root(t), sourceDir))
	if err != nil {
		t.Fatal(err)
	}
	m, err := build(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Every key has an example, and every example is shown in a section.
func TestExamplesCoverEveryKey(t *testing.T) {
	m := loadModel(t)
	keys, err := uncovered(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		t.Errorf("no example writes %s: add one to the examples table in tools/policydoc/examples.go, then run `go run ./tools/policydoc`", strings.Join(keys, ", "))
	}
	if err := checkSections(m); err != nil {
		t.Error(err)
	}
}

// The defaults read from the source are the values the code applies: a
// parsed minimal policy holds them (SetDefaults), and the accessors a
// default was read from (KeyLimit, SessionLimit, …) return them.
func TestDefaultsMatchTheCode(t *testing.T) {
	m := loadModel(t)
	p, err := windows.ParsePolicy("minimal.yaml", []byte(minimalPolicy))
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := examplePaths(minimalPolicy)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range m.rows() {
		if r.defValue == "" || strings.Contains(r.Path, "[]") || explicit[r.Path] {
			continue
		}
		parts := strings.Split(r.Path, ".")
		owner := reflect.ValueOf(p).Elem()
		for _, k := range parts[:len(parts)-1] {
			owner = yamlField(owner, k)
			if !owner.IsValid() {
				t.Fatalf("%s: no key %q in %T", r.Path, k, p)
			}
		}
		v := yamlField(owner, parts[len(parts)-1])
		if !v.IsValid() {
			t.Fatalf("%s: not found in %T", r.Path, p)
		}
		switch r.defFrom {
		case "SetDefaults", "name", "zero":
		default:
			// An accessor of the owner: call it.
			meth := owner.Addr().MethodByName(r.defFrom)
			if !meth.IsValid() || meth.Type().NumIn() != 0 || meth.Type().NumOut() != 1 {
				t.Errorf("%s: default read from %s, which is not a method of %s without arguments", r.Path, r.defFrom, owner.Type())
				continue
			}
			v = meth.Call(nil)[0]
		}
		got := runtimeValue(v)
		if got != r.defValue {
			t.Errorf("%s: the reference says default %q (from %s), the code gives %q", r.Path, r.defValue, r.defFrom, got)
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("only %d defaults checked; the derivation found too few", checked)
	}
}

func yamlField(v reflect.Value, key string) reflect.Value {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

func runtimeValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return renderValue(v.Type().Name(), constant.MakeString(v.String()))
	case reflect.Bool:
		return fmt.Sprint(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return renderValue(v.Type().Name(), constant.MakeInt64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return renderValue(v.Type().Name(), constant.MakeUint64(v.Uint()))
	}
	return fmt.Sprintf("%v", v.Interface())
}

// A field the generator does not know how to render is still listed, with
// its Go type and comment; a default that is not a constant is "see below";
// a new struct nests; a recursive type is not walked twice.
func TestUnknownFieldsAreListed(t *testing.T) {
	dir := t.TempDir()
	src := `package windows

import "time"

// Mode is a mode.
type Mode string

const (
	ModeA Mode = "a" // the first
	ModeB Mode = "b"
)

const DefaultLimit = 5 * time.Second

// Policy is a policy.
type Policy struct {
	Name  string ` + "`yaml:\"name\"`" + `
	// Ch is something YAML cannot read.
	Ch chan int ` + "`yaml:\"ch\"`" + `
	// Labels maps names to values.
	Labels map[string]int ` + "`yaml:\"labels\"`" + `
	Mode   Mode ` + "`yaml:\"mode\"`" + `
	Tree   Node ` + "`yaml:\"tree\"`" + `
	Inline Extra ` + "`yaml:\",inline\"`" + `
	Hidden int ` + "`yaml:\"-\"`" + `
	NoTag  bool
	Limit  time.Duration ` + "`yaml:\"limit\"`" + `
}

// Extra is inlined.
type Extra struct {
	// Flag is inlined at the top.
	Flag bool ` + "`yaml:\"flag\"`" + `
}

// Node nests.
type Node struct {
	Kids []Node ` + "`yaml:\"kids\"`" + `
	// Size of the node.
	Size int ` + "`yaml:\"size\"`" + `
}

func (p *Policy) SetDefaults() {
	if p.Mode == "" {
		p.Mode = ModeB
	}
	if p.Name == "" {
		p.Name = computeName()
	}
	if p.Tree.Size == 0 {
		p.Tree.Size = 3
	}
}

func computeName() string { return "x" }
`
	if err := os.WriteFile(filepath.Join(dir, "policy.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := loadPkg(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := build(p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*row{}
	var order []string
	for _, r := range m.rows() {
		got[r.Path] = r
		order = append(order, r.Path)
	}
	want := []string{"name", "ch", "labels", "mode", "flag", "notag", "limit", "tree.kids", "tree.size"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("rows %v, want %v", order, want)
	}
	check := func(path, typ, def string) {
		t.Helper()
		r := got[path]
		if r == nil {
			t.Errorf("%s: not listed", path)
			return
		}
		if r.Type != typ || r.Default != def {
			t.Errorf("%s: type %q default %q, want %q %q", path, r.Type, r.Default, typ, def)
		}
	}
	check("name", "string", seeBelow)
	check("ch", "Go chan int", "—")
	check("labels", "mapping of string to integer", "—")
	check("mode", "string", "`b`")
	check("limit", "duration", "`5s`")
	check("flag", "boolean", "`false`")
	check("tree.kids", "list of mappings", "see `tree`")
	check("tree.size", "integer", "`3`")
	if r := got["ch"]; r != nil && r.Doc != "Ch is something YAML cannot read." {
		t.Errorf("ch: doc %q", r.Doc)
	}
	if r := got["mode"]; r != nil && (len(r.Values) != 2 || r.Values[0].Value != "a" || r.Values[0].Doc != "the first") {
		t.Errorf("mode: values %+v", r.Values)
	}
	out := string(render(m))
	for _, s := range []string{"| `ch` | Go chan int |", "Ch is something YAML cannot read.", "## `tree`"} {
		if !strings.Contains(out, s) {
			t.Errorf("the rendered reference lacks %q", s)
		}
	}
}
