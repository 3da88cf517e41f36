package main

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// pkg is the parsed source of the windows package: its types, methods,
// functions and constants, read with go/parser and go/doc (no type checker,
// so nothing but the package's own files is read).
type pkg struct {
	fset    *token.FileSet
	files   []*ast.File // sorted by file name, test files left out
	types   map[string]*ast.TypeSpec
	typeDoc map[string]string          // type name → doc comment (go/doc)
	methods map[string]map[string]bool // type name → method names
	funcs   []*ast.FuncDecl            // in file and declaration order
	consts  map[string]*constDecl
	order   []string               // const names in declaration order
	enums   map[string][]enumValue // string type → its typed constants, in declaration order

	usedAsDefault map[string]bool // constants a default was read from
}

// constDecl is one package-level constant and, once evaluated, its value.
type constDecl struct {
	name  string
	typ   ast.Expr // declared type, or nil
	expr  ast.Expr // value expression (inherited from the previous spec when omitted)
	iota  int
	doc   string
	state int // 0 not evaluated, 1 evaluating, 2 done
	val   constant.Value
	tname string // type name of the value: "Duration", "ByteSize", "" for untyped
}

// enumValue is one typed string constant: an allowed value of an enum-like type.
type enumValue struct {
	Name, Value, Doc string
}

// loadPkg parses the non-test Go files of dir.
func loadPkg(dir string) (*pkg, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	p := &pkg{
		fset:    token.NewFileSet(),
		types:   map[string]*ast.TypeSpec{},
		typeDoc: map[string]string{},
		methods: map[string]map[string]bool{},
		consts:  map[string]*constDecl{},
		enums:   map[string][]enumValue{},
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	pkgName := ""
	for _, n := range names {
		f, err := parser.ParseFile(p.fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		if pkgName == "" {
			pkgName = f.Name.Name
		}
		if f.Name.Name != pkgName {
			continue
		}
		p.files = append(p.files, f)
	}
	if len(p.files) == 0 {
		return nil, fmt.Errorf("%s: no Go files", dir)
	}

	// go/doc groups each type with its doc comment (also when the comment is
	// on a parenthesized type block). PreserveAST keeps the AST intact for
	// the walk below.
	dp, err := doc.NewFromFiles(p.fset, p.files, "github.com/windrow/windrow/windows", doc.AllDecls|doc.PreserveAST)
	if err != nil {
		return nil, err
	}
	for _, t := range dp.Types {
		p.typeDoc[t.Name] = t.Doc
	}

	for _, f := range p.files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				p.funcs = append(p.funcs, d)
				if d.Recv != nil && len(d.Recv.List) == 1 {
					if rt := baseTypeName(d.Recv.List[0].Type); rt != "" {
						if p.methods[rt] == nil {
							p.methods[rt] = map[string]bool{}
						}
						p.methods[rt][d.Name.Name] = true
					}
				}
			case *ast.GenDecl:
				switch d.Tok {
				case token.TYPE:
					for _, s := range d.Specs {
						ts := s.(*ast.TypeSpec)
						p.types[ts.Name.Name] = ts
					}
				case token.CONST:
					p.readConsts(d)
				}
			}
		}
	}
	for _, name := range p.order {
		c := p.consts[name]
		p.eval(c)
	}
	// Enum values: constants whose declared type is a package type with
	// underlying type string and whose value is a string.
	for _, name := range p.order {
		c := p.consts[name]
		id, ok := c.typ.(*ast.Ident)
		if !ok || c.val == nil || c.val.Kind() != constant.String || !p.isStringType(id.Name) {
			continue
		}
		p.enums[id.Name] = append(p.enums[id.Name], enumValue{Name: name, Value: constant.StringVal(c.val), Doc: c.doc})
	}
	return p, nil
}

// readConsts records the specs of one const block, with Go's rule that a
// spec without a type and values repeats the previous one (iota counting).
func (p *pkg) readConsts(d *ast.GenDecl) {
	var lastType ast.Expr
	var lastValues []ast.Expr
	for i, s := range d.Specs {
		vs := s.(*ast.ValueSpec)
		if len(vs.Values) > 0 {
			lastType, lastValues = vs.Type, vs.Values
		}
		docText := ""
		switch {
		case vs.Doc != nil:
			docText = vs.Doc.Text()
		case vs.Comment != nil:
			docText = vs.Comment.Text()
		case !d.Lparen.IsValid() && d.Doc != nil:
			docText = d.Doc.Text()
		}
		for j, n := range vs.Names {
			if n.Name == "_" {
				continue
			}
			c := &constDecl{name: n.Name, typ: lastType, iota: i, doc: strings.TrimSpace(docText)}
			if j < len(lastValues) {
				c.expr = lastValues[j]
			}
			p.consts[n.Name] = c
			p.order = append(p.order, n.Name)
		}
	}
}

// baseTypeName is the name of T in T, *T, T[X].
func baseTypeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.StarExpr:
		return baseTypeName(e.X)
	case *ast.IndexExpr:
		return baseTypeName(e.X)
	}
	return ""
}

