package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/ops/inspect"
	"github.com/windrow/windrow/windows"
)

func runStatus(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	only := fs.String("policy", "", "show only this policy")
	metricsAddrs := fs.String("metrics", defaultStatusMetrics(),
		"metrics servers of windrow processes whose /readyz status reads for a full disk (comma-separated host:port; off: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, line := range diskFullReports(ctx, *metricsAddrs) {
		fmt.Println(line)
	}
	policies, err := s.Policies.List(ctx)
	if err != nil {
		return err
	}
	if len(policies) == 0 {
		fmt.Println("no policies; apply one with `windrow policy apply FILE`")
		return nil
	}
	for _, p := range policies {
		if *only != "" && p.Name != *only {
			continue
		}
		shape := fmt.Sprintf("%s %s windows", p.Window.Size.D(), p.Window.Kind)
		if p.Window.Kind == windows.Hopping {
			shape += fmt.Sprintf(" every %s", p.Window.Slide.D())
		}
		if h := p.WindowHistory; len(h) > 0 {
			last := h[len(h)-1]
			shape += fmt.Sprintf(" from %s (%s %s before)", last.Until.Format(time.RFC3339), last.Size.D(), last.Kind)
		}
		if len(p.Key) > 0 {
			shape += fmt.Sprintf(" keyed by %v", p.Key)
		}
		fmt.Printf("policy %s v%d: %s on %v → table %s (%s)\n", p.Name, p.Version, shape, p.Source.Subjects, p.Load.Table, p.Load.Mode)
		wm, hasWM, err := s.Watermarks.Get(ctx, p.Name)
		if err == nil && hasWM {
			how := "from staged event times"
			switch {
			case wm.Idle:
				how = "idle rule: the source is quiet, it advances by the time elapsed"
			case wm.Flush:
				how = "flush: the input was declared complete"
			}
			fmt.Printf("  watermark: %s (%s, updated %s ago)\n", wm.Watermark.Format(time.RFC3339), how, time.Since(wm.UpdatedAt).Round(time.Second))
		} else if err == nil {
			fmt.Println("  watermark: none yet (nothing staged)")
		}
		if lag, err := inspect.CollectorLag(ctx, s.JS, p.Source.Stream, p.Name); err == nil {
			fmt.Printf("  collector lag: %d pending, %d in flight, ack floor %d\n", lag.Pending, lag.AckPending, lag.AckFloor)
		} else {
			fmt.Printf("  collector lag: unknown (%v)\n", err)
		}
		if loss, err := inspect.SourceExpired(ctx, s.JS, p); err != nil {
			fmt.Printf("  source stream: unknown (%v)\n", err)
		} else {
			printSourceLoss(p.Source.Stream, loss)
		}
		dl, err := inspect.CountDeadLetters(ctx, s.JS, p.Name)
		if err != nil {
			return err
		}
		if len(dl.ByReason) > 0 {
			fmt.Printf("  dead letters: %s\n", reasons(dl.ByReason))
		}
		if ret, err := inspect.Retirement(ctx, s.JS, p.Name); err != nil {
			fmt.Printf("  retired windows: unknown (%v)\n", err)
		} else if ret.Windows > 0 {
			var late int64
			for id, n := range dl.LateByWindow {
				if start, err := messages.ParseWindowID(id); err == nil && ret.Retired(start) {
					late += n
				}
			}
			fmt.Printf("  retired: %d windows before %s (window.retain %s): %d rows loaded, %d late; their states are deleted, their rows stay in the table\n",
				ret.Windows, ret.Horizon.Format(time.RFC3339), p.Window.RetainFor(), ret.Rows, late)
		}
		ws, err := inspect.Windows(ctx, s.States, p.Name)
		if err != nil {
			return err
		}
		due := 0
		for _, w := range ws {
			if windowDue(w, wm.Watermark, hasWM, p.Window.AllowedLateness.D()) {
				due++
			}
		}
		if due > 0 {
			fmt.Printf("  %d OPEN window(s) marked \"due\" are closed by the watermark and wait for a compactor to seal them (nearest end first, one at a time; during a backfill many wait)\n", due)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  WINDOW\tSTATE\tSTAGED\tROWS\tDUPS\tLATE\tSEGMENTS\tFILES\tBYTES\tWATERMARK\tUPDATED\tSLA\tTRACE")
		for _, w := range ws {
			sealedAt := "-" // the watermark the window was sealed at
			if !w.Watermark.IsZero() {
				sealedAt = w.Watermark.Format(time.RFC3339)
			}
			sla := w.SLA(p.SLA.Deadline.D(), time.Now())
			if sla == messages.SLANone {
				sla = "-"
			}
			traceID := w.TraceID
			if traceID == "" {
				traceID = "-"
			}
			state := stateLabel(w, windowDue(w, wm.Watermark, hasWM, p.Window.AllowedLateness.D()))
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", w.WindowStart.Format("2006-01-02T15:04Z07:00"), state, w.StagedRows, w.Rows, w.Duplicates,
				dl.LateByWindow[w.ID()], w.Segments, w.BatchCount, inspect.HumanBytes(inspect.Bytes(w)), sealedAt, w.UpdatedAt.Format(time.RFC3339), sla, traceID)
			if w.Error != "" {
				fmt.Fprintf(tw, "  \terror: %s\n", w.Error)
			}
		}
		tw.Flush()
		fmt.Println()
	}
	return nil
}

// reasons renders counts by reason, largest first: "wrong_type 10, late 2".
func reasons(by map[string]int64) string {
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if by[keys[i]] != by[keys[j]] {
			return by[keys[i]] > by[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, by[k])
	}
	return strings.Join(parts, ", ")
}

// windowDue reports whether an OPEN window is closed by the watermark and
// only waits for a compactor to seal it.
func windowDue(w *messages.WindowState, wm time.Time, hasWM bool, lateness time.Duration) bool {
	return hasWM && w.Status == messages.StatusOpen && !wm.Before(w.WindowEnd.Add(lateness))
}

// stateLabel is a window's STATE cell: the status, "due" for an OPEN
// window the watermark has closed (it waits for a compactor, not for
// events), the revision ("LOADED r2"), rows staged for the next revision
// ("+40 next", late: revise) and, for session panes, rows carried into the
// next pane ("→12 carried").
func stateLabel(w *messages.WindowState, due bool) string {
	state := string(w.Status)
	if due {
		state += " due"
	}
	if w.Revision > 0 {
		state += fmt.Sprintf(" r%d", w.Revision)
	}
	if w.Next != nil {
		state += fmt.Sprintf(" +%d next", w.Next.StagedRows)
	}
	if w.CarryRows > 0 {
		state += fmt.Sprintf(" →%d carried", w.CarryRows)
	}
	return state
}

// printSourceLoss shows the events the source stream removed before they
// were collected, and the limits that can remove more.
func printSourceLoss(stream string, loss *inspect.SourceLoss) {
	switch {
	case loss.Expired > 0 && loss.Exact:
		fmt.Printf("  EXPIRED: %d events removed by source stream %s before they were collected (lost upstream of windrow)\n", loss.Expired, stream)
	case loss.Expired > 0:
		fmt.Printf("  EXPIRED?: source stream %s removed %d messages before the collectors reached them; it holds other subjects too, so how many were this policy's is not known\n", stream, loss.Expired)
	}
	for _, w := range loss.Limits {
		fmt.Printf("  source stream limit: %s\n", w)
	}
}
