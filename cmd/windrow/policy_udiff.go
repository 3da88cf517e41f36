package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// diffContext is the number of unchanged lines around each change in a hunk.
const diffContext = 3

// unifiedDiff returns the unified diff (as `diff -u`, 3 lines of context) that
// turns a into b, with aName and bName in the header; "" when they are equal.
// It compares lines with Myers' algorithm, so the diff is a shortest one.
// It is meant for policy-sized inputs: time and memory grow with the number
// of lines times the number of differing lines.
func unifiedDiff(aName, bName string, a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	al, bl := splitLines(a), splitLines(b)
	ops := diffLines(al, bl)
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	for _, h := range hunks(ops) {
		var aCount, bCount int
		for _, o := range ops[h[0]:h[1]] {
			if o.kind != '+' {
				aCount++
			}
			if o.kind != '-' {
				bCount++
			}
		}
		first := ops[h[0]]
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(first.a, aCount), hunkRange(first.b, bCount))
		for _, o := range ops[h[0]:h[1]] {
			line := ""
			switch o.kind {
			case '+':
				line = bl[o.b]
			default:
				line = al[o.a]
			}
			out.WriteByte(o.kind)
			out.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				out.WriteString("\n\\ No newline at end of file\n")
			}
		}
	}
	return out.String()
}

// hunkRange is one side of a hunk header: "start,count", where start is the
// 1-based first line, or the line before the hunk when count is 0, and
// ",count" is left out when it is 1.
func hunkRange(before, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", before)
	case 1:
		return fmt.Sprintf("%d", before+1)
	}
	return fmt.Sprintf("%d,%d", before+1, count)
}

// splitLines splits s after every "\n"; the last line lacks it when s does.
func splitLines(s []byte) []string {
	var out []string
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, string(s))
			break
		}
		out = append(out, string(s[:i+1]))
		s = s[i+1:]
	}
	return out
}

// diffOp is one line of an edit script: kind ' ' keeps a[a] (= b[b]), '-'
// deletes a[a], '+' inserts b[b]. a and b are also the number of lines of
// each side before the op, so that a hunk knows where it starts.
type diffOp struct {
	kind byte
	a, b int
}

// diffLines returns a shortest edit script from a to b; within each run of
// changes the deletions come before the insertions.
func diffLines(a, b []string) []diffOp {
	// The common prefix and suffix need no search.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []diffOp
	for i := range pre {
		ops = append(ops, diffOp{' ', i, i})
	}
	for _, o := range myers(a[pre:len(a)-suf], b[pre:len(b)-suf]) {
		o.a += pre
		o.b += pre
		ops = append(ops, o)
	}
	for i := suf; i > 0; i-- {
		ops = append(ops, diffOp{' ', len(a) - i, len(b) - i})
	}
	// Deletions first within a run of changes, as diff prints them.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		j := i
		for j < len(ops) && ops[j].kind != ' ' {
			j++
		}
		run := ops[i:j]
		// Where the run starts on each side: the first op's counts of the
		// lines before it.
		na, nb := run[0].a, run[0].b
		slices.SortStableFunc(run, func(x, y diffOp) int { return int(y.kind) - int(x.kind) }) // '-' (45) before '+' (43)
		for k := range run {
			run[k].a, run[k].b = na, nb
			if run[k].kind == '-' {
				na++
			} else {
				nb++
			}
		}
		i = j
	}
	return ops
}

// myers is Myers' O((N+M)·D) greedy shortest edit script ("An O(ND)
// Difference Algorithm and Its Variations", 1986), keeping the frontier of
// every step to walk the path back.
func myers(a, b []string) []diffOp {
	n, m := len(a), len(b)
	if n == 0 && m == 0 {
		return nil
	}
	maxD := n + m
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int
	var d int
search:
	for d = 0; d <= maxD; d++ {
		trace = append(trace, slices.Clone(v[off-d-1:off+d+2]))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1] // down: insert b[y]
			} else {
				x = v[off+k-1] + 1 // right: delete a[x-1]
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				break search
			}
		}
	}
	// Walk back from (n, m) through the frontier each step started from.
	var ops []diffOp
	x, y := n, m
	for ; d > 0; d-- {
		prev := trace[d] // v[-d-1 .. d+1] before step d
		at := func(k int) int { return prev[k+d+1] }
		k := x - y
		pk := k - 1
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			pk = k + 1
		}
		px := at(pk)   // the step started at (px, px-pk)
		if pk == k+1 { // down: insert b[px-pk], then the snake
			for x > px {
				ops = append(ops, diffOp{' ', x - 1, y - 1})
				x--
				y--
			}
			ops = append(ops, diffOp{'+', x, y - 1})
			y--
		} else { // right: delete a[px], then the snake
			for x > px+1 {
				ops = append(ops, diffOp{' ', x - 1, y - 1})
				x--
				y--
			}
			ops = append(ops, diffOp{'-', x - 1, y})
			x--
		}
	}
	for x > 0 && y > 0 {
		ops = append(ops, diffOp{' ', x - 1, y - 1})
		x--
		y--
	}
	slices.Reverse(ops)
	return ops
}

// hunks groups the changes of ops into [start, end) ranges of ops with up to
// diffContext unchanged lines around them; changes separated by at most
// 2·diffContext unchanged lines share a hunk.
func hunks(ops []diffOp) [][2]int {
	var out [][2]int
	for i := 0; i < len(ops); i++ {
		if ops[i].kind == ' ' {
			continue
		}
		start := max(0, i-diffContext)
		last := i
		for j := i + 1; j < len(ops) && j <= last+2*diffContext+1; j++ {
			if ops[j].kind != ' ' {
				last = j
			}
		}
		end := min(len(ops), last+diffContext+1)
		out = append(out, [2]int{start, end})
		i = last
	}
	return out
}
