package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/ops/flush"
)

func runFlush(ctx context.Context, args []string) error { return flushCmd(ctx, os.Stdout, args) }

// flushCmd runs `windrow flush POLICY...`: it declares the policies' input
// complete up to now, so that their compactors close the last windows once
// everything published before is staged, instead of waiting for the idle
// rule to get there by elapsed time.
func flushCmd(ctx context.Context, out io.Writer, args []string) error {
	fs := flag.NewFlagSet("flush", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: windrow flush POLICY... [--all]\n\n"+
			"Declare the input of the policies complete up to now: once the collectors have staged\n"+
			"everything published before and the source stayed quiet for window.idle_timeout, the\n"+
			"watermark moves to now - max_out_of_order, closing the last windows of a replay or a file.\n"+
			"Events published later for those windows are late. Without a flush, a quiet source\n"+
			"advances the watermark only by the time elapsed since it went quiet.\n\n")
		fs.PrintDefaults()
	}
	all := fs.Bool("all", false, "flush every stored policy")
	var conn connFlags
	conn.register(fs)
	names, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(names) == 0 && !*all {
		fs.Usage()
		return errors.New("flush takes POLICY names, or --all")
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	return requestFlush(ctx, s, out, "windrow flush", names, *all)
}

// requestFlush checks that each named policy is stored (all: takes every
// stored policy) and records a flush request for each, saying when its
// windows will close.
func requestFlush(ctx context.Context, s *stack.Stack, out io.Writer, by string, names []string, all bool) error {
	stored, err := s.Policies.List(ctx)
	if err != nil {
		return err
	}
	byName := map[string]bool{}
	for _, p := range stored {
		byName[p.Name] = true
		if all {
			names = append(names, p.Name)
		}
	}
	for _, n := range names {
		if !byName[n] {
			return fmt.Errorf("%w: no policy %q is stored (see `windrow policy list`); nothing flushed", policystore.ErrNotFound, n)
		}
	}
	at := time.Now().UTC()
	if err := flush.Request(ctx, s.Watermarks, at, by, names...); err != nil {
		return err
	}
	for _, p := range stored {
		for _, n := range names {
			if p.Name == n {
				fmt.Fprintf(out, "%s: input declared complete at %s: windows ending by %s close once everything published before is staged and the source is quiet for %s\n",
					n, at.Format(time.RFC3339), at.Add(-p.Window.MaxOutOfOrder.D()-p.Window.AllowedLateness.D()).Format(time.RFC3339), p.Window.IdleTimeout.D())
			}
		}
	}
	return nil
}
