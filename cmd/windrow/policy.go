package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/windows"
)

const policyUsage = `usage: windrow policy COMMAND [flags] ARGS

  validate [-r] FILE|DIR...                parse and check policy files (needs no NATS)
  apply [-r] [--dry-run] FILE|DIR...       validate every file, show each diff, store the changed policies
  diff [-r] FILE|DIR...                    show the diffs only: exit 0 no difference, 1 differences, 2 trouble
  list                                     the stored policies: version, updated, window, table
  get NAME [--version N] [--history] [--format file|yaml|json]
                                           a stored version (default: the current one, as applied)
  delete NAME [--force]                    delete a policy (its history stays); refused while windows are not LOADED

A directory stands for its *.yaml and *.yml files (with -r, its subdirectories' too).
Commands that talk to NATS take the connection flags (--nats-url, --data-dir, ...);
` + "`windrow policy COMMAND -h`" + ` lists a command's flags.`

// policyCmd runs `windrow policy ...`, printing to out and errOut.
type policyCmd struct {
	out, errOut io.Writer
	// beforeStore, when set (by tests), runs in apply between a policy's
	// diff and its store.
	beforeStore func(ctx context.Context, s *stack.Stack, name string)
}

// exitStatus asks for an exit status other than main's 1; err, when set, is
// printed first.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitStatus) Unwrap() error { return e.err }

func runPolicy(ctx context.Context, args []string) error {
	err := (&policyCmd{out: os.Stdout, errOut: os.Stderr}).run(ctx, args)
	var es *exitStatus
	if errors.As(err, &es) {
		if es.err != nil {
			fmt.Fprintf(os.Stderr, "windrow policy: %v\n", es.err)
		}
		os.Exit(es.code)
	}
	return err
}

func (c *policyCmd) run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(c.errOut, policyUsage)
		if len(args) == 0 {
			return errors.New("no policy command given")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "validate":
		return c.validate(args)
	case "apply":
		return c.apply(ctx, args)
	case "diff":
		return c.diff(ctx, args)
	case "list":
		return c.list(ctx, args)
	case "get":
		return c.get(ctx, args)
	case "delete":
		return c.delete(ctx, args)
	}
	fmt.Fprintln(c.errOut, policyUsage)
	return fmt.Errorf("unknown policy command %q: want validate, apply, diff, list, get or delete", sub)
}

// flags returns the flag set of a policy command, printing its usage line
// and flags to errOut.
func (c *policyCmd) flags(sub, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("policy "+sub, flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	fs.Usage = func() {
		fmt.Fprintf(c.errOut, "usage: windrow policy %s %s\n", sub, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseInterspersed parses flags wherever they stand among the arguments
// (`apply dir/ --dry-run` as well as `apply --dry-run dir/`) and returns the
// other arguments; everything after "--" is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, nil
		}
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			return append(rest, left...), nil
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
}

// policyFile is one file given to validate, apply or diff.
type policyFile struct {
	path   string
	data   []byte
	policy *windows.Policy
}

// policyPaths expands the arguments into policy files: a file stands for
// itself, a directory for its *.yaml and *.yml files, and with recursive for
// those of its subdirectories too (hidden ones skipped). The result is
// sorted within each directory and holds each file once.
func policyPaths(args []string, recursive bool) ([]string, error) {
	if len(args) == 0 {
		return nil, errors.New("no policy files or directories given")
	}
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		if k := filepath.Clean(p); !seen[k] {
			seen[k] = true
			files = append(files, p)
		}
	}
	isPolicy := func(name string) bool {
		ext := strings.ToLower(filepath.Ext(name))
		return ext == ".yaml" || ext == ".yml"
	}
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("policy path: %w", err)
		}
		if !st.IsDir() {
			add(arg)
			continue
		}
		n := len(files)
		err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != arg && (!recursive || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if isPolicy(d.Name()) && d.Type().IsRegular() {
				add(path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("policy directory: %w", err)
		}
		if len(files) == n {
			hint := ""
			if !recursive {
				hint = " (-r reads subdirectories too)"
			}
			return nil, fmt.Errorf("%s: no *.yaml or *.yml files in the directory%s", arg, hint)
		}
	}
	return files, nil
}

// loadPolicyFiles reads and parses every file. It returns the valid ones
// and one error per invalid file, each problem on its own line as
// FILE:LINE: FIELD: message; two files of the same policy name are an error
// too.
func loadPolicyFiles(files []string) ([]policyFile, []error) {
	var ok []policyFile
	var errs []error
	byName := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := windows.ParsePolicy(f, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.NotRunYet(f); err != nil {
			errs = append(errs, err)
			continue
		}
		if first, dup := byName[p.Name]; dup {
			errs = append(errs, &windows.FieldError{File: f, Line: nameLine(data), Field: "name",
				Msg: fmt.Sprintf("policy %q is also defined in %s (one file per policy)", p.Name, first)})
			continue
		}
		byName[p.Name] = f
		ok = append(ok, policyFile{path: f, data: data, policy: p})
	}
	return ok, errs
}

// nameLine is the line of the top-level name key of a policy file, or 0.
func nameLine(data []byte) int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "name" {
			return m.Content[i+1].Line
		}
	}
	return 0
}

// printErrors prints every problem of every invalid file.
func (c *policyCmd) printErrors(errs []error) {
	for _, err := range errs {
		fmt.Fprintln(c.errOut, err)
	}
}

func (c *policyCmd) validate(args []string) error {
	fs := c.flags("validate", "[-r] FILE|DIR...")
	recursive := fs.Bool("r", false, "read directories recursively")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	files, err := policyPaths(paths, *recursive)
	if err != nil {
		return err
	}
	ok, errs := loadPolicyFiles(files)
	c.printErrors(errs)
	for _, f := range ok {
		fmt.Fprintf(c.out, "%s: ok\n", f.path)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d policy files are invalid", len(errs), len(files))
	}
	return nil
}

// exitCode is the exit status windrow ends with after err.
func exitCode(err error) int {
	var es *exitStatus
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &es):
		return es.code
	}
	return 1
}
