package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/messages"
)

// delete removes a policy from the store, keeping its history. Running
// collectors and compactors watch the store and stop the policy's workers,
// so a window that is not LOADED yet would stay as it is: without force,
// such windows refuse the delete.
func (c *policyCmd) delete(ctx context.Context, args []string) error {
	fs := c.flags("delete", "NAME [--force]")
	force := fs.Bool("force", false, "delete even though windows of the policy are not LOADED")
	var conn connFlags
	conn.register(fs)
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return errors.New("delete takes one policy NAME")
	}
	name := rest[0]
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()

	cur, err := s.Policies.Current(ctx, name)
	if errors.Is(err, policystore.ErrNotFound) {
		return notStored(ctx, s, name)
	}
	if err != nil {
		return err
	}
	states, err := s.States.List(ctx, name)
	if err != nil {
		return err
	}
	var pending []*messages.WindowState
	for _, st := range states {
		if st.Status != messages.StatusLoaded {
			pending = append(pending, st)
		}
	}
	slices.SortFunc(pending, func(a, b *messages.WindowState) int { return a.WindowStart.Compare(b.WindowStart) })
	if len(pending) > 0 {
		fmt.Fprintf(c.errOut, "%s has %s:\n", name, notLoaded(len(pending)))
		tw := tabwriter.NewWriter(c.errOut, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  WINDOW\tSTATUS\tSTAGED ROWS\tUPDATED")
		for _, st := range pending {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", st.ID(), st.Status, st.StagedRows, stamp(st.UpdatedAt))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if !*force {
			return fmt.Errorf("refusing to delete %s: it has %s (listed above), and deleting the policy stops its collectors and compactors, which leaves them as they are (not sealed, compacted or marked loaded); "+
				"wait until they are LOADED (`windrow status --policy %s`), or delete anyway with --force", name, notLoaded(len(pending)), name)
		}
	}
	if err := s.Policies.DeleteVersion(ctx, name, cur.Version); err != nil {
		if errors.Is(err, policystore.ErrConflict) {
			return fmt.Errorf("%w; nothing deleted: run delete again to check the new version", err)
		}
		return err
	}
	fmt.Fprintf(c.out, "%s: deleted v%d; the history keeps it: `windrow policy get %s --version %d`\n", name, cur.Version, name, cur.Version)
	fmt.Fprintf(c.out, "%s: running collectors and compactors stop for this policy\n", name)
	if len(pending) > 0 {
		fmt.Fprintf(c.out, "%s: the %s will stay as is until the policy is applied again, which resumes its collectors and compactors\n", name, notLoaded(len(pending)))
	}
	return nil
}

// notLoaded is "1 window that is not LOADED" or "n windows that are not LOADED".
func notLoaded(n int) string {
	if n == 1 {
		return "1 window that is not LOADED"
	}
	return fmt.Sprintf("%d windows that are not LOADED", n)
}