// isStringType reports whether name is a package type whose underlying type is string.
func (p *pkg) isStringType(name string) bool {
	for range 10 { // follow type T1 T2 chains, a few levels
		ts := p.types[name]
		if ts == nil {
			return false
		}
		id, ok := ts.Type.(*ast.Ident)
		if !ok {
			return false
		}
		if id.Name == "string" {
			return true
		}
		name = id.Name
	}
	return false
}

// structType returns the struct type of a package type name, or nil.
func (p *pkg) structType(name string) *ast.StructType {
	if ts := p.types[name]; ts != nil {
		st, _ := ts.Type.(*ast.StructType)
		return st
	}
	return nil
}

// fieldType returns the type expression of field f of struct type s, or nil.
func (p *pkg) fieldType(s, f string) ast.Expr {
	st := p.structType(s)
	if st == nil {
		return nil
	}
	for _, fl := range st.Fields.List {
		for _, n := range fl.Names {
			if n.Name == f {
				return fl.Type
			}
		}
		if len(fl.Names) == 0 && baseTypeName(fl.Type) == f {
			return fl.Type
		}
	}
	return nil
}

// Durations of the time package, for constants written as Duration(5 * time.Second).
var timeUnits = map[string]int64{
	"Nanosecond":  1,
	"Microsecond": 1e3,
	"Millisecond": 1e6,
	"Second":      1e9,
	"Minute":      60e9,
	"Hour":        3600e9,
}

// eval evaluates a constant once; c.val stays nil when its expression uses
// something this small evaluator does not know.
func (p *pkg) eval(c *constDecl) {
	switch c.state {
	case 1, 2:
		return
	}
	c.state = 1
	if c.expr != nil {
		if v, t, ok := p.evalExpr(c.expr, c.iota); ok {
			c.val, c.tname = v, t
			if id, ok := c.typ.(*ast.Ident); ok {
				c.tname = id.Name
			}
		}
	}
	c.state = 2
}

func (p *pkg) evalExpr(e ast.Expr, iota int) (constant.Value, string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		v := constant.MakeFromLiteral(e.Value, e.Kind, 0)
		return v, "", v.Kind() != constant.Unknown
	case *ast.ParenExpr:
		return p.evalExpr(e.X, iota)
	case *ast.Ident:
		switch e.Name {
		case "iota":
			return constant.MakeInt64(int64(iota)), "", true
		case "true", "false":
			return constant.MakeBool(e.Name == "true"), "", true
		}
		c := p.consts[e.Name]
		if c == nil {
			return nil, "", false
		}
		p.eval(c)
		return c.val, c.tname, c.val != nil
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "time" {
			if n, ok := timeUnits[e.Sel.Name]; ok {
				return constant.MakeInt64(n), "time.Duration", true
			}
		}
	case *ast.UnaryExpr:
		x, t, ok := p.evalExpr(e.X, iota)
		if !ok {
			return nil, "", false
		}
		return constant.UnaryOp(e.Op, x, 0), t, true
	case *ast.BinaryExpr:
		x, tx, ok1 := p.evalExpr(e.X, iota)
		y, ty, ok2 := p.evalExpr(e.Y, iota)
		if !ok1 || !ok2 {
			return nil, "", false
		}
		t := tx
		if t == "" {
			t = ty
		}
		switch e.Op {
		case token.SHL, token.SHR:
			s, ok := constant.Uint64Val(constant.ToInt(y))
			if !ok {
				return nil, "", false
			}
			return constant.Shift(constant.ToInt(x), e.Op, uint(s)), tx, true
		case token.EQL, token.NEQ, token.LSS, token.LEQ, token.GTR, token.GEQ:
			return constant.MakeBool(constant.Compare(x, e.Op, y)), "", true
		case token.QUO:
			if x.Kind() == constant.Int && y.Kind() == constant.Int {
				if constant.Sign(y) == 0 {
					return nil, "", false
				}
				return constant.BinaryOp(x, token.QUO_ASSIGN, y), t, true
			}
		}
		v := constant.BinaryOp(x, e.Op, y)
		return v, t, v.Kind() != constant.Unknown
	case *ast.CallExpr:
		// A conversion T(x) to a package type or a basic type.
		id, ok := e.Fun.(*ast.Ident)
		if !ok || len(e.Args) != 1 {
			return nil, "", false
		}
		if _, known := p.types[id.Name]; !known && !basicTypes[id.Name] {
			return nil, "", false
		}
		x, _, ok := p.evalExpr(e.Args[0], iota)
		if !ok {
			return nil, "", false
		}
		if x.Kind() == constant.Float {
			if i := constant.ToInt(x); i.Kind() == constant.Int {
				x = i
			}
		}
		return x, id.Name, true
	}
	return nil, "", false
}

var basicTypes = map[string]bool{
	"string": true, "bool": true, "int": true, "int8": true, "int16": true, "int32": true, "int64": true,
	"uint": true, "uint8": true, "uint16": true, "uint32": true, "uint64": true, "float32": true, "float64": true,
	"byte": true, "rune": true,
}
