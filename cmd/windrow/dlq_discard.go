package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/windrow/windrow/ops/dlq"
)

// dlqDiscard is `windrow dlq discard`.
func dlqDiscard(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dlq discard", flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	policy := fs.String("policy", "", "policy whose dead letters are discarded (required)")
	reason := fs.String("reason", "", "discard those with this reason (late_dropped: late-drop markers)")
	seqList := fs.String("seq", "", "discard these: comma-separated dead-letter stream sequences")
	seqs := fs.String("seqs", "", "same as --seq")
	window := fs.String("window", "", "discard those of this window id (late dead letters and markers)")
	all := fs.Bool("all", false, "discard every dead letter and late-drop marker of the policy")
	why := fs.String("why", "", "reason recorded with each discard")
	loaded := fs.Bool("loaded", false, "the events are in the table all the same: reconcile counts them as loaded only")
	dryRun := fs.Bool("dry-run", false, "list what would be discarded; record nothing")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: windrow dlq discard --policy P (--reason R | --seq N,... | --window W | --all) [--why TEXT] [--loaded] [--dry-run]\n\n"+
			"Records dead letters and late-drop markers as discarded: a record per entry on\n"+
			"windrow.dlq.<policy>.discarded.<dlq seq>, written once. They stay in the dead-letter stream (so\n"+
			"their events are never dead-lettered again) but `dlq ls` and `status` no longer count them,\n"+
			"redrive leaves them, and `windrow reconcile` counts each as discarded, or with --loaded as\n"+
			"loaded only. --reason, --seq and --window combine.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	req := dlq.DiscardRequest{Policy: *policy, Reason: *reason, Window: *window, All: *all, Why: *why, Loaded: *loaded, DryRun: *dryRun}
	for _, list := range []string{*seqList, *seqs} {
		if list == "" {
			continue
		}
		for _, f := range strings.Split(list, ",") {
			seq, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil || seq == 0 {
				return fmt.Errorf("--seq: %q is not a dead-letter stream sequence", f)
			}
			req.Seqs = append(req.Seqs, seq)
		}
	}
	if err := req.Validate(); err != nil {
		return err
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := dlq.Discard(ctx, s.JS, req)
	if rep != nil && len(rep.Discarded) > 0 {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tREASON\tWINDOW\tSOURCE SEQ\t")
		for _, e := range rep.Discarded {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Reason, e.Window, e.SourceSeq)
		}
		tw.Flush()
	}
	if rep != nil {
		verb := "discarded"
		if *dryRun {
			verb = "would discard"
		}
		fmt.Printf("%s %d", verb, len(rep.Discarded))
		if rep.Already > 0 {
			fmt.Printf("; %d discarded before", rep.Already)
		}
		fmt.Println()
	}
	return err
}
