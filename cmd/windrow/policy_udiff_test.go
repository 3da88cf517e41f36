package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestUnifiedDiffExamples(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"both empty", "", "", ""},
		{"one line changed", "a\nb\nc\n", "a\nB\nc\n",
			"--- old\n+++ new\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"from nothing", "", "a\nb\n",
			"--- old\n+++ new\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"to nothing", "a\n", "",
			"--- old\n+++ new\n@@ -1 +0,0 @@\n-a\n"},
		{"insert in the middle of a long file", "1\n2\n3\n4\n5\n6\n7\n8\n", "1\n2\n3\n4\nx\n5\n6\n7\n8\n",
			"--- old\n+++ new\n@@ -2,6 +2,7 @@\n 2\n 3\n 4\n+x\n 5\n 6\n 7\n"},
		{"delete at the end", "1\n2\n3\n4\n5\n", "1\n2\n3\n4\n",
			"--- old\n+++ new\n@@ -2,4 +2,3 @@\n 2\n 3\n 4\n-5\n"},
		{"no newline at the end", "a\nb", "a\nc",
			"--- old\n+++ new\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"},
		{"newline added at the end", "a\nb", "a\nb\n",
			"--- old\n+++ new\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"},
		{"replacements: deletions first", "a\nb\nc\nd\n", "a\nx\ny\nd\n",
			"--- old\n+++ new\n@@ -1,4 +1,4 @@\n a\n-b\n-c\n+x\n+y\n d\n"},
		{"far apart: two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "x\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ny\n",
			"--- old\n+++ new\n@@ -1,4 +1,4 @@\n-1\n+x\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+y\n"},
		{"six lines apart: one hunk", "1\n2\n3\n4\n5\n6\n7\n8\n", "x\n2\n3\n4\n5\n6\n7\ny\n",
			"--- old\n+++ new\n@@ -1,8 +1,8 @@\n-1\n+x\n 2\n 3\n 4\n 5\n 6\n 7\n-8\n+y\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unifiedDiff("old", "new", []byte(tt.a), []byte(tt.b))
			if got != tt.want {
				t.Fatalf("unifiedDiff:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// applyUnified applies a unified diff made by unifiedDiff to a, checking
// every hunk header count and context line against a.
func applyUnified(a, diff string) (string, error) {
	if diff == "" {
		return a, nil
	}
	al := splitLines([]byte(a))
	lines := splitLines([]byte(diff))
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "--- ") || !strings.HasPrefix(lines[1], "+++ ") {
		return "", fmt.Errorf("no header")
	}
	lines = lines[2:]
	var out []string
	pos := 0 // lines of a copied or consumed
	for len(lines) > 0 {
		var as, ac, bs, bc int
		h := strings.TrimSuffix(lines[0], "\n")
		if _, err := fmt.Sscanf(h, "@@ -%s +%s @@", new(string), new(string)); err != nil {
			return "", fmt.Errorf("bad hunk header %q", h)
		}
		f := strings.Fields(h)
		parse := func(s string) (int, int) {
			start, count, ok := strings.Cut(s[1:], ",")
			st, _ := strconv.Atoi(start)
			if !ok {
				return st, 1
			}
			c, _ := strconv.Atoi(count)
			return st, c
		}
		as, ac = parse(f[1])
		bs, bc = parse(f[2])
		first := as - 1
		if ac == 0 {
			first = as
		}
		if first < pos {
			return "", fmt.Errorf("hunk %q overlaps the previous one", h)
		}
		out = append(out, al[pos:first]...)
		if bs != len(out)+1 && !(bc == 0 && bs == len(out)) {
			return "", fmt.Errorf("hunk %q: new side starts at %d, want %d", h, bs, len(out)+1)
		}
		pos = first
		lines = lines[1:]
		gotA, gotB := 0, 0
		for len(lines) > 0 && !strings.HasPrefix(lines[0], "@@") {
			l := lines[0]
			lines = lines[1:]
			noNL := len(lines) > 0 && lines[0] == "\\ No newline at end of file\n"
			if noNL {
				lines = lines[1:]
			}
			text := l[1:]
			if noNL {
				text = strings.TrimSuffix(text, "\n")
			}
			switch l[0] {
			case ' ', '-':
				if pos >= len(al) || al[pos] != text {
					return "", fmt.Errorf("hunk %q: line %d of a is %q, diff says %q", h, pos+1, al[pos], text)
				}
				pos++
				gotA++
				if l[0] == ' ' {
					out = append(out, text)
					gotB++
				}
			case '+':
				out = append(out, text)
				gotB++
			default:
				return "", fmt.Errorf("bad line %q", l)
			}
		}
		if gotA != ac || gotB != bc {
			return "", fmt.Errorf("hunk %q holds %d,%d lines", h, gotA, gotB)
		}
	}
	out = append(out, al[pos:]...)
	return strings.Join(out, ""), nil
}

// lcs is the length of a longest common subsequence of a and b.
func lcs(a, b []string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := range a {
		for j := range b {
			if a[i] == b[j] {
				cur[j+1] = prev[j] + 1
			} else {
				cur[j+1] = max(prev[j+1], cur[j])
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func TestUnifiedDiffProperties(t *testing.T) {
	line := rapid.SampledFrom([]string{"a\n", "b\n", "c\n", "d\n", "e\n"})
	text := func(t *rapid.T, label string) string {
		ls := rapid.SliceOfN(line, 0, 30).Draw(t, label)
		s := strings.Join(ls, "")
		if s != "" && rapid.Bool().Draw(t, label+" without final newline") {
			s = strings.TrimSuffix(s, "\n")
		}
		return s
	}
	rapid.Check(t, func(t *rapid.T) {
		a, b := text(t, "a"), text(t, "b")
		d := unifiedDiff("a", "b", []byte(a), []byte(b))
		if (d == "") != (a == b) {
			t.Fatalf("diff %q of %q and %q", d, a, b)
		}
		got, err := applyUnified(a, d)
		if err != nil {
			t.Fatalf("applying the diff: %v\n%s", err, d)
		}
		if got != b {
			t.Fatalf("a + diff = %q, want %q\n%s", got, b, d)
		}
		// Shortest: the script keeps a longest common subsequence.
		al, bl := splitLines([]byte(a)), splitLines([]byte(b))
		keep := 0
		for _, o := range diffLines(al, bl) {
			if o.kind == ' ' {
				keep++
			}
		}
		if want := lcs(al, bl); keep != want {
			t.Fatalf("the diff keeps %d lines, a longest common subsequence has %d", keep, want)
		}
	})
}
