package main

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/token"
	"slices"
	"strings"
	"time"

	"github.com/windrow/windrow/windows"
)

// A default is read from the code that applies it, in any function of the
// package (SetDefaults and what it calls, accessors such as KeyLimit):
//
//	if x.F == <zero> [&& conditions] { x.F = RHS }   // an assignment
//	if x.F == <zero> { return Const }                // an accessor
//
// where x resolves to a policy struct (receiver, parameter, x := &p.Window,
// range variable, …). RHS a constant expression gives the value; any other RHS
// (an assignment only) makes the default "see below". A field no such
// statement covers takes the constant Default<Field> (or
// Default<Struct><Field>) if there is one, else has no default.
type finding struct {
	fn    string // function name
	cname string // the constant the value is read from
	val   constant.Value
	tname string
	conds []string // rendered conditions, "" when one could not be rendered
}

const seeBelow = "see below"

func (m *model) defaults() {
	found := map[string][]finding{} // "Owner.Field" → findings
	for _, fd := range m.p.funcs {
		if fd.Body == nil {
			continue
		}
		e := m.newEnv(fd)
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			is, ok := n.(*ast.IfStmt)
			if !ok || is.Init != nil || is.Else != nil || len(is.Body.List) != 1 {
				return true
			}
			if key, f, ok := e.defaultIn(is); ok {
				f.fn = fd.Name.Name
				found[key] = append(found[key], f)
			}
			return true
		})
	}

	for _, r := range m.rows() {
		if r.SameAs != "" {
			r.Default = "see " + "`" + r.SameAs + "`"
			continue
		}
		key := r.Owner + "." + r.GoField
		fs := found[key]
		if len(fs) == 0 {
			if c := m.defaultConst(r.Owner, r.GoField); c != nil {
				m.p.markDefault(c.name)
				r.defValue = renderValue(c.tname, c.val)
				r.defFrom = "name"
				r.defConst = c.name
				r.Default = "`" + r.defValue + "`"
			} else if r.Type == "boolean" {
				r.defValue, r.defFrom = "false", "zero"
				r.Default = "`false`"
			} else {
				r.Default = "—"
			}
			continue
		}
		cells := map[string]bool{}
		var cell string
		for _, f := range fs {
			c := m.findingCell(r, f)
			if !cells[c] {
				cells[c] = true
				cell = c
			}
		}
		if len(cells) > 1 {
			cell = seeBelow
			m.notes = append(m.notes, fmt.Sprintf("%s: defaults disagree (%s): %s", r.Path, funcNames(fs), seeBelow))
		}
		r.Default = cell
		if cell == seeBelow {
			if len(cells) == 1 {
				m.notes = append(m.notes, fmt.Sprintf("%s: default set in %s is not a constant (or has a condition the generator cannot render): %s", r.Path, funcNames(fs), seeBelow))
			}
			continue
		}
		if f := fs[0]; f.val != nil {
			r.defConst = f.cname
			if len(f.conds) == 0 {
				r.defValue = renderValue(f.tname, f.val)
				r.defFrom = f.fn
			}
		}
	}
	for _, name := range m.p.order {
		if strings.HasPrefix(name, "Default") && ast.IsExported(name) && !m.p.usedAsDefault[name] {
			m.notes = append(m.notes, fmt.Sprintf("%s is not matched to a key (listed under Defaults and limits only)", name))
		}
	}
}

func funcNames(fs []finding) string {
	var names []string
	for _, f := range fs {
		if !slices.Contains(names, f.fn) {
			names = append(names, f.fn)
		}
	}
	return strings.Join(names, ", ")
}

// findingCell renders one finding as a Default cell.
func (m *model) findingCell(r *row, f finding) string {
	if f.val == nil {
		return seeBelow
	}
	cell := "`" + renderValue(f.tname, f.val) + "`"
	for _, c := range f.conds {
		if c == "" {
			return seeBelow
		}
	}
	if len(f.conds) > 0 {
		cell += " if " + strings.Join(f.conds, " and ")
	}
	return cell
}

