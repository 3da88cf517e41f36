package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/windows"
)

// list prints every stored policy: name, current version, when it was
// stored, window kind and size, table and source.
func (c *policyCmd) list(ctx context.Context, args []string) error {
	fs := c.flags("list", "")
	var conn connFlags
	conn.register(fs)
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		fs.Usage()
		return fmt.Errorf("list takes no arguments (got %q)", rest)
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	entries, err := s.Policies.Entries(ctx)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		fmt.Fprintln(c.out, "no policies; apply one with `windrow policy apply FILE|DIR`")
		return nil
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tUPDATED\tWINDOW\tTABLE\tSOURCE")
	for _, e := range entries {
		if e.Err != nil {
			fmt.Fprintf(tw, "%s\tv%d\t%s\tINVALID (see windrow policy get %s)\t-\t-\n", e.Name, e.Version, stamp(e.Stored), e.Name)
			continue
		}
		p := e.Policy
		window := string(p.Window.Kind)
		if p.Window.Size > 0 { // kinds without a fixed size show the kind alone
			window += " " + shortDuration(p.Window.Size.D())
		}
		fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%s\t%s: %s\n", e.Name, e.Version, stamp(e.Stored),
			window, p.Load.Table, p.Source.Stream, strings.Join(p.Source.Subjects, ", "))
	}
	return tw.Flush()
}

// stamp formats a stored time in UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// shortDuration writes 24h for 24h0m0s and 1h30m for 1h30m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Formats of `policy get`.
const (
	formatFile = "file" // the file as applied, comments included
	formatYAML = "yaml" // the canonical form: defaults filled in, what diffs compare
	formatJSON = "json" // the parsed policy with its version
)

// get prints one stored version of a policy, or its history.
func (c *policyCmd) get(ctx context.Context, args []string) error {
	fs := c.flags("get", "NAME [--version N] [--history] [--format file|yaml|json]")
	version := fs.Uint64("version", 0, "the version to show (see --history); default the current one")
	history := fs.Bool("history", false, "list the versions the bucket keeps instead")
	format := fs.String("format", formatFile, "file: as applied, comments included; yaml: with defaults filled in, as diff compares it; json: the parsed policy")
	var conn connFlags
	conn.register(fs)
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return errors.New("get takes one policy NAME")
	}
	switch *format {
	case formatFile, formatYAML, formatJSON:
	default:
		return fmt.Errorf("--format %q: want file, yaml or json", *format)
	}
	name := rest[0]
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if *history {
		return c.history(ctx, s, name)
	}

	var e *policystore.Entry
	current := *version == 0
	if current {
		e, err = s.Policies.Current(ctx, name)
		if errors.Is(err, policystore.ErrNotFound) {
			return notStored(ctx, s, name)
		}
	} else {
		e, err = s.Policies.At(ctx, name, *version)
	}
	if err != nil {
		return err
	}
	if e.Deleted {
		return fmt.Errorf("v%d of %s is its deletion (%s); `windrow policy get %s --history` lists its versions", e.Version, name, stamp(e.Stored), name)
	}
	if !current {
		if cur, err := s.Policies.Current(ctx, name); err == nil && cur.Version == e.Version {
			current = true
		}
	}
	note := ""
	if current {
		note = ", current"
	}
	fmt.Fprintf(c.errOut, "# %s v%d, stored %s%s\n", name, e.Version, stamp(e.Stored), note)

	if e.Err != nil && *format != formatFile {
		return fmt.Errorf("%w\n(--format file shows the stored file as written)", e.Err)
	}
	switch *format {
	case formatYAML:
		canon, err := policystore.Canonical(e.Policy)
		if err != nil {
			return err
		}
		_, err = c.out.Write(canon)
		return err
	case formatJSON:
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(e.Policy)
	}
	data := e.Data
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data[:len(data):len(data)], '\n')
	}
	_, err = c.out.Write(data)
	return err
}

// history lists the versions of a policy the bucket keeps.
func (c *policyCmd) history(ctx context.Context, s *stack.Stack, name string) error {
	hist, err := s.Policies.History(ctx, name)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTORED\tCHANGE")
	var prev *windows.Policy
	for i, e := range hist {
		what := ""
		switch {
		case e.Deleted:
			what = "deleted"
			prev = nil
		case e.Err != nil:
			what = "applied (no longer parses)"
			prev = nil
		case prev == nil:
			what = "created"
			prev = e.Policy
		default:
			what = "updated" + lineCounts(prev, e.Policy)
			prev = e.Policy
		}
		if i == len(hist)-1 && !e.Deleted {
			what += " (current)"
		}
		fmt.Fprintf(tw, "v%d\t%s\t%s\n", e.Version, stamp(e.Stored), what)
	}
	return tw.Flush()
}

// lineCounts summarises the canonical diff of two versions as " (+a -d lines)".
func lineCounts(old, cur *windows.Policy) string {
	a, err1 := policystore.Canonical(old)
	b, err2 := policystore.Canonical(cur)
	if err1 != nil || err2 != nil {
		return ""
	}
	added, deleted := 0, 0
	for _, o := range diffLines(splitLines(a), splitLines(b)) {
		switch o.kind {
		case '+':
			added++
		case '-':
			deleted++
		}
	}
	return fmt.Sprintf(" (+%d -%d lines)", added, deleted)
}

// notStored explains a policy that is not stored: deleted (with the
// versions its history keeps), or never applied.
func notStored(ctx context.Context, s *stack.Stack, name string) error {
	hist, err := s.Policies.History(ctx, name)
	if err != nil || len(hist) == 0 {
		return fmt.Errorf("%w: %s (`windrow policy list` shows the stored policies)", policystore.ErrNotFound, name)
	}
	last := hist[len(hist)-1]
	return fmt.Errorf("%w: %s was deleted at v%d (%s); `windrow policy get %s --history` lists the versions kept, `--version N` shows one",
		policystore.ErrNotFound, name, last.Version, stamp(last.Stored), name)
}
