package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/windrow/windrow/services/stack"
	"github.com/windrow/windrow/windows"
)

func runPolicy(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: windrow policy validate FILE|DIR... | apply FILE|DIR... | list | get NAME")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("policy "+sub, flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch sub {
	case "validate":
		files, err := stack.PolicyFiles(fs.Args())
		if err != nil {
			return err
		}
		bad := 0
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err == nil {
				_, err = windows.ParsePolicy(f, data)
			}
			if err != nil {
				bad++
				fmt.Fprintln(os.Stderr, err)
				continue
			}
			fmt.Printf("%s: ok\n", f)
		}
		if bad > 0 {
			return fmt.Errorf("%d of %d policy files are invalid", bad, len(files))
		}
		return nil
	case "apply":
		s, err := conn.connect(ctx)
		if err != nil {
			return err
		}
		defer s.Close()
		ps, err := s.ApplyPolicyFiles(ctx, fs.Args())
		for _, p := range ps {
			fmt.Printf("%s: applied, version %d\n", p.Name, p.Version)
		}
		return err
	case "list", "get":
		s, err := conn.connect(ctx)
		if err != nil {
			return err
		}
		defer s.Close()
		if sub == "get" {
			if fs.NArg() != 1 {
				return fmt.Errorf("usage: windrow policy get NAME")
			}
			p, err := s.Policies.Get(ctx, fs.Arg(0))
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		}
		ps, err := s.Policies.List(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			fmt.Printf("%-30s v%-4d %s %s on %v → %s\n", p.Name, p.Version, p.Window.Size.D(), p.Window.Kind, p.Source.Subjects, p.Load.Table)
		}
		return nil
	}
	return fmt.Errorf("unknown policy command %q: want validate, apply, list or get", sub)
}