// defaultConst finds Default<Field>, Default<Struct><Field> or
// Default<Struct without "Spec"><Field>.
func (m *model) defaultConst(owner, field string) *constDecl {
	cands := []string{"Default" + field}
	if owner != "Policy" {
		cands = append(cands, "Default"+owner+field, "Default"+strings.TrimSuffix(owner, "Spec")+field)
	}
	for _, n := range cands {
		if c := m.p.consts[n]; c != nil && c.val != nil {
			return c
		}
	}
	return nil
}

// env resolves the variables of one function to policy types.
type env struct {
	m    *model
	vars map[string]ast.Expr // variable → its Go type expression
}

func (m *model) newEnv(fd *ast.FuncDecl) *env {
	e := &env{m: m, vars: map[string]ast.Expr{}}
	bind := func(fl *ast.FieldList) {
		if fl == nil {
			return
		}
		for _, f := range fl.List {
			for _, n := range f.Names {
				e.vars[n.Name] = f.Type
			}
		}
	}
	bind(fd.Recv)
	bind(fd.Type.Params)
	// Locals, in source order (shadowing is not tracked: good enough for
	// the short functions that apply defaults).
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE && len(n.Lhs) == len(n.Rhs) {
				for i, l := range n.Lhs {
					if id, ok := l.(*ast.Ident); ok {
						if t := e.typeOf(n.Rhs[i]); t != nil {
							e.vars[id.Name] = t
						}
					}
				}
			}
		case *ast.RangeStmt:
			if id, ok := n.Value.(*ast.Ident); ok {
				if t := e.typeOf(n.X); t != nil {
					if at, ok := deref(t).(*ast.ArrayType); ok {
						e.vars[id.Name] = at.Elt
					}
				}
			}
		case *ast.ValueSpec:
			if n.Type != nil {
				for _, id := range n.Names {
					e.vars[id.Name] = n.Type
				}
			}
		}
		return true
	})
	return e
}

func deref(t ast.Expr) ast.Expr {
	for {
		s, ok := t.(*ast.StarExpr)
		if !ok {
			return t
		}
		t = s.X
	}
}

// typeOf returns the Go type of an expression built from known variables,
// fields, indexing, & and *; nil when unknown.
func (e *env) typeOf(x ast.Expr) ast.Expr {
	switch x := x.(type) {
	case *ast.Ident:
		return e.vars[x.Name]
	case *ast.ParenExpr:
		return e.typeOf(x.X)
	case *ast.StarExpr:
		if t := e.typeOf(x.X); t != nil {
			if s, ok := t.(*ast.StarExpr); ok {
				return s.X
			}
		}
	case *ast.UnaryExpr:
		if x.Op == token.AND {
			if t := e.typeOf(x.X); t != nil {
				return &ast.StarExpr{X: t}
			}
		}
	case *ast.SelectorExpr:
		if owner, ok := e.structOf(x.X); ok {
			return e.m.p.fieldType(owner, x.Sel.Name)
		}
	case *ast.IndexExpr:
		if t := e.typeOf(x.X); t != nil {
			switch t := deref(t).(type) {
			case *ast.ArrayType:
				return t.Elt
			case *ast.MapType:
				return t.Value
			}
		}
	}
	return nil
}

// structOf returns the package struct type of x (through pointers).
func (e *env) structOf(x ast.Expr) (string, bool) {
	t := e.typeOf(x)
	if t == nil {
		return "", false
	}
	id, ok := deref(t).(*ast.Ident)
	if !ok || e.m.p.structType(id.Name) == nil {
		return "", false
	}
	return id.Name, true
}

// fieldOf resolves x.F to its owner struct and field.
func (e *env) fieldOf(x ast.Expr) (owner, field string, ok bool) {
	sel, isSel := x.(*ast.SelectorExpr)
	if !isSel {
		return "", "", false
	}
	owner, ok = e.structOf(sel.X)
	if !ok || e.m.p.fieldType(owner, sel.Sel.Name) == nil {
		return "", "", false
	}
	return owner, sel.Sel.Name, true
}

func isZero(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.BasicLit:
		return x.Value == "0" || x.Value == `""` || x.Value == "``"
	case *ast.Ident:
		return x.Name == "nil" || x.Name == "false"
	}
	return false
}

func conjuncts(x ast.Expr) []ast.Expr {
	if b, ok := x.(*ast.BinaryExpr); ok && b.Op == token.LAND {
		return append(conjuncts(b.X), conjuncts(b.Y)...)
	}
	if p, ok := x.(*ast.ParenExpr); ok {
		return conjuncts(p.X)
	}
	return []ast.Expr{x}
}

