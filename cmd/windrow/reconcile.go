package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/ops/inspect"
)

var errNotReconciled = errors.New("some numbers do not add up (see above)")

func runReconcile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	only := fs.String("policy", "", "reconcile only this policy")
	window := fs.String("window", "", "show only this window id (e.g. 20261120T000000Z)")
	duck := fs.String("duckdb", "", "DuckDB warehouse to compare with (default DATA_DIR/warehouse.duckdb if it exists; \"none\" to skip)")
	whURL := fs.String("warehouse", "", "warehouse to compare with: a DuckDB file or postgres://USER@HOST:5432/DB?sslmode=disable (default: --duckdb)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	var wh inspect.WindowCounter
	path := *duck
	if *whURL != "" {
		path = *whURL
	}
	if path == "" {
		path = filepath.Join(conn.dataDir, "warehouse.duckdb")
		if _, err := os.Stat(path); err != nil {
			path = "none"
		}
	}
	if path != "none" {
		w, err := stack.OpenWarehouseReadOnly(ctx, path)
		if err != nil {
			return err
		}
		defer w.Close()
		counter, ok := w.(inspect.WindowCounter)
		if !ok {
			return fmt.Errorf("warehouse %s cannot count rows per window", w)
		}
		wh = counter
	}
	policies, err := s.Policies.List(ctx)
	if err != nil {
		return err
	}
	bad := false
	for _, p := range policies {
		if *only != "" && p.Name != *only {
			continue
		}
		r, err := inspect.Reconcile(ctx, s.JS, s.States, p, wh)
		if err != nil {
			return err
		}
		fmt.Printf("policy %s (table %s): %s\n", p.Name, p.Load.Table, r.Summary())
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "WINDOW\tSTATE\tSTAGED\tDUPLICATES\tROWS\tLOADED\tWAREHOUSE\tLATE\tCHECK\t")
		for _, w := range r.Windows {
			if *window != "" && w.State.ID() != *window {
				continue
			}
			wh := "-"
			if w.Warehouse >= 0 {
				wh = fmt.Sprint(w.Warehouse)
			}
			check := "ok"
			if len(w.Problems) > 0 {
				check = "MISMATCH"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t\n", w.State.ID(), w.State.Status, w.State.StagedRows, w.State.Duplicates, w.State.Rows, w.State.LoadedRows, wh, w.Late, check)
		}
		tw.Flush()
		for _, w := range r.Windows {
			for _, pr := range w.Problems {
				fmt.Printf("  window %s: %s\n", w.State.ID(), pr)
			}
		}
		for _, pr := range r.Problems {
			fmt.Printf("  %s\n", pr)
		}
		if !r.OK() {
			bad = true
		}
		fmt.Println()
	}
	if bad {
		return errNotReconciled
	}
	return nil
}
