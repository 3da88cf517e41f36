package postgres

import (
	"strconv"
	"strings"

	"github.com/windrow/windrow/adapters/warehouse"
)

// postLoadParams are the named parameters of post-load SQL and the
// PostgreSQL types they are bound as.
var postLoadParams = []struct{ name, cast string }{
	{"window_start", "timestamptz"},
	{"window_end", "timestamptz"},
	{"policy", "text"},
	{"revision", "bigint"},
}

// bindPostLoad rewrites the named parameters of a post-load statement
// ($window_start, $window_end, $policy, $revision) as typed positional
// ones, numbered in the order they first appear, and returns their values.
// Parameters inside string literals, quoted identifiers, comments and
// dollar-quoted strings are left alone, and so is any other $word.
func bindPostLoad(stmt string, b warehouse.Batch) (string, []any) {
	values := map[string]any{
		"window_start": b.WindowStart.UTC(), "window_end": b.WindowEnd.UTC(),
		"policy": b.Policy, "revision": int64(b.Revision),
	}
	num := map[string]int{}
	var args []any
	var out strings.Builder
	for i := 0; i < len(stmt); {
		c := stmt[i]
		switch {
		case c == '\'' || c == '"':
			j := skipQuoted(stmt, i, c)
			out.WriteString(stmt[i:j])
			i = j
		case c == '-' && strings.HasPrefix(stmt[i:], "--"):
			j := strings.IndexByte(stmt[i:], '\n')
			if j < 0 {
				j = len(stmt) - i
			}
			out.WriteString(stmt[i : i+j])
			i += j
		case c == '/' && strings.HasPrefix(stmt[i:], "/*"):
			j := strings.Index(stmt[i+2:], "*/")
			end := len(stmt)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			out.WriteString(stmt[i:end])
			i = end
		case c == '$':
			word := identAt(stmt, i+1)
			if i+1+len(word) < len(stmt) && stmt[i+1+len(word)] == '$' {
				// A dollar quote: $$…$$ or $tag$…$tag$.
				tag := stmt[i : i+2+len(word)]
				end := strings.Index(stmt[i+len(tag):], tag)
				j := len(stmt)
				if end >= 0 {
					j = i + len(tag) + end + len(tag)
				}
				out.WriteString(stmt[i:j])
				i = j
				continue
			}
			cast := ""
			for _, p := range postLoadParams {
				if p.name == word {
					cast = p.cast
				}
			}
			if cast == "" {
				out.WriteByte(c)
				i++
				continue
			}
			n, ok := num[word]
			if !ok {
				args = append(args, values[word])
				n = len(args)
				num[word] = n
			}
			out.WriteString("($" + strconv.Itoa(n) + "::" + cast + ")")
			i += 1 + len(word)
		default:
			out.WriteByte(c)
			i++
		}
	}
	return out.String(), args
}

// skipQuoted returns the index after the quoted text starting at i ('…' or
// "…", a doubled quote escapes it).
func skipQuoted(s string, i int, q byte) int {
	for j := i + 1; j < len(s); j++ {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// identAt is the identifier characters of s from i on.
func identAt(s string, i int) string {
	j := i
	for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
		j++
	}
	return s[i:j]
}
