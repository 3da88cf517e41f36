package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/dlq"
)

const dlqUsage = "usage: windrow dlq ls [--policy P] [--reason R] [--ndjson] | show SEQ [--raw] | redrive --policy P (--reason R | --seq N,... | --file F) [--dry-run] | discard --policy P (--reason R | --seq N,... | --window W | --all) [--dry-run]"

func runDLQ(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", dlqUsage)
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "ls":
		return dlqList(ctx, rest)
	case "show":
		return dlqShow(ctx, rest)
	case "redrive":
		return dlqRedrive(ctx, rest)
	case "discard":
		return dlqDiscard(ctx, rest)
	}
	return fmt.Errorf("unknown dlq command %q\n%s", sub, dlqUsage)
}

func dlqList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dlq ls", flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	policy := fs.String("policy", "", "only this policy")
	reason := fs.String("reason", "", "list the entries with this reason (late_dropped: late-drop markers)")
	limit := fs.Int("limit", 100, "list at most this many entries (0: all)")
	ndjson := fs.Bool("ndjson", false, "write the dead letters as NDJSON lines in the fix-file format of `dlq redrive --file` (needs --policy)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: windrow dlq ls [--policy P] [--reason R] [--limit N] [--ndjson]\n\n"+
			"Without --reason: dead letters and late-drop markers counted by policy and reason, largest first.\n"+
			"With --reason: the entries, oldest first. With --ndjson: every dead letter selected, as\n"+
			"  {\"dlq_seq\": N, \"reason\": ..., \"detail\": ..., \"event\": {...}}   (\"raw\": \"...\" when not JSON)\n"+
			"ready to be fixed and passed to `windrow dlq redrive --file`.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	f := dlq.Filter{Policy: *policy, Reason: *reason}
	if *ndjson {
		if *policy == "" {
			return fmt.Errorf("--ndjson needs --policy: a fix file holds the dead letters of one policy")
		}
		if *reason == dlq.ReasonLateDropped {
			return fmt.Errorf("late-drop markers hold no payload: nothing to export")
		}
		w := bufio.NewWriter(os.Stdout)
		err := dlq.Entries(ctx, s.JS, f, true, func(e *dlq.Entry) error {
			if e.Kind != dlq.KindDeadLetter {
				return nil
			}
			if e.Truncated() { // export the whole event, from the source stream
				full, err := dlq.Payload(ctx, s.JS, e)
				if err != nil {
					fmt.Fprintf(os.Stderr, "warning: %v; exported cut\n", err)
				} else {
					e.Data = full
				}
			}
			line, err := dlq.ExportLine(e)
			if err != nil {
				return fmt.Errorf("dlq seq %d: %w", e.Seq, err)
			}
			w.Write(line)
			return w.WriteByte('\n')
		})
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		return err
	}
	if *reason != "" {
		return dlqListEntries(ctx, s.JS, f, *limit)
	}
	sum, err := dlq.List(ctx, s.JS, f)
	if err != nil {
		return err
	}
	if len(sum.Groups) == 0 {
		fmt.Println("no dead letters or late-drop markers")
	} else {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "POLICY\tREASON\tCOUNT\tOLDEST\tNEWEST")
		for _, g := range sum.Groups {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", g.Policy, g.Reason, g.Count, g.Oldest.UTC().Format(time.RFC3339), g.Newest.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	}
	for _, p := range sortedKeys(sum.Redriven, sum.InDoubt, sum.Discarded) {
		if n := sum.Discarded[p]; n > 0 {
			fmt.Printf("%s: %d discarded (not listed; %d of them recovered: their events are loaded)\n", p, n, sum.Recovered[p])
		}
		if n := sum.Redriven[p]; n > 0 {
			fmt.Printf("%s: %d redriven before (records on %s)\n", p, n, dlq.RedrivenSubject(p))
		}
		if n := sum.InDoubt[p]; n > 0 {
			fmt.Printf("%s: %d dead letters of an interrupted redrive; the next `windrow dlq redrive --policy %s ...` finishes them\n", p, n, p)
		}
	}
	return nil
}

func sortedKeys(ms ...map[string]int64) []string {
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

func dlqListEntries(ctx context.Context, js jetstream.JetStream, f dlq.Filter, limit int) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tPOLICY\tREASON\tSOURCE SUBJECT\tSOURCE SEQ\tDETAIL")
	n := 0
	err := dlq.Entries(ctx, js, f, false, func(e *dlq.Entry) error {
		n++
		if limit > 0 && n > limit {
			return nil
		}
		detail := e.Detail
		if e.Kind == dlq.KindLateMarker {
			detail = "window " + e.Window + " (marker, no payload)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Policy, e.Reason, e.SourceSubject, e.SourceSeq, truncate(detail, 70))
		return nil
	})
	tw.Flush()
	if err != nil {
		return err
	}
	switch {
	case n == 0:
		fmt.Println("none")
	case limit > 0 && n > limit:
		fmt.Printf("... %d more (%d in all); --limit 0 lists all\n", n-limit, n)
	}
	return nil
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func dlqShow(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dlq show", flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	raw := fs.Bool("raw", false, "write only the payload, byte for byte")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: windrow dlq show SEQ [--raw]\n\nOne message of the dead-letter stream (SEQ from `windrow dlq ls --reason R`): its headers and payload,\npretty-printed if it is JSON, quoted otherwise.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("usage: windrow dlq show SEQ [--raw]")
	}
	arg := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil { // flags after SEQ
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	seq, err := strconv.ParseUint(arg, 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("SEQ %q: want a dead-letter stream sequence, as `windrow dlq ls --reason R` lists them", arg)
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	e, err := dlq.Get(ctx, s.JS, seq)
	if err != nil {
		return fmt.Errorf("%w (redriven, expired, or never there)", err)
	}
	if *raw {
		_, err := os.Stdout.Write(e.Data)
		return err
	}
	fmt.Printf("seq:     %d (%s of policy %s)\n", e.Seq, e.Kind, e.Policy)
	fmt.Printf("subject: %s\n", e.Subject)
	fmt.Printf("stored:  %s\n", e.Time.UTC().Format(time.RFC3339Nano))
	fmt.Println("headers:")
	keys := make([]string, 0, len(e.Header))
	for k := range e.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range e.Header[k] {
			fmt.Printf("  %s: %s\n", k, v)
		}
	}
	if e.Truncated() {
		fmt.Printf("note:    the payload below was cut to fit the dead-letter stream; the whole event (%s bytes) is seq %d of stream %s\n",
			e.Header.Get(messages.HeaderOriginalSize), e.SourceSeq, e.SourceStream)
	}
	switch {
	case e.Kind == dlq.KindLateMarker:
		fmt.Printf("payload: none (a late-drop marker; the event is seq %s of the source stream)\n", e.Header.Get(messages.HeaderSourceSeq))
	case len(e.Data) == 0:
		fmt.Println("payload: empty")
	case json.Valid(e.Data):
		var buf bytes.Buffer
		if err := json.Indent(&buf, e.Data, "", "  "); err != nil {
			return err
		}
		fmt.Printf("payload: %d bytes, JSON\n%s\n", len(e.Data), buf.String())
	default:
		fmt.Printf("payload: %d bytes, not JSON (quoted; --raw writes the bytes)\n%s\n", len(e.Data), strconv.Quote(string(e.Data)))
	}
	return nil
}

func dlqRedrive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dlq redrive", flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	policy := fs.String("policy", "", "policy whose dead letters are redriven (required)")
	reason := fs.String("reason", "", "redrive every dead letter with this reason (with --file: a guard every line must match)")
	seqList := fs.String("seq", "", "redrive these dead letters: comma-separated dead-letter stream sequences")
	file := fs.String("file", "", "NDJSON file of fixed payloads, one {\"dlq_seq\": N, \"event\": {...}} per line; redrives exactly those")
	dryRun := fs.Bool("dry-run", false, "list what would be sent; send nothing")
	allowShared := fs.Bool("allow-shared", false, "redrive to subjects that other policies also collect (they load the events again)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: windrow dlq redrive --policy P (--reason R | --seq N,... | --file F) [--dry-run]\n\n"+
			"Re-publishes dead letters to the subject they came from (Windrow-Source-Subject), where the\n"+
			"policy's collectors take them again. Without --file the original payloads are sent as they are\n"+
			"(after a policy fix, e.g. a widened type); payloads the current policy would still reject are\n"+
			"not sent and stay in the dead-letter stream.\n\n"+
			"--file F holds fixed payloads, one JSON object per line:\n"+
			"  {\"dlq_seq\": 42, \"event\": {\"store_id\": \"store-001\", \"quantity\": 2, ...}}\n"+
			"dlq_seq is the dead letter's sequence (`windrow dlq ls --reason R`); other keys are ignored.\n"+
			"`windrow dlq ls --policy P --reason R --ndjson > fix.ndjson` writes such a file to edit.\n\n"+
			"No double loads: each event is published with Nats-Msg-Id redrive-<policy>-<dlq seq> and\n"+
			"Windrow-Redrive-Of: <dlq seq>; once the source stream stored it, the dead letter is deleted (a\n"+
			"record stays on windrow.dlq.<policy>.redriven). A second identical redrive sends nothing, and one\n"+
			"that was interrupted is finished by the next redrive of the policy without sending anything twice.\n"+
			"Late-drop markers cannot be redriven (no payload); dead letters with reason \"late\" can, but\n"+
			"are late again unless their window was reopened.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *policy == "" {
		return fmt.Errorf("--policy is required")
	}
	req := dlq.Request{Reason: *reason, DryRun: *dryRun, AllowShared: *allowShared}
	if *seqList != "" {
		for _, f := range strings.Split(*seqList, ",") {
			seq, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil || seq == 0 {
				return fmt.Errorf("--seq: %q is not a dead-letter stream sequence", f)
			}
			req.Seqs = append(req.Seqs, seq)
		}
	}
	if *file != "" {
		fh, err := os.Open(*file)
		if err != nil {
			return err
		}
		req.Fixes, err = dlq.ReadFixes(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if req.Policy, err = s.Policies.Get(ctx, *policy); err != nil {
		return err
	}
	if req.Others, err = s.Policies.List(ctx); err != nil {
		return err
	}
	if req.Reason == messages.ReasonLate {
		fmt.Fprintln(os.Stderr, "warning: dead letters with reason late are late again, and dead-lettered anew, unless their windows were reopened")
	}
	prog := newProgress()
	start := time.Now()
	if !req.DryRun {
		req.Progress = func(done, total int) {
			prog.update("  redriven %d/%d (%.0f/s)", done, total, float64(done)/time.Since(start).Seconds())
		}
	}
	rep, err := dlq.Redrive(ctx, s.JS, req)
	if rep != nil && (err == nil || len(rep.Items) > 0) {
		if !req.DryRun {
			prog.done("  %d handled in %s", len(rep.Items), time.Since(start).Round(time.Millisecond))
		}
		printRedrive(rep, req.DryRun, req.Reason == messages.ReasonLate)
	}
	if errors.Is(err, dlq.ErrSharedSubject) {
		err = fmt.Errorf("%w\n(--allow-shared sends them anyway)", err)
	}
	return err
}

func printRedrive(rep *dlq.Report, dryRun, lateWarned bool) {
	show := rep.Items
	if !dryRun { // list only what was not sent
		show = slices.DeleteFunc(slices.Clone(rep.Items), func(it *dlq.Item) bool {
			return it.Outcome == dlq.OutcomeSent || it.Outcome == dlq.OutcomeDuplicate || it.Outcome == dlq.OutcomeFinished
		})
	}
	if len(show) > 0 {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tREASON\tSOURCE SUBJECT\tSOURCE SEQ\tPAYLOAD\tOUTCOME\tDETAIL")
		for i, it := range show {
			if i == 200 {
				fmt.Fprintf(tw, "...\t%d more\n", len(show)-i)
				break
			}
			payload := "original"
			switch {
			case it.Outcome == dlq.OutcomeAlreadyRedriven:
				payload = "-"
			case it.InDoubt && it.Fixed:
				payload = "recorded fix"
			case it.InDoubt:
				payload = "recorded"
			case it.Fixed:
				payload = "fixed"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", it.Seq, it.Reason, it.SourceSubject, it.SourceSeq, payload, it.Outcome, truncate(it.Detail, 80))
		}
		tw.Flush()
	}
	outcomes := []dlq.Outcome{dlq.OutcomeSent, dlq.OutcomeDuplicate, dlq.OutcomeFinished, dlq.OutcomeWouldSend, dlq.OutcomeWouldFinish,
		dlq.OutcomeInvalid, dlq.OutcomeNotCollected, dlq.OutcomeAlreadyRedriven}
	var parts []string
	for _, o := range outcomes {
		if n := rep.Count(o); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no dead letters selected"}
	}
	switch {
	case dryRun:
		fmt.Printf("dry run: %s; nothing changed\n", strings.Join(parts, ", "))
	default:
		fmt.Printf("redrive: %s\n", strings.Join(parts, ", "))
	}
	if n := rep.Count(dlq.OutcomeInvalid) + rep.Count(dlq.OutcomeNotCollected); n > 0 {
		verb := "stay"
		if dryRun {
			verb = "would stay"
		}
		fmt.Printf("%d %s in the dead-letter stream: fix them with --file (see `windrow dlq redrive -h`)\n", n, verb)
	}
	if rep.Late > 0 && !lateWarned {
		fmt.Fprintf(os.Stderr, "warning: %d of them were dead-lettered as late: they will be late again unless their windows were reopened\n", rep.Late)
	}
}