// defaultIn matches `if x.F == zero [&& …] { x.F = RHS }` or `{ return RHS }`.
func (e *env) defaultIn(is *ast.IfStmt) (string, finding, bool) {
	cs := conjuncts(is.Cond)
	for i, c := range cs {
		b, ok := c.(*ast.BinaryExpr)
		if !ok || b.Op != token.EQL || !isZero(b.Y) {
			continue
		}
		owner, field, ok := e.fieldOf(b.X)
		if !ok {
			continue
		}
		var rhs ast.Expr
		assign := false
		switch s := is.Body.List[0].(type) {
		case *ast.AssignStmt:
			if s.Tok != token.ASSIGN || len(s.Lhs) != 1 || len(s.Rhs) != 1 {
				continue
			}
			o2, f2, ok := e.fieldOf(s.Lhs[0])
			if !ok || o2 != owner || f2 != field {
				continue
			}
			rhs, assign = s.Rhs[0], true
		case *ast.ReturnStmt:
			if len(s.Results) != 1 {
				continue
			}
			rhs = s.Results[0]
		default:
			continue
		}
		if !assign {
			// An accessor's return is a default only when it is a named
			// constant: `return 0` or `return ""` usually means "none".
			if id, ok := rhs.(*ast.Ident); !ok || e.m.p.consts[id.Name] == nil {
				continue
			}
		}
		f := finding{}
		if v, t, ok := e.m.p.evalExpr(rhs, 0); ok {
			f.val, f.tname = v, t
			if id, ok := rhs.(*ast.Ident); ok {
				f.cname = id.Name
				e.m.p.markDefault(id.Name)
			}
		}
		for j, other := range cs {
			if j != i {
				f.conds = append(f.conds, e.condText(owner, other))
			}
		}
		return owner + "." + field, f, true
	}
	return "", finding{}, false
}

// condText renders `x.G == Const` as "`g` is `value`" and `x.G != zero` as
// "`g` is set"; "" for anything else.
func (e *env) condText(owner string, c ast.Expr) string {
	b, ok := c.(*ast.BinaryExpr)
	if !ok {
		return ""
	}
	o, f, ok := e.fieldOf(b.X)
	if !ok {
		return ""
	}
	key := e.m.keyName(owner, o, f)
	if key == "" {
		return ""
	}
	switch {
	case b.Op == token.NEQ && isZero(b.Y):
		return "`" + key + "` is set"
	case b.Op == token.EQL:
		if id, ok := b.Y.(*ast.Ident); ok {
			if cd := e.m.p.consts[id.Name]; cd != nil && cd.val != nil {
				return "`" + key + "` is `" + renderValue(cd.tname, cd.val) + "`"
			}
		}
	}
	return ""
}

// keyName names field f of struct o as seen from a row of struct owner: its
// own key when it is a sibling, else its full path.
func (m *model) keyName(owner, o, f string) string {
	rs := m.byField[o+"."+f]
	if len(rs) == 0 {
		return ""
	}
	if o == owner {
		p := rs[0].Path
		return p[strings.LastIndexByte(p, '.')+1:]
	}
	return rs[0].Path
}

func (p *pkg) markDefault(name string) {
	if p.usedAsDefault == nil {
		p.usedAsDefault = map[string]bool{}
	}
	p.usedAsDefault[name] = true
}

// renderValue writes a constant as it would be written in a policy file.
func renderValue(tname string, v constant.Value) string {
	switch v.Kind() {
	case constant.String:
		return constant.StringVal(v)
	case constant.Bool:
		return fmt.Sprint(constant.BoolVal(v))
	case constant.Int, constant.Float:
		n, exact := constant.Int64Val(constant.ToInt(v))
		if !exact {
			return v.ExactString()
		}
		switch tname {
		case "Duration", "time.Duration":
			return formatDuration(time.Duration(n))
		case "ByteSize":
			return windows.ByteSize(n).String()
		}
		return fmt.Sprint(n)
	}
	return v.ExactString()
}

// formatDuration drops the zero minutes and seconds Go adds: 1h, 1m, 90m → 1h30m.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
