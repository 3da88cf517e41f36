package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/ops/replay"
)

func runReplay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	conn.registerObjects(fs)
	policy := fs.String("policy", "", "the policy whose windows to replay (required)")
	fromS := fs.String("from", "", "first window start to replay: RFC 3339 time or a date (YYYY-MM-DD, in the policy's time zone) (required)")
	toS := fs.String("to", "", "replay windows that start before this time or date (required)")
	dry := fs.Bool("dry-run", false, "only show which windows would be replayed")
	wait := fs.Duration("wait", 10*time.Minute, "wait this long for the replayed windows to be loaded again; 0: do not wait")
	fromStream := fs.Bool("from-stream", false, "rebuild the windows from the source stream's retained events with the policy as it is now (load mode replace), instead of loading their batch files again")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *policy == "" || *fromS == "" || *toS == "" {
		return errors.New("replay: --policy, --from and --to are required (e.g. windrow replay --policy daily_store_sales --from 2026-11-21 --to 2026-11-23)")
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	p, err := s.Policies.Get(ctx, *policy)
	if err != nil {
		return err
	}
	from, err := parseWhen(*fromS, p.Location())
	if err != nil {
		return fmt.Errorf("replay: --from: %w", err)
	}
	to, err := parseWhen(*toS, p.Location())
	if err != nil {
		return fmt.Errorf("replay: --to: %w", err)
	}
	if *fromStream {
		return rebuildFromStream(ctx, s.States, replay.Config{JS: s.JS, States: s.States, Store: s.Store, Policy: p}, from, to, *dry, *wait)
	}
	ws, err := replay.Start(ctx, replay.Config{JS: s.JS, States: s.States, Store: s.Store, Policy: p}, from, to, *dry)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WINDOW\tWAS\tBATCHES\tROWS\tREPLAY\t")
	replayed := 0
	for _, w := range ws {
		what := fmt.Sprintf("#%d", w.Replay)
		if w.Skipped != "" {
			what = "skipped: " + w.Skipped
		} else {
			replayed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t\n", w.ID, w.Status, w.Batches, w.Rows, what)
	}
	tw.Flush()
	if err != nil {
		return err
	}
	switch {
	case len(ws) == 0:
		fmt.Printf("no windows of %s start in [%s, %s)\n", p.Name, from.Format(time.RFC3339), to.Format(time.RFC3339))
		return nil
	case *dry:
		fmt.Printf("dry run: %d of %d windows would be replayed\n", replayed, len(ws))
		return nil
	case replayed == 0 || *wait == 0:
		fmt.Printf("%d windows replaying; `windrow status --policy %s` shows their progress\n", replayed, p.Name)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	last := -1
	err = replay.Wait(wctx, s.States, p.Name, ws, func(loaded, total int) {
		if loaded != last {
			fmt.Printf("loaded again: %d of %d windows\n", loaded, total)
			last = loaded
		}
	})
	if err != nil {
		return fmt.Errorf("replay: %w (a loader must be running: windrow up or windrow loader)", err)
	}
	fmt.Printf("replayed %d windows of %s; `windrow reconcile --policy %s` checks them\n", replayed, p.Name, p.Name)
	return nil
}

// rebuildFromStream is `windrow replay --from-stream`.
func rebuildFromStream(ctx context.Context, states *statestore.Store, cfg replay.Config, from, to time.Time, dry bool, wait time.Duration) error {
	p := cfg.Policy
	lastPct := -1
	rep, err := replay.FromStream(ctx, cfg, from, to, dry, func(read, last uint64) {
		if pct := int(100 * read / max(last, 1)); pct/10 != lastPct/10 {
			fmt.Printf("reading %s: %d of %d events (%d%%)\n", p.Source.Stream, read, last, pct)
			lastPct = pct
		}
	})
	if rep != nil {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WINDOW\tWAS\tREVISION\tEVENTS STAGED\t")
		for _, w := range rep.Windows {
			what := fmt.Sprintf("%d", w.Rows)
			if w.Skipped != "" {
				what = "skipped: " + w.Skipped
			} else if dry {
				what = "would be rebuilt"
			}
			fmt.Fprintf(tw, "%s\t%s\tr%d\t%s\t\n", w.ID, w.Status, w.Revision, what)
		}
		tw.Flush()
		if !dry {
			fmt.Printf("read %d events; staged %d; %d the policy does not accept (not staged)\n", rep.Read, rep.Staged, rep.Malformed)
			if rep.Recovered > 0 {
				fmt.Printf("%d late dead letters or markers of these windows recorded as recovered (their events are in the rebuild)\n", rep.Recovered)
			}
		}
	}
	if err != nil || dry || rep == nil || wait == 0 {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last := -1
	err = replay.WaitRebuilt(wctx, states, p.Name, rep.Windows, func(loaded, total int) {
		if loaded != last {
			fmt.Printf("rebuilt and loaded: %d of %d windows\n", loaded, total)
			last = loaded
		}
	})
	if err != nil {
		return fmt.Errorf("replay --from-stream: %w (a compactor and a loader must be running: windrow up)", err)
	}
	fmt.Printf("rebuilt the windows of %s from %s; `windrow reconcile --policy %s` checks them\n", p.Name, p.Source.Stream, p.Name)
	return nil
}

// parseWhen reads an RFC 3339 time or a date in loc.
func parseWhen(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-21T00:00:00Z) nor a date (2026-11-21)", s)
}
