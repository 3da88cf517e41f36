package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/policystore"
)

// apply validates every file first and stores nothing if any is invalid;
// then, policy by policy, it prints the diff against the stored version and
// stores the changed ones with compare-and-set on the version the diff was
// made against.
func (c *policyCmd) apply(ctx context.Context, args []string) error {
	fs := c.flags("apply", "[-r] [--dry-run] FILE|DIR...")
	recursive := fs.Bool("r", false, "read directories recursively")
	dryRun := fs.Bool("dry-run", false, "show the diffs, store nothing")
	var conn connFlags
	conn.register(fs)
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	files, err := policyPaths(paths, *recursive)
	if err != nil {
		return err
	}
	valid, errs := loadPolicyFiles(files)
	if len(errs) > 0 {
		c.printErrors(errs)
		return fmt.Errorf("%d of %d policy files are invalid; nothing applied", len(errs), len(files))
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()

	failed := 0
	for _, f := range valid {
		name := f.policy.Name
		plan, err := s.Policies.Plan(ctx, f.policy, f.data)
		if err != nil {
			fmt.Fprintf(c.errOut, "%s: %v\n", name, policystore.InFile(err, f.path))
			failed++
			continue
		}
		fmt.Fprint(c.out, planDiff(plan, f.path))
		if plan.Switch != nil {
			fmt.Fprintf(c.out, "%s: %s\n", name, plan.Switch)
		}
		if *dryRun {
			fmt.Fprintf(c.out, "%s: %s\n", name, dryRunStatus(plan))
			continue
		}
		if err := natsx.CheckSourceStream(ctx, s.JS, f.policy.Source.Stream); err != nil {
			fmt.Fprintf(c.errOut, "%s: not applied: %v\n", name, err)
			failed++
			continue
		}
		if c.beforeStore != nil {
			c.beforeStore(ctx, s, name)
		}
		p, err := s.Policies.Commit(ctx, plan)
		if errors.Is(err, policystore.ErrConflict) {
			fmt.Fprintf(c.errOut, "%s: not applied: %v; nothing was overwritten: run apply again to see the diff against the new version\n", name, err)
			failed++
			continue
		}
		if err != nil {
			fmt.Fprintf(c.errOut, "%s: not applied: %v\n", name, err)
			failed++
			continue
		}
		switch {
		case !plan.Changed:
			fmt.Fprintf(c.out, "%s: unchanged (v%d)\n", name, p.Version)
		case plan.Current == nil:
			fmt.Fprintf(c.out, "%s: created v%d\n", name, p.Version)
		default:
			fmt.Fprintf(c.out, "%s: updated v%d → v%d\n", name, plan.Current.Version, p.Version)
		}
		// Producers can publish once the source stream holds the subjects.
		stream, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects, s.NATSOptions()...)
		if err != nil {
			fmt.Fprintf(c.errOut, "%s: stored, but its source stream is not ready: %v\n", name, err)
			failed++
			continue
		}
		for _, w := range natsx.SourceStreamWarnings(stream.CachedInfo().Config) {
			fmt.Fprintf(c.errOut, "%s: WARNING: %s\n", name, w)
		}
		if w := natsx.RetainWarning(stream.CachedInfo().Config, p.Window.RetainFor().D()); w != "" {
			fmt.Fprintf(c.errOut, "%s: WARNING: %s\n", name, w)
		}
		if w := natsx.ReplicaWarning(stream.CachedInfo().Config, s.NATSReplicas()); w != "" {
			fmt.Fprintf(c.errOut, "%s: WARNING: %s\n", name, w)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d policies failed (see above)", failed, len(valid))
	}
	return nil
}

func dryRunStatus(plan *policystore.Plan) string {
	switch {
	case !plan.Changed:
		return fmt.Sprintf("unchanged (v%d)", plan.Current.Version)
	case plan.Current == nil:
		return "would be created (dry run)"
	}
	return fmt.Sprintf("would be updated from v%d (dry run)", plan.Current.Version)
}

// planDiff is the unified diff of a plan's canonical forms, "" when unchanged.
func planDiff(plan *policystore.Plan, path string) string {
	if !plan.Changed {
		return ""
	}
	old := fmt.Sprintf("stored %s (none)", plan.Policy.Name)
	if cur := plan.Current; cur != nil {
		old = fmt.Sprintf("stored %s v%d", cur.Name, cur.Version)
		if cur.Err != nil {
			old += " (as written: it no longer parses)"
		}
	}
	return unifiedDiff(old, path, plan.Old, plan.New)
}

// diff prints the diffs apply would show. Like diff(1), it exits with 0 when
// no policy differs from its stored version, 1 when one does, and 2 on
// trouble (an invalid file, no connection).
func (c *policyCmd) diff(ctx context.Context, args []string) error {
	fs := c.flags("diff", "[-r] FILE|DIR...")
	recursive := fs.Bool("r", false, "read directories recursively")
	var conn connFlags
	conn.register(fs)
	paths, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return &exitStatus{2, err}
	}
	files, err := policyPaths(paths, *recursive)
	if err != nil {
		return &exitStatus{2, err}
	}
	valid, errs := loadPolicyFiles(files)
	c.printErrors(errs)
	trouble := len(errs)
	differ := 0
	if len(valid) > 0 {
		s, err := conn.connect(ctx)
		if err != nil {
			return &exitStatus{2, err}
		}
		defer s.Close()
		for _, f := range valid {
			plan, err := s.Policies.Plan(ctx, f.policy, f.data)
			if err != nil {
				fmt.Fprintf(c.errOut, "%s: %v\n", f.policy.Name, policystore.InFile(err, f.path))
				trouble++
				continue
			}
			if plan.Changed {
				differ++
				fmt.Fprint(c.out, planDiff(plan, f.path))
				if plan.Switch != nil {
					fmt.Fprintf(c.out, "%s: %s\n", f.policy.Name, plan.Switch)
				}
			}
		}
	}
	if trouble > 0 {
		return &exitStatus{2, fmt.Errorf("%d of %d policy files could not be compared (see above)", trouble, len(files))}
	}
	if differ > 0 {
		fmt.Fprintf(c.errOut, "%d of %d policies differ from the stored versions\n", differ, len(valid))
		return &exitStatus{1, nil}
	}
	return nil
}
